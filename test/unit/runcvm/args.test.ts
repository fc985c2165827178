import { describe, expect, it } from 'vitest';
import { parseCreateArgs, splitRuncArgs, ArgsError } from '../../../src/runcvm/runtime/args.js';

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
