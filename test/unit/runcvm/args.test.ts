import { describe, expect, it } from 'vitest';
import { isForegroundRun, parseCreateArgs, splitRuncArgs, withBundleArg, ArgsError } from '../../../src/runcvm/runtime/args.js';

describe('splitRuncArgs', () => {
  it('skips global flags in both forms to find the verb', () => {
    const inv = splitRuncArgs(['--root', '/run/x', '--log=/tmp/l.json', '--log-format', 'json', '--debug', '--systemd-cgroup', 'create', '--bundle', 'b', 'id']);
    expect(inv.verb).toBe('create');
    expect(inv.verbArgs).toEqual(['--bundle', 'b', 'id']);
    expect(inv.globalValues).toEqual({ root: '/run/x', log: '/tmp/l.json', 'log-format': 'json' });
  });
  it('has no verb for bare flags', () => {
    expect(splitRuncArgs(['--version']).verb).toBeUndefined();
  });
});

describe('parseCreateArgs', () => {
  it('reads every create flag, both forms', () => {
    const a = parseCreateArgs(['--bundle=/b', '--pid-file', '/p', '--console-socket=/s', '--no-pivot', '--no-new-keyring', '--preserve-fds', '2', 'c1'], '/cwd');
    expect(a).toEqual({ id: 'c1', bundle: '/b', pidFile: '/p', consoleSocket: '/s', preserveFds: 2, flags: ['--no-pivot', '--no-new-keyring'] });
  });
  it('defaults the bundle to the working directory and resolves relative bundles', () => {
    expect(parseCreateArgs(['c1'], '/w').bundle).toBe('/w');
    expect(parseCreateArgs(['-b', 'rel', 'c1'], '/w').bundle).toBe('/w/rel');
  });
  it('rejects a missing id, an unknown flag and a path-like id', () => {
    expect(() => parseCreateArgs(['--bundle', '/b'], '/')).toThrow(ArgsError);
    expect(() => parseCreateArgs(['--frobnicate', 'c1'], '/')).toThrow(/unknown flag/);
    expect(() => parseCreateArgs(['../x'], '/')).toThrow(/invalid container id/);
  });
});

describe('withBundleArg: the engine\'s command line pointed at runcvm\'s private bundle (issue 16 cause 8)', () => {
  it('replaces every --bundle/-b form with one --bundle after the verb, keeping globals and every other flag', () => {
    expect(withBundleArg(['--root', '/r', '--log=/l', 'create', '--bundle', '/b', '--pid-file', '/p', 'c1'], '/s/c1/bundle', '/b')).toEqual(['--root', '/r', '--log=/l', 'create', '--bundle', '/s/c1/bundle', '--pid-file', '/p', 'c1']);
    expect(withBundleArg(['run', '-b=/b', '-d', 'c1'], '/s/b', '/b')).toEqual(['run', '--bundle', '/s/b', '-d', 'c1']);
    expect(withBundleArg(['run', '--bundle=/b', '-b', '/b', 'c1'], '/s/b', '/b')).toEqual(['run', '--bundle', '/s/b', 'c1']);
    // no --bundle at all: runc used its working directory, which is the caller's bundle
    expect(withBundleArg(['create', 'c1'], '/s/b', '/cwd')).toEqual(['create', '--bundle', '/s/b', 'c1']);
  });
  it('a value that looks like a flag stays a value; a relative console socket still names the caller\'s bundle\'s', () => {
    expect(withBundleArg(['create', '--pid-file', '-b', 'c1'], '/s/b', '/b')).toEqual(['create', '--bundle', '/s/b', '--pid-file', '-b', 'c1']);
    expect(withBundleArg(['create', '--console-socket', 'tty.sock', 'c1'], '/s/b', '/b/')).toEqual(['create', '--bundle', '/s/b', '--console-socket', '/b/tty.sock', 'c1']);
    expect(withBundleArg(['create', '--console-socket=/abs.sock', 'c1'], '/s/b', '/b')).toEqual(['create', '--bundle', '/s/b', '--console-socket', '/abs.sock', 'c1']);
  });
});

describe('isForegroundRun: runc deletes the container itself when it ends', () => {
  it('run without -d, --detach or --keep', () => {
    expect(isForegroundRun(['--root', '/r', 'run', '--bundle', '/b', 'c1'])).toBe(true);
    expect(isForegroundRun(['run', '-d', 'c1'])).toBe(false);
    expect(isForegroundRun(['run', '--detach', 'c1'])).toBe(false);
    expect(isForegroundRun(['run', '--keep', 'c1'])).toBe(false);
    expect(isForegroundRun(['create', 'c1'])).toBe(false);
    // a flag's value is not a flag
    expect(isForegroundRun(['run', '--pid-file', '-d', 'c1'])).toBe(true);
  });
});
