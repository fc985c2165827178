/**
 * The capability code the guest shares between init and the exec agent (src/runcvm/guest/caps.c), against runc on
 * the SAME kernel: the agent is built as in the asset step and run on the host in its test mode (`--socket`, behind
 * the launcher's mux), and each case runs the same process (user + five capability sets) once through the agent
 * and once with `runc run` on a busybox bundle. `grep Cap /proc/self/status` must print identical lines — no
 * normalisation needed, the kernel is the same. This covers what no engine flag reaches: ambient capabilities
 * (raised only when also inheritable and permitted; runc ignores the failed raise), a non-root user keeping
 * permitted capabilities across setuid, inheritable sets.
 *
 * Only capabilities this test process itself holds are used (runc cannot grant others, and this machine's bounding
 * set lacks some, e.g. CAP_SYS_RESOURCE).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { Channel, decodeExit, encodeFrame, FrameDecoder, FrameType } from '../../src/runcvm/agent/codec.js';
import { encodeOpen, exitCodeOf, type ExecRequest } from '../../src/runcvm/agent/exec.js';
import { capabilitiesFromSpec, type CapabilitySets } from '../../src/runcvm/launch/capabilities.js';
import type { OciProcess, OciSpec } from '../../src/runcvm/launch/oci.js';
import { busyboxRootfs } from '../harness/images.js';
import { waitFor } from '../harness/wait.js';
import { startHostAgent } from './runcvm/host-agent.js';

const closers = new CloserStack();
let dir: string;
let clientSocket: string;
let runcRoot: string;
let seq = 0;

interface Outcome {
  stdout: string;
  stderr: string;
  exit: number;
}

const SCRIPT = 'grep Cap /proc/self/status; id -u';

function viaAgent(user: ExecRequest['user'], capabilities: CapabilitySets | undefined): Promise<Outcome> {
  const req: ExecRequest = { args: ['/bin/sh', '-c', SCRIPT], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], cwd: '/', user, terminal: false, ...(capabilities ? { capabilities } : {}) };
  const sock = connect(clientSocket);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const dec = new FrameDecoder();
  return new Promise<Outcome>((resolve, reject) => {
    let exit: number | undefined;
    sock.on('connect', () => {
      sock.write(encodeOpen(req));
      sock.write(encodeFrame(FrameType.EOF, Channel.stdin));
    });
    sock.on('data', (chunk: Buffer) => {
      for (const f of dec.push(chunk)) {
        if (f.type === FrameType.DATA) (f.channel === Channel.stdout ? out : err).push(f.payload);
        else if (f.type === FrameType.EXIT) exit = exitCodeOf(decodeExit(f.payload));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => {
      if (exit === undefined) reject(new Error('connection closed without EXIT'));
      else resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exit });
    });
  });
}

async function viaRunc(user: { uid: number; gid: number }, capabilities: OciProcess['capabilities']): Promise<Outcome> {
  const bundle = join(dir, `bundle${++seq}`);
  await run('mkdir', ['-p', bundle]);
  await busyboxRootfs(join(bundle, 'rootfs'));
  await run('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as OciSpec;
  spec.process = { ...spec.process!, terminal: false, args: ['/bin/sh', '-c', SCRIPT], user, cwd: '/' };
  if (capabilities) spec.process.capabilities = capabilities;
  else delete spec.process.capabilities;
  await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
  const r = await run('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `caps-agent-${process.pid}-${seq}`], { reject: false, timeoutMs: 60_000, input: '' });
  return { stdout: r.stdout, stderr: r.stderr, exit: r.exitCode };
}

async function both(user: { uid: number; gid: number }, caps: OciProcess['capabilities']): Promise<{ runc: Outcome; agent: Outcome }> {
  const runc = await viaRunc(user, caps);
  // the runtime's own mapping: what create/exec would put in the request
  const agent = await viaAgent({ ...user, additionalGids: [] }, capabilitiesFromSpec(caps).sets);
  return { runc, agent };
}

describe('guest capability code (caps.c via the exec agent) vs runc on the same kernel', () => {
  beforeAll(async () => {
    dir = await tempDir('runcvm-caps-agent', closers);
    runcRoot = join(dir, 'runc-root');
    ({ clientSocket } = await startHostAgent(dir, closers));
    await waitFor('the agent to answer an exec', async () => (await viaAgent({ uid: 0, gid: 0, additionalGids: [] }, undefined)).exit === 0, { timeoutMs: 30_000 });
  });
  afterAll(async () => {
    await closers.close();
  });

  it('non-root user with ambient capabilities: permitted survives setuid, ambient raised only where inheritable', async () => {
    const caps = {
      bounding: ['CAP_KILL', 'CAP_NET_ADMIN', 'CAP_CHOWN', 'CAP_NET_RAW'],
      permitted: ['CAP_KILL', 'CAP_NET_ADMIN', 'CAP_CHOWN'],
      inheritable: ['CAP_KILL', 'CAP_NET_ADMIN'],
      effective: ['CAP_KILL'],
      // CAP_CHOWN is not inheritable: the raise fails, which runc ignores
      ambient: ['CAP_KILL', 'CAP_CHOWN'],
    };
    const r = await both({ uid: 1000, gid: 1000 }, caps);
    expect(r.runc.exit, r.runc.stderr).toBe(0);
    // after exec: permitted = effective = ambient = KILL (bit 5); inheritable KILL|NET_ADMIN; bounding as given
    expect(r.runc.stdout).toBe('CapInh:\t0000000000001020\nCapPrm:\t0000000000000020\nCapEff:\t0000000000000020\nCapBnd:\t0000000000003021\nCapAmb:\t0000000000000020\n1000\n');
    expect(r.agent).toEqual(r.runc);
  });

  it('root with a reduced set and an unknown name (ignored, not an error)', async () => {
    const caps = { bounding: ['CAP_CHOWN', 'CAP_SETUID', 'CAP_NOT_A_CAP'], effective: ['CAP_CHOWN'], permitted: ['CAP_CHOWN', 'CAP_SETUID'], inheritable: [], ambient: [] };
    const r = await both({ uid: 0, gid: 0 }, caps);
    expect(r.runc.exit).toBe(0);
    expect(r.agent.stdout).toBe(r.runc.stdout);
    expect(r.agent.exit).toBe(r.runc.exit);
    expect(r.runc.stdout).toContain('CapBnd:\t0000000000000081\n');
  });

  it('no capabilities object: five empty sets, as root', async () => {
    const r = await both({ uid: 0, gid: 0 }, undefined);
    expect(r.runc.stdout).toBe('CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n0\n');
    expect(r.agent).toEqual(r.runc);
  });
});
