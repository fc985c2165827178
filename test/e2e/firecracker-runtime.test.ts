/**
 * RUNCVM_HYPERVISOR=firecracker through the real runtime path: containerd → bin/runcvm-runtime create → runc →
 * launcher (container PID 1) → firecracker. Firecracker cannot run here, so the guest package gets the fake
 * (test/fixtures/fake-firecracker, run by the package's node) as bin/firecracker, set up as a node without working
 * KVM. The node's KVM state is set by the tests, never taken from the machine: the runtime's node-level
 * RUNCVM_KVM_DEVICE points at a stand-in file (exists and opens read/write, as create's check for an explicit
 * RUNCVM_HYPERVISOR=firecracker asks), at a missing path (no KVM), or at a folder (a device that cannot be opened), so
 * every branch runs and asserts its outcome on a machine with a usable /dev/kvm, a KVM-PVM one, or none. What this proves: the runtime selects the backend, the launcher writes the --config-file (which the fake
 * checks against the schema and Firecracker's rules: kernel, drives, vsock all present), and a Firecracker
 * `Kvm(Error(19))` reaches the container's stderr as a runcvm error with cause and fix, with a non-zero exit.
 * With the fake playing a booted guest (FAKE_FC_GUEST=1): Firecracker gets the container's id as --id (sanitised),
 * `ctr task exec` reaches the exec agent's side of vsock port 1025 (played by the fake) through the launcher's mux,
 * and `ctr task kill` (SIGTERM) before the guest's io channel is up stops the VM with SendCtrlAltDel (exit 143), or,
 * when the guest ignores it, with SIGKILL after the launcher's bounded wait (exit 143 too: the stop was a SIGTERM).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readdir, readFile, realpath, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, spawnChild, type RunResult } from '../../src/core/exec/index.js';
import { CloserStack } from '../../src/core/fsx/index.js';
import { projectPath } from '../../src/core/paths.js';
import type { StartedContainerd } from '../harness/services/containerd.js';
import { ctrRunIn, leftovers, startRuncvmSuite, type RuntimeFixture } from './runcvm/setup.js';
import { cpuFlagsFromCpuinfo, kvmProblem } from '../../src/runcvm/hypervisor/accel.js';
import { readCpuinfo } from '../../src/runcvm/hypervisor/facts.js';
import { instanceId } from '../../src/runcvm/hypervisor/firecracker/plan.js';
import { requestViolations } from '../../src/runcvm/hypervisor/firecracker/schema.js';
import { waitFor } from '../harness/wait.js';

const closers = new CloserStack();
/** the node's KVM device as each wrapper's RUNCVM_KVM_DEVICE: a stand-in that opens, a missing path, a folder */
let kvmStandIn: string;
let kvmMissing: string;
let kvmUnopenable: string;
let cd: StartedContainerd;
let fx: RuntimeFixture;
let busybox: string;
let fcWrapper: string;
let bootWrapper: string;
let ignoreWrapper: string;
let ioWrapper: string;
let seq = 0;

const G = '/.runcvm/guest';

/** where the fake logs its requests, inside the container (the state dir: the host reads it until `task delete`) */
const FAKE_LOG = '/.runcvm/state/fake-firecracker.log';

/** A copy (hard links) of the built guest package plus the fake as bin/firecracker, run with `fakeEnv`. */
async function guestWithFakeFirecracker(dir: string, name: string, fakeEnv: Record<string, string>): Promise<string> {
  const src = process.env.RUNCVM_ASSETS ? join(process.env.RUNCVM_ASSETS, 'guest') : projectPath('var', 'assets', 'guest');
  const guest = join(dir, name);
  // the package folder may be a symlink to a versioned folder that a rebuild swaps atomically: copy what it points to
  await run('cp', ['-al', `${await realpath(src)}/.`, guest]);
  await mkdir(join(guest, 'lib', 'fake-firecracker'), { recursive: true });
  await copyFile(projectPath('test', 'fixtures', 'fake-firecracker', 'fake-firecracker.mjs'), join(guest, 'lib', 'fake-firecracker', 'fake-firecracker.mjs'));
  await copyFile(projectPath('schemas', 'firecracker-api.json'), join(guest, 'lib', 'fake-firecracker', 'firecracker-api.json'));
  const script = [
    `#!${G}/bin/busybox sh`,
    `export FAKE_FC_SCHEMA=${G}/lib/fake-firecracker/firecracker-api.json FAKE_FC_REQUIRE_ROOT=1 ${Object.entries(fakeEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`,
    `exec ${G}/lib/ld --library-path ${G}/lib ${G}/bin/node ${G}/lib/fake-firecracker/fake-firecracker.mjs "$@"`,
    '',
  ].join('\n');
  await writeFile(join(guest, 'bin', 'firecracker'), script);
  await chmod(join(guest, 'bin', 'firecracker'), 0o755);
  return guest;
}

/** The guest package with the fake that answers Kvm(Error(19)), made in beforeAll. */
const noKvmGuest = () => join(fx.dir, 'guest-fc');

interface FakeLogEntry {
  method: string;
  path: string;
  body?: unknown;
  status: number;
  id?: string;
}

function readLog(text: string): FakeLogEntry[] {
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as FakeLogEntry);
}

/** `ctr run -d` under Firecracker (the fake's booted-guest mode); resolves once the fake has booted the VM. */
async function startDetached(wrapper: string, id: string): Promise<{ log: string; debugLog: string }> {
  const r = await cd.ctr(['run', '-d', '--runc-binary', wrapper, '--env', 'RUNCVM_HYPERVISOR=firecracker', busybox, id, 'sleep', '100000'], { reject: false, timeoutMs: 120_000 });
  expect(r.exitCode, r.stderr).toBe(0);
  const log = join(fx.stateDir, id, 'fake-firecracker.log');
  // the launcher listens on every socket (io, exec mux) before it starts Firecracker, so a booted fake means ready
  await waitFor(`the fake Firecracker of ${id} to boot`, async () => readLog(await readFile(log, 'utf8')).some((e) => e.method === 'CONFIG'), { timeoutMs: 120_000, intervalMs: 200 });
  return { log, debugLog: join(fx.logDir, `runcvm-${id}.debug`) };
}

/**
 * SIGTERM the task and take its exit status from containerd's /tasks/exit event (ctr's run/attach/delete would
 * delete the task, and with it the state dir holding the fake's log, before it could be read); then read the fake's
 * log and the launcher's debug log, and delete the task and the container.
 */
async function killAndCollect(id: string, log: string, debugLog: string): Promise<{ entries: FakeLogEntry[]; debug: string; exitCode: number; sockets: string[] }> {
  const events = await spawnChild('ctr', ['--address', cd.socket, '-n', cd.namespace, 'events']);
  let text = '';
  events.stdout?.on('data', (d: Buffer) => (text += d.toString('utf8')));
  let exitCode: number | undefined;
  try {
    // ctr subscribes asynchronously: only an event it printed proves it listens (a label change emits /containers/update)
    await waitFor(`ctr events for ${id} to listen`, async () => {
      await cd.ctr(['containers', 'label', id, `probe=${++seq}`]);
      return text.includes('/containers/update');
    }, { timeoutMs: 60_000, intervalMs: 200 });
    await cd.ctr(['task', 'kill', id]); // SIGTERM
    await waitFor(`the exit event of ${id}`, async () => {
      for (const line of text.split('\n')) {
        const m = /\/tasks\/exit (\{.*\})\s*$/.exec(line);
        if (!m) continue;
        const e = JSON.parse(m[1]!) as { container_id?: string; id?: string; exit_status?: number };
        if (e.container_id === id && e.id === id) exitCode = e.exit_status ?? 0; // exit_status 0 is omitted
      }
      return exitCode !== undefined;
    }, { timeoutMs: 120_000, intervalMs: 200 });
  } finally {
    events.kill('SIGKILL');
  }
  const entries = readLog(await readFile(log, 'utf8'));
  const debug = await readFile(debugLog, 'utf8').catch(() => '');
  // sockets the launcher or Firecracker left in the state dir once the task ended (before `delete` removes it all)
  const state = join(fx.stateDir, id);
  const sockets: string[] = [];
  for (const name of await readdir(state)) if ((await lstat(join(state, name))).isSocket()) sockets.push(name);
  await cd.ctr(['task', 'delete', id], { reject: false });
  await cd.ctr(['container', 'delete', id], { reject: false });
  return { entries, debug, exitCode: exitCode ?? -1, sockets };
}

async function ctrRun(wrapper: string, env: string[], cmd: string[]): Promise<RunResult> {
  const id = `fc${++seq}`;
  return ctrRunIn(cd, { runtime: wrapper, image: busybox, id, cmd, env, timeoutMs: 120_000 });
}

describe('RUNCVM_HYPERVISOR=firecracker through containerd (fake Firecracker, no KVM)', () => {
  beforeAll(async () => {
    ({ fx, cd, image: busybox } = await startRuncvmSuite(closers));
    kvmStandIn = join(fx.dir, 'kvm-stand-in');
    await writeFile(kvmStandIn, '', { mode: 0o600 });
    kvmMissing = join(fx.dir, 'no-kvm-here');
    kvmUnopenable = join(fx.dir, 'kvm-folder');
    await mkdir(kvmUnopenable);
    const kvm = { RUNCVM_KVM_DEVICE: kvmStandIn };
    const guest = await guestWithFakeFirecracker(fx.dir, 'guest-fc', { FAKE_FC_NO_KVM: '1' });
    fcWrapper = await fx.wrapperWith('runcvm-runtime-fc', { RUNCVM_GUEST_DIR: guest, ...kvm });
    const booted = await guestWithFakeFirecracker(fx.dir, 'guest-fc-boot', { FAKE_FC_GUEST: '1', FAKE_FC_EXEC_AGENT: '1', FAKE_FC_LOG: FAKE_LOG });
    bootWrapper = await fx.wrapperWith('runcvm-runtime-fc-boot', { RUNCVM_GUEST_DIR: booted, ...kvm });
    const ignoring = await guestWithFakeFirecracker(fx.dir, 'guest-fc-ignore', { FAKE_FC_GUEST: '1', FAKE_FC_IGNORE_CAD: '1', FAKE_FC_LOG: FAKE_LOG });
    ignoreWrapper = await fx.wrapperWith('runcvm-runtime-fc-ignore', { RUNCVM_GUEST_DIR: ignoring, ...kvm });
    const withIo = await guestWithFakeFirecracker(fx.dir, 'guest-fc-io', { FAKE_FC_GUEST: '1', FAKE_FC_GUEST_IO: '1', FAKE_FC_LOG: FAKE_LOG });
    ioWrapper = await fx.wrapperWith('runcvm-runtime-fc-io', { RUNCVM_GUEST_DIR: withIo, ...kvm });
  });
  afterAll(async () => {
    await closers.close();
  });

  it("Firecracker's Kvm(Error(19)) is reported on the container's stderr with cause and fix, exit 125", async () => {
    const r = await ctrRun(fcWrapper, ['RUNCVM_HYPERVISOR=firecracker'], ['echo', 'never printed']);
    expect(r.exitCode, r.stderr).toBe(125);
    expect(r.stdout).not.toContain('never printed');
    expect(r.stdout).not.toContain('Running Firecracker'); // Firecracker's own log goes to --log-path, not the container's stdout
    const lines = r.stderr.split('\n');
    expect(lines).toContain('runcvm: error: firecracker cannot start the microVM: KVM is not available on this node (no /dev/kvm)');
    expect(r.stderr).toMatch(/runcvm: cause: KVM is not available on this node \(no \/dev\/kvm\): Firecracker reported Kvm\(Error\(19\)\)/);
    expect(r.stderr).toContain('ls -l /dev/kvm');
    expect(r.stderr).toMatch(/nested virtualization/);
  });

  it('RUNCVM_HYPERVISOR=firecracker without a firecracker binary fails at create, plainly', async () => {
    const noBinary = await fx.wrapperWith('runcvm-runtime-nofc', { RUNCVM_KVM_DEVICE: kvmStandIn });
    const r = await ctrRun(noBinary, ['RUNCVM_HYPERVISOR=firecracker'], ['echo', 'never printed']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).not.toContain('never printed');
    expect(r.stderr).toMatch(/firecracker is not installed on this node/);
    expect(r.stderr).toMatch(/RUNCVM_HYPERVISOR=qemu/);
  });

  it('a firecracker outside the guest package: RUNCVM_FIRECRACKER in the runtime\'s environment is bound in and run; the container\'s own RUNCVM_FIRECRACKER is not honoured', async () => {
    const guest = await guestWithFakeFirecracker(fx.dir, 'guest-fc-ext', { FAKE_FC_NO_KVM: '1' });
    const outside = join(fx.dir, 'node-bin', 'firecracker');
    await mkdir(join(fx.dir, 'node-bin'), { recursive: true });
    await rename(join(guest, 'bin', 'firecracker'), outside);
    const noBinary = await fx.wrapperWith('runcvm-runtime-fc-nobin', { RUNCVM_GUEST_DIR: guest, RUNCVM_KVM_DEVICE: kvmStandIn });
    const viaEnv = await fx.wrapperWith('runcvm-runtime-fc-ext', { RUNCVM_GUEST_DIR: guest, RUNCVM_FIRECRACKER: outside, RUNCVM_KVM_DEVICE: kvmStandIn });
    // the control: the package has no firecracker, and a path in the container's env is not the node's configuration
    const refused = await ctrRun(noBinary, ['RUNCVM_HYPERVISOR=firecracker', `RUNCVM_FIRECRACKER=${outside}`], ['echo', 'never printed']);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/firecracker is not installed on this node/);
    // the node's RUNCVM_FIRECRACKER: the fake ran inside the container (its Kvm(Error(19)) came back as runcvm's error)
    const r = await ctrRun(viaEnv, ['RUNCVM_HYPERVISOR=firecracker'], ['echo', 'never printed']);
    expect(r.exitCode, r.stderr).toBe(125);
    expect(r.stderr).toContain('runcvm: error: firecracker cannot start the microVM: KVM is not available on this node (no /dev/kvm)');
  });

  describe('the node has no usable KVM device (RUNCVM_KVM_DEVICE set by the test)', () => {
    it('no device: RUNCVM_HYPERVISOR=firecracker is refused at create, naming the device and the fix, before Firecracker runs; a container cannot choose the device', async () => {
      const wrapper = await fx.wrapperWith('runcvm-runtime-fc-nokvm', { RUNCVM_GUEST_DIR: noKvmGuest(), RUNCVM_KVM_DEVICE: kvmMissing });
      // the container's own RUNCVM_KVM_DEVICE is not the node's configuration: it is ignored
      const r = await ctrRun(wrapper, ['RUNCVM_HYPERVISOR=firecracker', `RUNCVM_KVM_DEVICE=${kvmStandIn}`], ['echo', 'never printed']);
      expect(r.exitCode, r.stderr).not.toBe(0);
      expect(r.stdout).not.toContain('never printed');
      expect(r.stderr).toContain(`runcvm: error: RUNCVM_HYPERVISOR=firecracker but KVM is not usable here: ${kvmMissing} does not exist`);
      expect(r.stderr).toMatch(/RUNCVM_HYPERVISOR=qemu/);
      expect(r.stderr).not.toContain('Kvm(Error('); // runcvm's own check answered: the fake never started
    });

    it('a device that cannot be opened read/write: refused at create the same way', async () => {
      const wrapper = await fx.wrapperWith('runcvm-runtime-fc-badkvm', { RUNCVM_GUEST_DIR: noKvmGuest(), RUNCVM_KVM_DEVICE: kvmUnopenable });
      const r = await ctrRun(wrapper, ['RUNCVM_HYPERVISOR=firecracker'], ['echo', 'never printed']);
      expect(r.exitCode, r.stderr).not.toBe(0);
      expect(r.stderr).toContain(`runcvm: error: RUNCVM_HYPERVISOR=firecracker but KVM is not usable here: ${kvmUnopenable} cannot be opened read/write`);
    });

    it('unset RUNCVM_HYPERVISOR, firecracker present, no KVM device: QEMU runs the container (TCG)', async () => {
      const wrapper = await fx.wrapperWith('runcvm-runtime-auto-nokvm', { RUNCVM_GUEST_DIR: noKvmGuest(), RUNCVM_KVM_DEVICE: kvmMissing });
      const r = await ctrRun(wrapper, [], ['echo', 'hello from qemu']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toBe('hello from qemu\n');
    });
  });

  // The default choice with a device that opens also asks the CPU (vmx/svm, not KVM-PVM), which no test can set: on
  // a KVM host the runtime picks the Firecracker it finds (the fake, which fails with Kvm(Error(19)) by design, exit
  // 125); on a KVM-PVM or virtualization-less host it picks QEMU. Both outcomes are asserted, each where it applies;
  // the pure choice is unit-tested for every combination (test/unit/runcvm/hypervisor/firecracker/errors.test.ts).
  it('unset RUNCVM_HYPERVISOR, firecracker present, a device that opens: the CPU decides, Firecracker on a KVM host, QEMU otherwise', async () => {
    const cpu = kvmProblem({ kvmExists: true, kvmOpenable: true, cpuFlags: cpuFlagsFromCpuinfo(readCpuinfo()), kvmPvm: existsSync('/sys/module/kvm_pvm') });
    const r = await ctrRun(fcWrapper, [], ['echo', 'hello from qemu']);
    if (cpu === undefined) {
      expect(r.exitCode, r.stderr).toBe(125);
      expect(r.stderr).toContain('runcvm: error: firecracker cannot start the microVM: KVM is not available on this node (no /dev/kvm)');
    } else {
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toBe('hello from qemu\n');
    }
  });

  describe('a booted guest (the fake plays it): --id, exec over vsock port 1025, graceful stop', () => {
    it('ctr task exec reaches the exec agent on <uds_path>_1025; ctr task kill → SendCtrlAltDel → exit 143', async () => {
      const id = 'fc_boot.1'; // '_' and '.' are valid in containerd ids, not in Firecracker's --id
      const { log, debugLog } = await startDetached(bootWrapper, id);

      const e1 = await cd.ctr(['task', 'exec', '--exec-id', 'x1', id, 'echo', 'hello', 'world'], { reject: false, timeoutMs: 120_000 });
      expect({ exit: e1.exitCode, stdout: e1.stdout, stderr: e1.stderr }).toEqual({ exit: 0, stdout: 'fake exec agent ran [echo hello world] as uid 0 in /\n', stderr: '' });
      const e2 = await cd.ctr(['task', 'exec', '--exec-id', 'x2', '--user', '1000', '--cwd', '/tmp', id, 'exit', '3'], { reject: false, timeoutMs: 120_000 });
      expect(e2.exitCode, e2.stderr).toBe(3);
      expect(e2.stdout).toBe('fake exec agent ran [exit 3] as uid 1000 in /tmp\n');
      expect(readLog(await readFile(log, 'utf8')).filter((e) => e.method === 'EXEC').map((e) => e.path)).toEqual(['vsock:1025', 'vsock:1025']);

      // the leftover check below can see this suite's processes (so its empty answer means something)
      expect(await mine('fake-firecracker.mjs')).toHaveLength(1);
      expect(await mine('/lib/runcvm/launcher.')).toHaveLength(1); // launcher.mjs, or launcher.blob (its start-up snapshot)

      const stop = await killAndCollect(id, log, debugLog);
      const entries = stop.entries;
      // Firecracker got the container's id, sanitised to its rules (letters, digits, '-', at most 64)
      expect(instanceId(id)).toBe('fc-boot-1');
      expect(new Set(entries.map((e) => e.id))).toEqual(new Set(['fc-boot-1']));
      const cad = entries.filter((e) => e.method === 'PUT' && e.path === '/actions');
      expect(cad).toEqual([{ method: 'PUT', path: '/actions', body: { action_type: 'SendCtrlAltDel' }, status: 204, id: 'fc-boot-1' }]);
      expect(requestViolations('PUT', '/actions', cad[0]!.body)).toEqual([]);
      expect(stop.debug).toContain('SIGTERM before the guest connected: sent SendCtrlAltDel; firecracker exited within 5000 ms');
      expect(stop.exitCode).toBe(143);
      expect(stop.sockets).toEqual([]);
    });

    it('a guest that ignores Ctrl-Alt-Del: bounded wait, then SIGKILL of Firecracker, exit 143', async () => {
      const id = 'fc-ignore';
      const { log, debugLog } = await startDetached(ignoreWrapper, id);
      const stop = await killAndCollect(id, log, debugLog);
      expect(stop.entries.filter((e) => e.path === '/actions').map((e) => [e.body, e.status])).toEqual([[{ action_type: 'SendCtrlAltDel' }, 204]]);
      expect(stop.debug).toContain('SIGTERM before the guest connected: sent SendCtrlAltDel; firecracker did not exit within 5000 ms, killed it (SIGKILL)');
      expect(stop.exitCode).toBe(143);
      expect(stop.sockets).toEqual([]);
    });

    it('guest connected: SIGTERM goes to the workload over the channel (no SendCtrlAltDel); a VMM still up after the EXIT is stopped', async () => {
      const id = 'fc-io';
      const { log, debugLog } = await startDetached(ioWrapper, id);
      // the launcher logs the guest's READY once the channel is connected
      await waitFor(`the guest channel of ${id}`, async () => (await readFile(debugLog, 'utf8')).includes('guest init ready'), { timeoutMs: 60_000, intervalMs: 200 });
      const stop = await killAndCollect(id, log, debugLog);
      const seq = stop.entries.filter((e) => ['SIGNAL', 'ACK', 'PUT'].includes(e.method)).map((e) => (e.method === 'PUT' ? `PUT ${JSON.stringify(e.body)}` : `${e.method} ${JSON.stringify(e.body ?? {})}`));
      // the signal reached the "workload" first; SendCtrlAltDel came only from the after-exit watchdog
      expect(seq).toEqual(['SIGNAL {"signal":15}', 'ACK {}', 'PUT {"action_type":"SendCtrlAltDel"}']);
      expect(stop.debug).toContain('forwarding SIGTERM to the guest');
      expect(stop.debug).toContain("firecracker still running 5000 ms after the workload's exit: sent SendCtrlAltDel; firecracker exited within 5000 ms");
      expect(stop.exitCode).toBe(143); // the workload's reported status (128+15)
      expect(stop.sockets).toEqual([]);
    });
  });

  it('leaves nothing behind (state dirs, fake Firecracker processes)', async () => {
    // QEMU processes are not checked here (other suites may be running VMs on the same machine), nor debug logs: a
    // create that fails keeps /tmp/runcvm-<id>.debug today (runtime core's behaviour, noted in docs/dev/notes/firecracker.md)
    const left = await leftovers(fx);
    expect(left.state, JSON.stringify(left.state)).toEqual([]);
    expect(await mine('fake-firecracker.mjs')).toEqual([]);
    expect(await mine('/lib/runcvm/launcher.')).toEqual([]);
  });
});

/** Processes of this suite's containers running `what` (their mounts come from this fixture's folder). */
async function mine(what: string): Promise<string[]> {
  const ps = await run('ps', ['-eo', 'pid,args'], { reject: false });
  const out: string[] = [];
  for (const line of ps.stdout.split('\n').filter((l) => l.includes(what))) {
    const pid = line.trim().split(/\s+/)[0];
    const mi = await readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '');
    if (mi.includes(fx.dir)) out.push(line);
  }
  return out;
}
