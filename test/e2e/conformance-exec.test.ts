/**
 * Issue 16, causes 5 and 6: `exec` into a VM container behaves as runc's exec does, or refuses plainly where a VM
 * cannot (host file descriptors), and never runs the command on the host kernel. One long-running container per
 * runtime, made from the same bundle; runc's answer is the oracle.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/core/exec/index.js';
import { CloserStack } from '../../src/core/fsx/index.js';
import { projectPath } from '../../src/core/paths.js';
import { conformanceFixture, DOCKER_DEFAULT_CAPS, expectOracle, setCaps, type ConformanceFixture, type Outcome, type RuntimeName } from './conformance/bundles.js';

const closers = new CloserStack();
let cf: ConformanceFixture;
const id = {} as Record<RuntimeName, string>;
let guestRelease: string;

const outcome = (r: { exitCode: number; stdout: string; stderr: string }): Outcome => ({ exit: r.exitCode, stdout: r.stdout, stderr: r.stderr });

describe('conformance: exec (issue 16 causes 5 and 6)', { timeout: 300_000 }, () => {
  beforeAll(async () => {
    cf = await conformanceFixture(closers);
    guestRelease = (await readFile(projectPath('var', 'assets', 'kernel', 'release'), 'utf8')).trim();
    // the premise of cause 6: a process on the host would show another kernel than the guest's
    expect(guestRelease).not.toBe(release());
  });
  afterAll(async () => {
    await closers.close();
  });

  it('cause 5: exec right after `run -d` reaches the workload, as under runc (no race with the VM start)', async () => {
    const out = {} as Record<RuntimeName, Outcome>;
    // a volume: the launcher starts virtiofsd before it opens its exec socket, which makes the window after
    // `run -d` wide enough to be hit every time (the deterministic check is in test/unit/runcvm/dispatcher.test.ts)
    const shared = join(cf.dir, 'shared');
    await mkdir(shared);
    for (const rt of ['runc', 'runcvm'] as const) {
      const b = await cf.bundle((s) => {
        s.process!.args = ['sleep', '600'];
        // the container's rlimits reach every exec (runc's exec takes them): checked below. RLIMIT_CPU, not
        // RLIMIT_NOFILE: runc 1.1's own exec races Go's start-up, which raises NOFILE's soft limit to the hard one
        s.process!.rlimits = [...(s.process!.rlimits ?? []), { type: 'RLIMIT_CPU', soft: 777, hard: 888 }];
        s.root!.readonly = false;
        setCaps(s, DOCKER_DEFAULT_CAPS);
        s.mounts = [...(s.mounts ?? []), { destination: '/data', type: 'bind', source: shared, options: ['rbind', 'rw'] }];
      });
      id[rt] = cf.newId(`exec-${rt}`);
      const started = await cf.runDetached(rt, b, id[rt]);
      expect(started, `${rt} run -d`).toMatchObject({ exit: 0 });
      // at once: under runcvm the VM is still booting; exec must wait for it, not fail
      out[rt] = outcome(await cf.verb(rt, ['exec', id[rt], 'sh', '-c', "tr '\\0' ' ' </proc/1/cmdline; echo; uname -r"], { timeoutMs: 240_000 }));
    }
    expectOracle(out.runc, { stdout: `sleep 600 \n${release()}\n` });
    expect(out.runcvm).toEqual({ exit: 0, stdout: `sleep 600 \n${guestRelease}\n`, stderr: '' });
  });

  it('cause 5: --preserve-fds is refused with the reason (exit 255), never silently dropped; runc passes the descriptor', async () => {
    const file = join(cf.dir, 'fd3.txt');
    await writeFile(file, 'through fd 3\n');
    const withFd3 = async (rt: RuntimeName) => {
      const bin = rt === 'runc' ? 'runc' : cf.fx.wrapper;
      const r = await run('sh', ['-c', 'f=$1; shift; exec 3<"$f"; exec "$@"', 'sh', file, bin, '--root', cf.root, 'exec', '--preserve-fds', '1', id[rt], 'cat', '/proc/self/fd/3'], { reject: false, input: '', timeoutMs: 120_000 });
      return outcome(r);
    };
    expectOracle(await withFd3('runc'), { stdout: 'through fd 3\n' });
    const vm = await withFd3('runcvm');
    expect(vm.exit).toBe(255);
    expect(vm.stdout).toBe('');
    expect(vm.stderr).toContain(`cannot exec in container ${id.runcvm}: --preserve-fds 1 asks to pass host file descriptors 3-3, which cannot reach a process inside a microVM`);
    expect(vm.stderr).toMatch(/fix: /);
  });

  // cause 5: runc exits 255 for every exec that fails before the command runs; so does the guest agent
  // (src/runcvm/guest/agent.c child_exec, EXEC_FAILURE_STATUS), with runc's words
  it('cause 5: exec of a missing binary exits 255 with runc\'s message', async () => {
    const out = {} as Record<RuntimeName, Outcome>;
    for (const rt of ['runc', 'runcvm'] as const) out[rt] = outcome(await cf.verb(rt, ['exec', id[rt], 'no-such-binary']));
    expect(out.runc.exit).toBe(255);
    expect(out.runc.stderr).toContain('exec: \\"no-such-binary\\": executable file not found in $PATH');
    expect(out.runcvm.exit).toBe(255);
    expect(out.runcvm.stderr).toContain('exec: "no-such-binary": executable file not found in $PATH');
  });

  // cause 4 for exec: the exec's pty comes from the workload's devpts and is chowned to the exec's uid (gid 5 stays)
  it('cause 4: `exec -t` as a non-root user gets a terminal that user owns (runc: uid:5)', async () => {
    const out = {} as Record<RuntimeName, Outcome>;
    for (const rt of ['runc', 'runcvm'] as const) {
      const bin = rt === 'runc' ? 'runc' : cf.fx.wrapper;
      // exec -t without a console socket needs a terminal of its own: script(1) gives it one
      const r = await run('script', ['-qec', `${bin} --root ${cf.root} exec -t -u 1000:1000 ${id[rt]} sh -c 'stat -c %u:%g "$(tty)"'`, '/dev/null'], { reject: false, input: '', timeoutMs: 120_000 });
      out[rt] = { exit: r.exitCode, stdout: r.stdout.replace(/\^@|[\0\r]/g, ''), stderr: r.stderr };
    }
    expectOracle(out.runc, { stdout: '1000:5\n' });
    expect(out.runcvm).toEqual(out.runc);
  });

  // cause 11 for exec, and oom_score_adj: runc applies the container's seccomp profile and process.oomScoreAdj to
  // every exec'd process too; the guest agent gets both from the guest init at boot (never from the exec request)
  it('cause 11: an exec\'d process gets the container\'s seccomp filter and oom_score_adj, as under runc', async () => {
    const out = {} as Record<RuntimeName, Outcome>;
    for (const rt of ['runc', 'runcvm'] as const) {
      const b = await cf.bundle((s) => {
        s.process!.args = ['sleep', '600'];
        s.process!.oomScoreAdj = 77;
        s.root!.readonly = false;
        s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
      });
      const cid = cf.newId(`exec-seccomp-${rt}`);
      expect(await cf.runDetached(rt, b, cid), `${rt} run -d`).toMatchObject({ exit: 0 });
      try {
        out[rt] = outcome(await cf.verb(rt, ['exec', cid, 'sh', '-c', 'grep Seccomp: /proc/self/status; cat /proc/self/oom_score_adj; mkdir /tmp/x 2>&1; echo "mkdir exit $?"'], { timeoutMs: 240_000 }));
      } finally {
        await cf.verb(rt, ['delete', '-f', cid]);
      }
    }
    expectOracle(out.runc, { stdout: "Seccomp:\t2\n77\nmkdir: can't create directory '/tmp/x': Operation not permitted\nmkdir exit 1\n" });
    expect(out.runcvm).toEqual(out.runc);
  });

  // the agent sets the exec's process.rlimits (the container's, or the --process file's) before it runs
  it('an exec gets the container\'s rlimits, or its --process file\'s, as under runc', async () => {
    const out = {} as Record<RuntimeName, Outcome[]>;
    const file = join(cf.dir, 'rlimit-process.json');
    await writeFile(file, JSON.stringify({ args: ['sh', '-c', 'ulimit -t; ulimit -Ht'], cwd: '/', env: ['PATH=/bin:/usr/bin'], user: { uid: 0, gid: 0 }, rlimits: [{ type: 'RLIMIT_CPU', soft: 555, hard: 666 }] }));
    for (const rt of ['runc', 'runcvm'] as const) {
      out[rt] = [outcome(await cf.verb(rt, ['exec', id[rt], 'sh', '-c', 'ulimit -t; ulimit -Ht'])), outcome(await cf.verb(rt, ['exec', '--process', file, id[rt]]))];
    }
    expect(out.runc.map((o) => o.stdout)).toEqual(['777\n888\n', '555\n666\n']);
    expect(out.runcvm).toEqual(out.runc);
  });

  it('cause 6: exec with another RUNCVM_STATE_DIR than create\'s still runs inside the VM, never on the host', async () => {
    const other = await cf.fx.wrapperWith('other-state', { RUNCVM_STATE_DIR: join(cf.dir, 'no-such-state-root') });
    const r = outcome(await cf.verb('runcvm', ['exec', id.runcvm, 'uname', '-r'], { binary: other }));
    expect(r).toEqual({ exit: 0, stdout: `${guestRelease}\n`, stderr: '' });
  });

  it('cause 6: a VM container whose state folder is gone: exec refuses with the cause (255), nothing runs on the host', async () => {
    const state = join(cf.fx.stateDir, id.runcvm);
    const away = `${state}.away`;
    // the launcher keeps its bind mount of the folder: only the host-side path disappears
    await rename(state, away);
    try {
      const r = outcome(await cf.verb('runcvm', ['exec', id.runcvm, 'uname', '-r']));
      expect(r.exit).toBe(255);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`cannot exec in container ${id.runcvm}: it runs as a microVM but its runcvm state folder is missing`);
    } finally {
      await rename(away, state);
    }
  });

  it('a plain runc container still execs through runc itself (on the host, at runc\'s cost)', async () => {
    const r = outcome(await cf.verb('runcvm', ['exec', id.runc, 'uname', '-r']));
    expect(r).toEqual({ exit: 0, stdout: `${release()}\n`, stderr: '' });
  });

  it('delete removes the VM container and its state folder', async () => {
    for (const rt of ['runc', 'runcvm'] as const) {
      const r = await cf.verb(rt, ['delete', '-f', id[rt]]);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const state = await run('ls', ['-A', cf.fx.stateDir]);
    expect(state.stdout).toBe('');
  });
});
