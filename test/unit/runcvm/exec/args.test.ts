import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { EXEC_VALUE_FLAGS, ExecArgsError, parseExecArgs, parseUserFlag } from '../../../../src/runcvm/exec/args.js';
import { projectPath } from '../../../../src/core/paths.js';

describe('parseExecArgs (runc exec flags)', () => {
  it('reads what containerd passes', () => {
    const a = parseExecArgs(['--process', '/run/x/process.json', '--detach', '--pid-file', '/run/x/pid', '--console-socket', '/tmp/c.sock', 'c1']);
    expect(a).toMatchObject({ id: 'c1', process: '/run/x/process.json', detach: true, pidFile: '/run/x/pid', consoleSocket: '/tmp/c.sock', command: [] });
  });

  it('accepts --flag=value, short aliases, repeats, and keeps the command after the id verbatim', () => {
    const a = parseExecArgs(['-t', '--cwd=/tmp', '-e', 'A=1', '--env=B=2', '-u', '1000:1000', '-g', '2000', '--additional-gids=3000', '--cap', 'CAP_KILL', '--no-new-privs', '--preserve-fds=2', 'c2', 'sh', '-c', 'echo -e x']);
    expect(a).toMatchObject({
      id: 'c2',
      tty: true,
      cwd: '/tmp',
      env: ['A=1', 'B=2'],
      user: '1000:1000',
      additionalGids: [2000, 3000],
      caps: ['CAP_KILL'],
      noNewPrivs: true,
      preserveFds: 2,
      command: ['sh', '-c', 'echo -e x'],
    });
  });

  it('--tty=false and -- before the id', () => {
    expect(parseExecArgs(['--tty=false', '--', 'c3', 'ls']).tty).toBe(false);
    expect(parseExecArgs(['--', 'c3', 'ls']).id).toBe('c3');
  });

  it('rejects what runc rejects, with runc-like messages', () => {
    expect(() => parseExecArgs(['--bogus', 'c1', 'ls'])).toThrow(new ExecArgsError('flag provided but not defined: --bogus'));
    expect(() => parseExecArgs([])).toThrow(/requires a minimum of 1 argument/);
    expect(() => parseExecArgs(['c1'])).toThrow(/needs a command or --process/);
    expect(() => parseExecArgs(['--cwd'])).toThrow('flag needs an argument: --cwd');
    expect(() => parseExecArgs(['-g', 'wheel', 'c1', 'ls'])).toThrow(/not a group id/);
    expect(() => parseExecArgs(['../x', 'ls'])).toThrow(/invalid container id/);
  });

  it('--user takes numbers only', () => {
    expect(parseUserFlag('1000')).toEqual({ uid: 1000 });
    expect(parseUserFlag('1000:2000')).toEqual({ uid: 1000, gid: 2000 });
    expect(() => parseUserFlag('app')).toThrow(/UID\[:GID\]/);
  });

  it('the sh dispatcher skips the same value flags when it looks for the id', () => {
    const sh = readFileSync(projectPath('bin', 'runcvm-runtime'), 'utf8');
    const line = sh.split('\n').find((l) => l.includes('--console-socket|'))!;
    expect(line, 'bin/runcvm-runtime has an exec value-flag list').toBeTruthy();
    for (const f of EXEC_VALUE_FLAGS) expect(line.split(')')[0]!.split('|').map((s) => s.trim())).toContain(f);
  });
});
