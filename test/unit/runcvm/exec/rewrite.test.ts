import { describe, expect, it } from 'vitest';
import { clientArgs, mergeEnv, processFromFlags, requestFileName, rewriteExecProcess, runcExecArgv } from '../../../../src/runcvm/exec/rewrite.js';
import { parseExecArgs } from '../../../../src/runcvm/exec/args.js';
import type { OciProcess } from '../../../../src/runcvm/launch/oci.js';
import type { LaunchProcess } from '../../../../src/runcvm/launch/schema.js';

const dockerExec: OciProcess = {
  terminal: true,
  consoleSize: { height: 40, width: 120 },
  user: { uid: 1000, gid: 1000, additionalGids: [2000] },
  args: ['sh', '-c', 'id'],
  env: ['PATH=/usr/bin:/bin', 'HOSTNAME=abc', 'A=1', 'A=2'],
  cwd: '/home/app',
  capabilities: { bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], permitted: ['CAP_CHOWN'] },
  noNewPrivileges: true,
  apparmorProfile: 'docker-default',
};

describe('rewriteExecProcess', () => {
  it('keeps the original process for the guest and gives runc the client, as root', () => {
    const { request, process } = rewriteExecProcess(dockerExec, 'abc123');
    expect(request).toEqual({
      args: ['sh', '-c', 'id'],
      env: ['PATH=/usr/bin:/bin', 'HOSTNAME=abc', 'A=2'],
      cwd: '/home/app',
      user: { uid: 1000, gid: 1000, additionalGids: [2000] },
      terminal: true,
      rows: 40,
      cols: 120,
      capabilities: { bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], inheritable: [], permitted: ['CAP_CHOWN'], ambient: [] },
      // the agent sets no_new_privs for the command and loads the container's seccomp filter last, as runc
      noNewPrivileges: true,
    });
    expect(process.args).toEqual(['/.runcvm/guest/bin/runcvm-exec', 'abc123']);
    expect(process.user).toEqual({ uid: 0, gid: 0 });
    expect(process.cwd).toBe('/');
    expect(process.env).toEqual(['PATH=/.runcvm/guest/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/']);
    // the engine's policy stays: terminal (runc allocates the exec's pty), console size, caps, apparmor, nnp
    expect(process).toMatchObject({ terminal: true, consoleSize: { height: 40, width: 120 }, capabilities: dockerExec.capabilities, apparmorProfile: 'docker-default', noNewPrivileges: true });
    expect(JSON.stringify(process)).not.toContain('sh -c');
  });

  it('is pure: the input is not modified', () => {
    const copy = JSON.parse(JSON.stringify(dockerExec)) as OciProcess;
    rewriteExecProcess(dockerExec, 'x');
    expect(dockerExec).toEqual(copy);
  });

  it('defaults: no terminal, cwd /, no groups', () => {
    const { request, process } = rewriteExecProcess({ args: ['true'], cwd: '', user: { uid: 0, gid: 0 } }, 'r1');
    // no capabilities in the process: runc 1.1 runs it with five empty sets, so the guest does too
    const none = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
    expect(request).toEqual({ args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false, capabilities: none });
    expect(process.terminal).toBe(false);
  });

  it('refuses an empty command and odd request ids', () => {
    expect(() => rewriteExecProcess({ args: [], cwd: '/', user: { uid: 0, gid: 0 } }, 'r')).toThrow(/process.args is empty/);
    expect(() => requestFileName('../x')).toThrow(/invalid exec request id/);
    expect(requestFileName('ab_1-2')).toBe('exec-ab_1-2.req');
    expect(clientArgs('z').at(-1)).toBe('z');
  });
});

describe('processFromFlags (runc exec without --process)', () => {
  const base: LaunchProcess = {
    args: ['sleep', '1000'],
    env: ['PATH=/bin', 'A=image'],
    cwd: '/srv',
    user: { uid: 1000, gid: 1000, additionalGids: [2000] },
    terminal: false,
    rlimits: [],
    noNewPrivileges: false,
  };
  it('starts from the original process and applies -e (later wins), --cwd, -u, -g, -t', () => {
    const a = parseExecArgs(['-e', 'A=flag', '-e', 'B=2', '--cwd', '/tmp', '-u', '0:0', '-g', '10', '-t', 'c1', 'id', '-a']);
    expect(processFromFlags(base, a)).toEqual({
      args: ['id', '-a'],
      env: ['PATH=/bin', 'A=flag', 'B=2'],
      cwd: '/tmp',
      user: { uid: 0, gid: 0, additionalGids: [10] },
      terminal: true,
      noNewPrivileges: false,
    });
  });
  it('without flags: the container user, env and cwd', () => {
    const p = processFromFlags(base, parseExecArgs(['c1', 'pwd']));
    expect(p).toMatchObject({ args: ['pwd'], cwd: '/srv', user: { uid: 1000, gid: 1000, additionalGids: [2000] }, env: base.env });
    expect(processFromFlags(base, parseExecArgs(['-u', '5', 'c1', 'pwd'])).user).toEqual({ uid: 5, gid: 1000, additionalGids: [2000] });
  });
});

describe('processFromFlags --cap (runc 1.1)', () => {
  const base: LaunchProcess = {
    args: ['sleep', '1000'],
    env: [],
    cwd: '/',
    user: { uid: 0, gid: 0, additionalGids: [] },
    terminal: false,
    rlimits: [],
    noNewPrivileges: false,
    capabilities: { bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], inheritable: ['CAP_CHOWN'], permitted: ['CAP_CHOWN'], ambient: [] },
  };
  it("keeps the container's sets and adds --cap to bounding, effective, permitted and ambient (not inheritable)", () => {
    expect(processFromFlags(base, parseExecArgs(['--cap', 'CAP_KILL', 'c1', 'id'])).capabilities).toEqual({
      bounding: ['CAP_CHOWN', 'CAP_KILL'],
      effective: ['CAP_CHOWN', 'CAP_KILL'],
      inheritable: ['CAP_CHOWN'],
      permitted: ['CAP_CHOWN', 'CAP_KILL'],
      ambient: ['CAP_KILL'],
    });
    expect(processFromFlags(base, parseExecArgs(['c1', 'id'])).capabilities).toEqual(base.capabilities);
  });
});

describe('mergeEnv', () => {
  it('later entries override earlier ones, first position kept', () => {
    expect(mergeEnv(['A=1', 'B=1', 'A=3'], ['B=2', 'C'])).toEqual(['A=3', 'B=2', 'C']);
  });
});

describe('runcExecArgv', () => {
  it('keeps how-to-run flags, drops process-shaping ones, points --process at the rewrite', () => {
    const a = parseExecArgs(['--detach', '--pid-file', '/p', '--console-socket', '/c', '-e', 'A=1', '--cwd', '/x', '-t', '--preserve-fds', '1', 'c1', 'sh']);
    expect(runcExecArgv(['--root', '/r', '--log', '/l'], a, '/state/exec-1.process.json')).toEqual([
      '--root', '/r', '--log', '/l', 'exec', '--detach', '--pid-file', '/p', '--console-socket', '/c', '--preserve-fds', '1', '--process', '/state/exec-1.process.json', 'c1',
    ]);
  });
});
