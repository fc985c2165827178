/**
 * The exec agent (src/runcvm/guest/agent.c) and the launcher's multiplexer (src/runcvm/agent/mux.ts) on the host,
 * without a VM: the agent is compiled as in the asset step and run in its test mode (`--socket`, connecting to the
 * mux's port socket instead of the virtio port); each "client" is a unix connection to the mux's client socket
 * speaking the exec frames, as the exec client does. Proves: user/groups/cwd/env, stdout vs stderr, exit codes,
 * death by signal (128+N), signal forwarding, stdin through `wc -c`, a pty with its size, several execs at once with
 * interleaved output intact, nothing lost at the end of a large output, CLOSE kills, missing command → 127.
 * Then the real exec client (src/runcvm/guest/exec-client.c, test-mode paths from RUNCVM_EXEC_STATE/SOCKET) end to
 * end through the same mux and agent: request file consumed, stdio relayed apart, exit code and signals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { Channel, decodeExit, encodeData, encodeFrame, encodeSignal, FrameDecoder, FrameType } from '../../src/runcvm/agent/codec.js';
import { encodeOpen, encodeOpenRequest, exitCodeOf, requestFileName, type ExecRequest } from '../../src/runcvm/agent/exec.js';
import { access, writeFile } from 'node:fs/promises';
import { waitFor } from '../harness/wait.js';
import { buildGuestBinary, EXEC_CLIENT_SOURCES, startHostAgent } from './runcvm/host-agent.js';

const closers = new CloserStack();
let clientSocket: string;
let clientBin: string;
let stateDir: string;

interface Outcome {
  stdout: string;
  stderr: string;
  code: number;
  signal: number;
  /** frame types in arrival order (EXIT must come after both EOFs) */
  order: string[];
}

interface Exec {
  send(b: Buffer): void;
  done: Promise<Outcome>;
  stdout(): string;
}

function startExec(req: Partial<ExecRequest> & { args: string[] }, input?: Buffer): Exec {
  const full: ExecRequest = { env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false, ...req };
  const sock = connect(clientSocket);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const order: string[] = [];
  const dec = new FrameDecoder();
  const done = new Promise<Outcome>((resolve, reject) => {
    let exit: { code: number; signal: number } | undefined;
    sock.on('connect', () => {
      sock.write(encodeOpen(full));
      if (input) for (const f of encodeData(Channel.stdin, input)) sock.write(f);
      if (input || !full.terminal) sock.write(encodeFrame(FrameType.EOF, Channel.stdin));
    });
    sock.on('data', (chunk: Buffer) => {
      for (const f of dec.push(chunk)) {
        if (f.type === FrameType.DATA) (f.channel === Channel.stdout ? out : err).push(f.payload);
        else if (f.type === FrameType.EOF) order.push(`eof${f.channel}`);
        else if (f.type === FrameType.EXIT) {
          exit = decodeExit(f.payload);
          order.push('exit');
        }
      }
    });
    sock.on('error', reject);
    sock.on('close', () => {
      if (!exit) reject(new Error('connection closed without EXIT'));
      else resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: exitCodeOf(exit), signal: exit.signal, order });
    });
  });
  return { send: (b) => sock.write(b), done, stdout: () => Buffer.concat(out).toString() };
}

const sh = (script: string, extra: Partial<ExecRequest> = {}, input?: Buffer) => startExec({ args: ['/bin/sh', '-c', script], ...extra }, input).done;

describe('exec agent + launcher mux on the host (no VM)', () => {
  beforeAll(async () => {
    const dir = await tempDir('runcvm-agent', closers);
    clientBin = await buildGuestBinary(join(dir, 'runcvm-exec'), EXEC_CLIENT_SOURCES);
    stateDir = dir;
    ({ clientSocket } = await startHostAgent(dir, closers));
    // READY has arrived when an exec answers
    await waitFor('the agent to answer an exec', async () => (await sh('echo ok')).stdout === 'ok\n', { timeoutMs: 10_000 });
  });
  afterAll(async () => {
    await closers.close();
  });

  it('separates stdout and stderr, reports the exit code after both streams ended', async () => {
    const r = await sh('echo out; echo err >&2; exit 3');
    expect(r).toMatchObject({ stdout: 'out\n', stderr: 'err\n', code: 3, signal: 0 });
    expect(r.order.at(-1)).toBe('exit');
    expect(r.order.slice(0, 2).sort()).toEqual(['eof1', 'eof2']);
    expect((await sh('exit 0')).code).toBe(0);
    expect((await sh('exit 255')).code).toBe(255);
  });

  it('runs as the requested uid, gid and supplementary groups, in the cwd, with exactly the env (+HOME)', async () => {
    const r = await sh('id -u; id -g; id -G; pwd; env | sort', { user: { uid: 1000, gid: 1000, additionalGids: [1000, 2000] }, cwd: '/tmp', env: ['PATH=/usr/bin:/bin', 'FOO=bar baz'] });
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 4)).toEqual(['1000', '1000', '1000 2000', '/tmp']);
    expect(lines.slice(4).filter((l) => !l.startsWith('PWD=') && !l.startsWith('SHLVL=') && !l.startsWith('_=')).join('\n')).toMatch(/^FOO=bar baz\nHOME=\S+\nPATH=\/usr\/bin:\/bin$/);
  });

  it('a command that cannot start (missing, bad cwd): 255 with runc\'s wording; a command\'s own 127 stays 127', async () => {
    const r = await startExec({ args: ['no-such-cmd'] }).done;
    expect(r.code).toBe(255);
    expect(r.stderr).toBe('exec failed: unable to start container process: exec: "no-such-cmd": executable file not found in $PATH\n');
    const p = await startExec({ args: ['/no/such/cmd'] }).done;
    expect(p).toMatchObject({ code: 255, stderr: 'exec failed: unable to start container process: exec: "/no/such/cmd": stat /no/such/cmd: no such file or directory\n' });
    const c = await startExec({ args: ['true'], cwd: '/no/such/dir' }).done;
    expect(c.code).toBe(255);
    expect(c.stderr).toContain('exec failed: unable to start container process: chdir to cwd ("/no/such/dir") set in config.json failed');
    expect((await sh('exit 127')).code).toBe(127);
  });

  it('stdin reaches the command and EOF ends it', async () => {
    const data = Buffer.alloc(300_000, 'x');
    expect((await sh('wc -c', {}, data)).stdout.trim()).toBe('300000');
    expect((await sh('cat', {}, Buffer.from('hello\n'))).stdout).toBe('hello\n');
  });

  it('death by signal is 128+N; forwarded signals reach the command', async () => {
    const k = await sh('kill -9 $$');
    expect(k).toMatchObject({ code: 137, signal: 9 });
    const e = startExec({ args: ['/bin/sh', '-c', 'trap "echo got TERM; exit 42" TERM; echo ready; while :; do sleep 0.05; done'] });
    await waitFor('the command to be ready', async () => e.stdout() === 'ready\n', { timeoutMs: 5000 });
    e.send(encodeSignal(15));
    expect(await e.done).toMatchObject({ stdout: 'ready\ngot TERM\n', code: 42 });
    const s = startExec({ args: ['sleep', '30'] });
    await new Promise((r) => setTimeout(r, 200));
    s.send(encodeSignal(15));
    expect(await s.done).toMatchObject({ code: 143, signal: 15 });
  });

  it('a terminal: a pty of the requested size, output on stdout only', async () => {
    const r = await startExec({ args: ['/bin/sh', '-c', 'tty; stty size; echo err >&2'], terminal: true, rows: 33, cols: 111 }).done;
    expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\n33 111\r\nerr\r\n$/);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('three execs at once: interleaved output arrives intact, each with its own exit code', async () => {
    const script = (tag: string, code: number) => `i=0; while [ $i -lt 2000 ]; do echo ${tag}-$i; i=$((i+1)); done; exit ${code}`;
    const rs = await Promise.all([sh(script('a', 1)), sh(script('b', 2)), sh(script('c', 3))]);
    rs.forEach((r, n) => {
      const tag = 'abc'[n]!;
      expect(r.code).toBe(n + 1);
      expect(r.stdout).toBe(Array.from({ length: 2000 }, (_v, i) => `${tag}-${i}\n`).join(''));
    });
  });

  it('nothing is lost at the end of a large output', async () => {
    const r = await sh('head -c 5000000 /dev/zero | tr "\\0" y; echo END');
    expect(r.stdout.length).toBe(5_000_004);
    expect(r.stdout.endsWith('yEND\n')).toBe(true);
  });

  it('a client that goes away gets its command killed (CLOSE)', async () => {
    const dir = await tempDir('runcvm-agent-close', closers);
    const mark = join(dir, 'pid');
    const sock = connect(clientSocket);
    await new Promise<void>((r) => sock.on('connect', () => r()));
    sock.write(encodeOpen({ args: ['/bin/sh', '-c', `echo $$ > ${mark}; exec sleep 60`], env: ['PATH=/usr/bin:/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false }));
    let pid = 0;
    await waitFor('the command to start', async () => {
      const t = await run('cat', [mark], { reject: false });
      pid = Number(t.stdout.trim());
      return pid > 0;
    }, { timeoutMs: 5000 });
    sock.destroy();
    await waitFor('the command to be killed', async () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, { timeoutMs: 5000 });
  });

  describe('the exec client (runcvm-exec)', () => {
    let n = 0;
    const client = async (req: Partial<ExecRequest> & { args: string[] }, input?: string) => {
      const id = `t${++n}`;
      const full: ExecRequest = { env: ['PATH=/usr/bin:/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false, ...req };
      const file = join(stateDir, requestFileName(id));
      await writeFile(file, encodeOpenRequest(full), { mode: 0o600 });
      const r = await run(clientBin, [id], { reject: false, timeoutMs: 30_000, env: { RUNCVM_EXEC_STATE: stateDir, RUNCVM_EXEC_SOCKET: clientSocket }, ...(input !== undefined ? { input } : {}) });
      const consumed = await access(file).then(() => false, () => true);
      return { exit: r.exitCode, stdout: r.stdout, stderr: r.stderr, consumed };
    };

    it('relays stdin, stdout and stderr apart and exits with the command code; consumes its request', async () => {
      expect(await client({ args: ['/bin/sh', '-c', 'wc -c; echo err >&2; exit 3'] }, 'abcdef')).toEqual({ exit: 3, stdout: '6\n', stderr: 'err\n', consumed: true });
      expect((await client({ args: ['/bin/sh', '-c', 'kill -9 $$'] })).exit).toBe(137);
      expect((await client({ args: ['true'] })).exit).toBe(0);
    });

    it('a missing request or an unreachable agent: 255 with cause and fix', async () => {
      const r = await run(clientBin, ['nope'], { reject: false, env: { RUNCVM_EXEC_STATE: stateDir, RUNCVM_EXEC_SOCKET: clientSocket } });
      expect(r.exitCode).toBe(255);
      expect(r.stderr).toMatch(/^runcvm: error: cannot read the exec request .*exec-nope\.req: No such file or directory\nruncvm: fix: /);
      await writeFile(join(stateDir, requestFileName('x1')), encodeOpenRequest({ args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false }));
      const u = await run(clientBin, ['x1'], { reject: false, env: { RUNCVM_EXEC_STATE: stateDir, RUNCVM_EXEC_SOCKET: join(stateDir, 'none.sock') } });
      expect(u.exitCode).toBe(255);
      expect(u.stderr).toContain("cannot reach the VM's exec agent");
    });
  });
});
