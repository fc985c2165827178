/**
 * bin/runcvm-runtime (POSIX sh): pass-through verbs reach runc with exactly the same argv; `delete` removes runcvm's
 * state dir and debug log only after runc succeeded, and keeps a DEBUG container's log. runc is a stub script here.
 * `create` starts node from the runtime's V8 start-up snapshot only when that node built it (a stub node here; the
 * real snapshot is run at the end).
 */
import { chmod, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec/index.js';
import { projectPath } from '../../../src/core/paths.js';

let dir: string;
let stub: string;
const exists = (p: string) => stat(p).then(() => true, () => false);

async function dispatch(args: string[], stubExit = 0) {
  return run(projectPath('bin', 'runcvm-runtime'), args, {
    reject: false,
    env: { RUNCVM_RUNC: stub, STUB_EXIT: String(stubExit), STUB_OUT: join(dir, 'argv'), RUNCVM_STATE_DIR: join(dir, 'state'), RUNCVM_LOG_DIR: join(dir, 'log') },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runcvm-dispatch-'));
  stub = join(dir, 'runc-stub');
  await writeFile(stub, '#!/bin/sh\nprintf "%s\\n" "$@" > "$STUB_OUT"\nexit "$STUB_EXIT"\n');
  await chmod(stub, 0o755);
  await mkdir(join(dir, 'log'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('runcvm-runtime dispatcher', () => {
  it.each([
    [['--root', '/run/x', '--log', '/l.json', '--log-format', 'json', 'kill', 'c1', 'SIGTERM']],
    [['--root=/run/x', '--systemd-cgroup', 'start', 'c1']],
    [['state', 'c1']],
    [['--debug', 'ps', '--format', 'json', 'c1']],
  ])('passes %j to runc unchanged', async (args) => {
    const r = await dispatch(args);
    expect(r.exitCode).toBe(0);
    expect((await readFile(join(dir, 'argv'), 'utf8')).split('\n').slice(0, -1)).toEqual(args);
  });

  it('propagates runc exit codes', async () => {
    expect((await dispatch(['kill', 'c1'], 3)).exitCode).toBe(3);
  });

  it('delete removes the state dir and debug log after runc succeeded, keeps them when it failed', async () => {
    await mkdir(join(dir, 'state', 'c2'), { recursive: true });
    await writeFile(join(dir, 'log', 'runcvm-c2.debug'), 'x');
    expect((await dispatch(['--root', '/r', 'delete', '--force', 'c2'], 1)).exitCode).toBe(1);
    expect(await exists(join(dir, 'state', 'c2'))).toBe(true);
    expect((await dispatch(['--root', '/r', 'delete', '--force', 'c2'])).exitCode).toBe(0);
    expect(await exists(join(dir, 'state', 'c2'))).toBe(false);
    expect(await exists(join(dir, 'log', 'runcvm-c2.debug'))).toBe(false);
  });

  it('delete keeps the debug log of a RUNCVM_LOG_LEVEL=DEBUG container', async () => {
    await mkdir(join(dir, 'state', 'c3'), { recursive: true });
    await writeFile(join(dir, 'state', 'c3', 'keep-log'), '');
    await writeFile(join(dir, 'log', 'runcvm-c3.debug'), 'x');
    await dispatch(['delete', 'c3']);
    expect(await exists(join(dir, 'state', 'c3'))).toBe(false);
    expect(await exists(join(dir, 'log', 'runcvm-c3.debug'))).toBe(true);
  });

  it('exec of a container runc records without runcvm mounts goes to runc unchanged', async () => {
    const root = join(dir, 'runc-root');
    await mkdir(join(root, 'p1'), { recursive: true });
    await writeFile(join(root, 'p1', 'state.json'), JSON.stringify({ config: { mounts: [{ source: 'proc', destination: '/proc' }] } }));
    await rm(join(dir, 'argv'), { force: true });
    const args = ['--root', root, 'exec', '-t', 'p1', 'uname', '-r'];
    expect((await dispatch(args)).exitCode).toBe(0);
    expect((await readFile(join(dir, 'argv'), 'utf8')).split('\n').slice(0, -1)).toEqual(args);
  });

  it('exec of a VM container whose state folder is not in RUNCVM_STATE_DIR never reaches runc (no process on the host)', async () => {
    const root = join(dir, 'runc-root');
    await mkdir(join(root, 'v1'), { recursive: true });
    await writeFile(join(root, 'v1', 'state.json'), JSON.stringify({ config: { mounts: [{ source: join(dir, 'gone', 'v1'), destination: '/.runcvm/state' }] } }));
    await rm(join(dir, 'argv'), { force: true });
    const r = await dispatch([`--root=${root}`, 'exec', 'v1', 'uname', '-r']);
    expect(r.exitCode).toBe(255);
    expect(r.stderr).toContain('cannot exec in container v1: it runs as a microVM but its runcvm state folder is missing');
    expect(await exists(join(dir, 'argv'))).toBe(false);
  });

  it('exec waits for the VM\'s exec socket before it runs runc exec (right after `run -d` the launcher may not have opened it yet)', async () => {
    const state = join(dir, 'state', 'w1');
    await mkdir(state, { recursive: true });
    await writeFile(join(state, 'launch.json'), JSON.stringify({ process: { args: ['sleep', '60'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false }, vm: { hypervisor: 'qemu' } }));
    // a runc that reports the container running and notes, at exec time, whether the socket was there
    const runcAt = join(dir, 'runc-socket-stub');
    await writeFile(runcAt, '#!/bin/sh\nfor a; do case $a in state) echo \'{"status":"running"}\'; exit 0 ;; exec) if [ -S "$SOCK" ]; then echo yes; else echo no; fi > "$STUB_OUT"; exit 0 ;; esac; done\nexit 9\n');
    await chmod(runcAt, 0o755);
    const sock = join(state, 'exec.sock');
    const pending = run(projectPath('bin', 'runcvm-runtime'), ['exec', 'w1', 'true'], {
      reject: false,
      env: { RUNCVM_RUNC: runcAt, SOCK: sock, STUB_OUT: join(dir, 'socket-seen'), RUNCVM_STATE_DIR: join(dir, 'state'), RUNCVM_LOG_DIR: join(dir, 'log') },
    });
    await new Promise((r) => setTimeout(r, 1500));
    const server = createServer();
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const r = await pending;
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await readFile(join(dir, 'socket-seen'), 'utf8')).toBe('yes\n');
    } finally {
      server.close();
    }
  });

  it('never removes anything for a path-like id', async () => {
    await mkdir(join(dir, 'state', 'keep'), { recursive: true });
    await dispatch(['delete', '..']);
    expect(await exists(join(dir, 'state', 'keep'))).toBe(true);
  });
});

describe('runcvm-runtime create: the start-up snapshot or runtime.mjs', () => {
  let assets: string;
  let nodeStub: string;
  const blob = () => join(assets, 'runtime', 'runtime.blob');
  const mjs = () => join(assets, 'runtime', 'runtime.mjs');
  const argv = ['--root', '/run/x', '--log', '/l.json', 'create', '--bundle', '/b', 'c9'];
  const keyOf = async (file: string) => (await run('stat', ['-L', '-c', '%d:%i:%s:%Y', file])).stdout.trim();
  /** how the dispatcher started the stub node: its argv, and whether NODE_EXTRA_CA_CERTS reached it */
  async function create(): Promise<{ args: string[]; ca: string }> {
    const out = join(dir, 'node-argv');
    await rm(out, { force: true });
    const r = await run(projectPath('bin', 'runcvm-runtime'), argv, {
      reject: false,
      env: { RUNCVM_ASSETS: assets, RUNCVM_NODE: nodeStub, STUB_OUT: out, NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = (await readFile(out, 'utf8')).split('\n').slice(0, -1);
    return { ca: lines[0]!, args: lines.slice(1) };
  }
  /** a snapshot written after runtime.mjs, keyed by `keyFile`'s identity */
  async function snapshot(keyFile: string, blobAge = 10): Promise<void> {
    await writeFile(mjs(), '');
    await writeFile(blob(), 'blob');
    await writeFile(`${blob()}.key`, `${await keyOf(keyFile)}\n`);
    const now = Date.now() / 1000;
    await utimes(mjs(), now - 20, now - 20);
    await utimes(blob(), now - 20 + blobAge, now - 20 + blobAge);
  }

  beforeAll(async () => {
    assets = join(dir, 'assets');
    await mkdir(join(assets, 'runtime'), { recursive: true });
    nodeStub = join(dir, 'node-stub');
    await writeFile(nodeStub, '#!/bin/sh\n{ echo "ca=${NODE_EXTRA_CA_CERTS:-unset}"; printf "%s\\n" "$@"; } > "$STUB_OUT"\n');
    await chmod(nodeStub, 0o755);
  });

  it("uses the snapshot built by this very node, runc's argv after `--` (node must not read runc's flags as its own)", async () => {
    await snapshot(nodeStub);
    expect(await create()).toEqual({ ca: 'ca=unset', args: ['--snapshot-blob', blob(), '--', ...argv] });
  });

  it.each([
    ['no key', async () => { await snapshot(nodeStub); await rm(`${blob()}.key`); }],
    ['no blob', async () => { await snapshot(nodeStub); await rm(blob()); }],
    ['a key of another node (a different or upgraded binary)', () => snapshot(stub)],
    ['a blob older than runtime.mjs (a rebuilt bundle)', () => snapshot(nodeStub, -10)],
  ])('runs runtime.mjs when the snapshot has %s', async (_what, arrange) => {
    await arrange();
    expect(await create()).toEqual({ ca: 'ca=unset', args: [mjs(), ...argv] });
  });

  it("the built snapshot (scripts/assets/30-runtime.sh) starts on this node and hands runc's argv to runc", async () => {
    const built = join(process.env.RUNCVM_ASSETS || projectPath('var', 'assets'), 'runtime', 'runtime.blob');
    // npm test's global set-up builds it; a node that cannot build one leaves none, and create runs runtime.mjs
    expect(await exists(built), `${built} (bash scripts/assets/30-runtime.sh)`).toBe(true);
    const out = join(dir, 'argv');
    await rm(out, { force: true });
    const args = ['--root', '/run/x', '--log-format', 'json', 'state', 'c1'];
    const r = await run('node', ['--snapshot-blob', built, '--', ...args], { reject: false, env: { RUNCVM_RUNC: stub, STUB_EXIT: '0', STUB_OUT: out } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await readFile(out, 'utf8')).split('\n').slice(0, -1)).toEqual(args);
  });
});
