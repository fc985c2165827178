import { describe, expect, it } from 'vitest';
import { classifyRuncRecord, runcRoot, runcStatePath } from '../../../../src/runcvm/exec/locate.js';

/** the shape of runc 1.1's state.json (libcontainer config), reduced to what matters here */
function record(mounts: { source: string; destination: string }[]): string {
  return JSON.stringify({ id: 'c1', init_process_pid: 42, config: { rootfs: '/b/rootfs', mounts: mounts.map((m) => ({ ...m, device: 'bind', flags: 20480 })) } });
}

describe('runcRoot: where runc keeps its record of a container', () => {
  it('--root wins; else /run/runc as root; $XDG_RUNTIME_DIR/runc for another user (runc 1.1 default)', () => {
    expect(runcRoot('/run/containerd/runc/k8s.io', {}, 0)).toBe('/run/containerd/runc/k8s.io');
    expect(runcRoot(undefined, { XDG_RUNTIME_DIR: '/run/user/1000' }, 0)).toBe('/run/runc');
    expect(runcRoot(undefined, { XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toBe('/run/user/1000/runc');
    expect(runcRoot(undefined, {}, 1000)).toBe('/run/runc');
    expect(runcStatePath('/run/runc', 'c1')).toBe('/run/runc/c1/state.json');
  });
});

describe('classifyRuncRecord: a VM container is recognised from runc\'s own record, whatever RUNCVM_STATE_DIR says', () => {
  it('the /.runcvm/state mount names the state folder', () => {
    const text = record([
      { source: 'proc', destination: '/proc' },
      { source: '/opt/runcvm/guest', destination: '/.runcvm/guest' },
      { source: '/var/run/other-runcvm/c1', destination: '/.runcvm/state' },
    ]);
    expect(classifyRuncRecord(text)).toEqual({ kind: 'vm', stateDir: '/var/run/other-runcvm/c1' });
  });
  it('runcvm mounts without a usable state source: still a VM (exec must refuse, not run on the host)', () => {
    expect(classifyRuncRecord(record([{ source: '/opt/runcvm/guest', destination: '/.runcvm/guest' }]))).toEqual({ kind: 'vm' });
    expect(classifyRuncRecord(record([{ source: 'relative/state', destination: '/.runcvm/state' }]))).toEqual({ kind: 'vm' });
    expect(classifyRuncRecord('{"config":{"mounts":[{"destination":"/.runcvm/state"')).toEqual({ kind: 'vm' });
  });
  it('a container without runcvm mounts is plain; no record at all is left to runc', () => {
    expect(classifyRuncRecord(record([{ source: 'proc', destination: '/proc' }, { source: '/data', destination: '/data' }]))).toEqual({ kind: 'plain' });
    expect(classifyRuncRecord(undefined)).toEqual({ kind: 'unknown' });
    expect(classifyRuncRecord('not json')).toEqual({ kind: 'unknown' });
  });
});
