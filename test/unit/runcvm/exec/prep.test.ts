/**
 * The runtime's exec verb in static C (src/runcvm/guest/exec-prep.c, `runcvm-exec --runtime`), held to the TypeScript
 * it stands in for: for the same container and the same runc arguments it must write the same request for the guest
 * (encodeOpenRequest(rewriteExecProcess(...).request)), give runc the same process (rewriteExecProcess(...).process)
 * and the same argv (runcExecArgv), and hand every case it does not handle to the Node entry with the arguments
 * unchanged. runc and node are stub scripts; the container's init is a live `sleep` with its real start time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../../src/core/exec/index.js';
import { projectPath } from '../../../../src/core/paths.js';
import { encodeOpenRequest } from '../../../../src/runcvm/agent/exec.js';
import { parseExecArgs } from '../../../../src/runcvm/exec/args.js';
import { processFromFlags, rewriteExecProcess, runcExecArgv } from '../../../../src/runcvm/exec/rewrite.js';
import type { OciProcess } from '../../../../src/runcvm/launch/oci.js';
import type { LaunchProcess } from '../../../../src/runcvm/launch/schema.js';

const GUEST = projectPath('src', 'runcvm', 'guest');
let dir: string;
let client: string;
let sleeper: ChildProcess;
let socketServer: Server;
const runcRoot = () => join(dir, 'runc-root');
const stateRoot = () => join(dir, 'state');

const LAUNCH_PROCESS: LaunchProcess = {
  args: ['sleep', 'infinity'],
  env: ['PATH=/usr/bin:/bin', 'HOME=/root', 'A=1'],
  cwd: '/srv',
  user: { uid: 1000, gid: 1000, additionalGids: [10, 20] },
  terminal: false,
  // the container's rlimits reach every exec (RLIM_INFINITY as JSON writes it, rounded up to 2^64; an unknown type is left out)
  rlimits: [{ type: 'RLIMIT_NOFILE', soft: 777, hard: 888 }, { type: 'RLIMIT_CORE', soft: 2 ** 64, hard: 2 ** 64 }, { type: 'RLIMIT_NEW', soft: 1, hard: 1 }],
  noNewPrivileges: true,
  capabilities: { bounding: ['CAP_CHOWN', 'CAP_KILL'], effective: ['CAP_KILL'], inheritable: [], permitted: ['CAP_KILL', 'CAP_CHOWN'], ambient: [] },
};

/** What containerd passes with --process: an OCI process with more than the request needs. */
const ENGINE_PROCESS: OciProcess & Record<string, unknown> = {
  terminal: true,
  consoleSize: { height: 40, width: 120 },
  user: { uid: 0, gid: 0, additionalGids: [1, 2] },
  args: ['sh', '-c', 'echo "quoted \\"x\\"" ünïcødé\ttab'],
  env: ['PATH=/bin', 'X=1', 'X=2', 'TERM=xterm'],
  cwd: '',
  capabilities: { bounding: ['CAP_NET_RAW', 'CAP_UNKNOWN', 'CAP_NET_RAW'], effective: ['CAP_NET_RAW'], permitted: ['CAP_NET_RAW'] },
  rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
  noNewPrivileges: true,
  apparmorProfile: 'cri-containerd.apparmor.d',
  commandLine: 'ignored',
};

async function writeRuncRecord(id: string, pid: number, opts: { stateMount?: string } = {}): Promise<void> {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  const mounts = [{ source: 'proc', destination: '/proc' }, ...(opts.stateMount ? [{ source: opts.stateMount, destination: '/.runcvm/state' }] : [])];
  await mkdir(join(runcRoot(), id), { recursive: true });
  await writeFile(join(runcRoot(), id, 'state.json'), JSON.stringify({ id, init_process_pid: pid, init_process_start: start, config: { mounts }, cgroup_paths: {} }));
}

async function vmContainer(id: string, stateDir = join(stateRoot(), id)): Promise<string> {
  await mkdir(stateDir, { recursive: true });
  await writeFile(join(stateDir, 'launch.json'), JSON.stringify({ containerId: id, process: LAUNCH_PROCESS, vm: { hypervisor: 'qemu' } }));
  return stateDir;
}

async function listenOn(path: string): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

/** runcvm-exec --runtime with stub runc and node: what each saw */
async function prep(args: string[], env: Record<string, string> = {}) {
  await rm(join(dir, 'out'), { recursive: true, force: true });
  await mkdir(join(dir, 'out'));
  const r = await run(client, ['--runtime', join(dir, 'node-stub'), '/entry.mjs', '--', ...args], {
    reject: false,
    env: { RUNCVM_RUNC: join(dir, 'runc-stub'), RUNCVM_STATE_DIR: stateRoot(), OUT: join(dir, 'out'), PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  });
  const read = (f: string) => readFile(join(dir, 'out', f), 'utf8').catch(() => undefined);
  return { r, runcArgv: (await read('runc-argv'))?.split('\n').slice(0, -1), process: await read('process.json'), nodeArgv: (await read('node-argv'))?.split('\n').slice(0, -1) };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'exec-prep-'));
  client = join(dir, 'runcvm-exec');
  const srcs = readFileSync(join(GUEST, 'sources.txt'), 'utf8').split('\n').find((l) => l.startsWith('runcvm-exec: '))!.slice(13).trim().split(/\s+/);
  await run('gcc', ['-O0', '-Wall', '-Wextra', '-Werror', '-I', GUEST, '-o', client, ...srcs.map((f) => join(GUEST, f))], { timeoutMs: 120_000 });
  // runc: records its argv and a copy of the process file (removed by the client once runc returns)
  await writeFile(join(dir, 'runc-stub'), '#!/bin/sh\nprintf "%s\\n" "$@" > "$OUT/runc-argv"\nprev=\nfor a; do [ "$prev" = --process ] && cp "$a" "$OUT/process.json"; prev=$a; done\nexit "${RUNC_EXIT:-0}"\n');
  await writeFile(join(dir, 'node-stub'), '#!/bin/sh\nprintf "%s\\n" "$@" > "$OUT/node-argv"\nexit 42\n');
  await chmod(join(dir, 'runc-stub'), 0o755);
  await chmod(join(dir, 'node-stub'), 0o755);
  sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  const id = 'c1';
  const state = await vmContainer(id);
  await writeRuncRecord(id, sleeper.pid!, { stateMount: state });
  socketServer = await listenOn(join(state, 'exec.sock'));
  await writeFile(join(dir, 'process.json'), JSON.stringify(ENGINE_PROCESS));
}, 180_000);

afterAll(async () => {
  sleeper?.kill('SIGKILL');
  socketServer?.close();
  await rm(dir, { recursive: true, force: true });
});

/** the request id the client chose (from the process file name it gave runc) */
const ridOf = (argv: string[]) => /exec-([0-9a-f]{16})\.process\.json$/.exec(argv[argv.indexOf('--process') + 1]!)![1]!;

describe('runcvm-exec --runtime (the exec verb without Node)', () => {
  it('--process (the engines\' form): the same request, process and runc argv as the TypeScript', async () => {
    const args = ['--root', runcRoot(), '--log', '/l.json', 'exec', '--detach', '--pid-file', '/p.pid', '--console-socket', '/c.sock', '--process', join(dir, 'process.json'), 'c1'];
    const { r, runcArgv, process: proc, nodeArgv } = await prep(args);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(nodeArgv).toBeUndefined();
    const rid = ridOf(runcArgv!);
    const want = rewriteExecProcess(ENGINE_PROCESS, rid);
    expect(JSON.parse(proc!)).toEqual(JSON.parse(JSON.stringify(want.process)));
    const processFile = join(stateRoot(), 'c1', `exec-${rid}.process.json`);
    expect(runcArgv).toEqual([...runcExecArgv(['--root', runcRoot(), '--log', '/l.json'], parseExecArgs(args.slice(5)), processFile)]);
    // the request stays for the client in the container (it removes it); the process file is gone once runc returned
    const request = await readFile(join(stateRoot(), 'c1', `exec-${rid}.req`));
    expect(request.equals(encodeOpenRequest(want.request))).toBe(true);
    const left = await readdir(join(stateRoot(), 'c1'));
    expect(left.filter((f) => f.endsWith('.process.json') || f.includes('.tmp-'))).toEqual([]);
    await rm(join(stateRoot(), 'c1', `exec-${rid}.req`));
  });

  it('the flag form (runc exec ID CMD): runc\'s rules over the process in launch.json, as processFromFlags', async () => {
    const verbArgs = ['-e', 'A=2', '--env=B=3', '-u', '0:5', '--cwd', '/tmp', '-t', '--cap', 'CAP_SYS_ADMIN', '--no-new-privs=false', 'c1', 'id', '-u'];
    const { r, runcArgv, process: proc } = await prep([`--root=${runcRoot()}`, 'exec', ...verbArgs]);
    expect(r.exitCode, r.stderr).toBe(0);
    const rid = ridOf(runcArgv!);
    const parsed = parseExecArgs(verbArgs);
    const want = rewriteExecProcess(processFromFlags(LAUNCH_PROCESS, parsed), rid);
    expect(JSON.parse(proc!)).toEqual(JSON.parse(JSON.stringify(want.process)));
    const request = await readFile(join(stateRoot(), 'c1', `exec-${rid}.req`));
    expect(request.toString('utf8').split('\0')).toEqual(encodeOpenRequest(want.request).toString('utf8').split('\0'));
    expect(request.toString('utf8').split('\0').filter((e) => e.startsWith('rlimit='))).toEqual(['rlimit=7 777 888', 'rlimit=4 18446744073709551615 18446744073709551615']);
    expect(runcArgv).toEqual(runcExecArgv([`--root=${runcRoot()}`], parsed, join(stateRoot(), 'c1', `exec-${rid}.process.json`)));
    await rm(join(stateRoot(), 'c1', `exec-${rid}.req`));
  });

  it('the state folder from runc\'s record when RUNCVM_STATE_DIR does not hold it', async () => {
    const elsewhere = await vmContainer('c2', join(dir, 'other-state', 'c2'));
    await writeRuncRecord('c2', sleeper.pid!, { stateMount: elsewhere });
    const server = await listenOn(join(elsewhere, 'exec.sock'));
    try {
      const { r, runcArgv } = await prep(['--root', runcRoot(), 'exec', 'c2', 'true']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(runcArgv!.at(-2)).toMatch(new RegExp(`^${elsewhere}/exec-[0-9a-f]{16}\\.process\\.json$`));
    } finally {
      server.close();
    }
  });

  it('exec --cgroup: runc gets it (it moves the client), and a warning says the command in the VM stays in its own cgroups', async () => {
    const { r, runcArgv } = await prep(['--root', runcRoot(), 'exec', '--cgroup', 'sub', 'c1', 'true']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(runcArgv).toContain('--cgroup');
    expect(r.stderr).toContain("runcvm: warning: exec --cgroup sub moves only runcvm's exec client into that host cgroup; the command runs inside the microVM, whose cgroups are its own");
    for (const f of (await readdir(join(stateRoot(), 'c1'))).filter((n) => n.startsWith('exec-'))) await rm(join(stateRoot(), 'c1', f));
  });

  it('runc\'s failure: its exit status, and neither file left', async () => {
    const { r, runcArgv } = await prep(['--root', runcRoot(), 'exec', 'c1', 'true'], { RUNC_EXIT: '3' });
    expect(r.exitCode).toBe(3);
    expect(runcArgv).toBeDefined();
    expect((await readdir(join(stateRoot(), 'c1'))).filter((f) => f.startsWith('exec-'))).toEqual([]);
  });

  it.each([
    ['a stopped container (its init gone)', 'dead', ['exec', 'dead', 'true']],
    ['a VM whose exec socket is not open yet', 'nosock', ['exec', 'nosock', 'true']],
    ['--preserve-fds (refused with a message)', 'c1', ['exec', '--preserve-fds', '1', 'c1', 'true']],
    ['a flag runc does not know', 'c1', ['exec', '--bogus', 'c1', 'true']],
    ['a --user that is not numeric', 'c1', ['exec', '-u', 'app', 'c1', 'true']],
    ['an unknown container', 'none', ['exec', 'none', 'true']],
  ])('%s → the Node implementation, same arguments, nothing written', async (_what, id, verb) => {
    if (id === 'dead') {
      await vmContainer('dead');
      const gone = spawn('true');
      await new Promise((r) => gone.on('exit', r));
      await mkdir(join(runcRoot(), 'dead'), { recursive: true });
      await writeFile(join(runcRoot(), 'dead', 'state.json'), JSON.stringify({ init_process_pid: gone.pid, init_process_start: 1, config: { mounts: [] } }));
    }
    if (id === 'nosock') {
      await vmContainer('nosock');
      await writeRuncRecord('nosock', sleeper.pid!);
    }
    const args = ['--root', runcRoot(), ...verb];
    const { r, runcArgv, nodeArgv } = await prep(args);
    expect(r.exitCode).toBe(42);
    expect(nodeArgv).toEqual(['/entry.mjs', ...args]);
    expect(runcArgv).toBeUndefined();
    if (id !== 'none') expect((await readdir(join(stateRoot(), id === 'c1' ? 'c1' : id))).filter((f) => f.startsWith('exec-'))).toEqual([]);
  });
});
