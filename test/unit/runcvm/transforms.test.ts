import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import {
  LAUNCHER_ARGS,
  passThroughReason,
  rewriteForVm,
  withCaps,
  withKvmDevices,
  withLauncherEntrypoint,
  withMemoryOverhead,
  withGuestMount,
} from '../../../src/runcvm/bundle/transforms/index.js';

const fixture = (): OciSpec => JSON.parse(readFileSync(new URL('../../fixtures/runcvm/config.docker.json', import.meta.url), 'utf8')) as OciSpec;

describe('spec transforms', () => {
  it('withLauncherEntrypoint runs the launcher as root with no workload env (no secrets in config.json)', () => {
    const s = withLauncherEntrypoint(fixture());
    expect(s.process!.args).toEqual(LAUNCHER_ARGS);
    expect(s.process!.user).toEqual({ uid: 0, gid: 0 });
    expect(JSON.stringify(s)).not.toContain('s3cr3t-value');
    expect(s.process!.rlimits).toEqual(fixture().process!.rlimits);
  });
  it('withGuestMount adds one read-only bind, replacing an earlier one at the same place', () => {
    const s = withGuestMount('/g2')(withGuestMount('/g1')(fixture()));
    const m = s.mounts!.filter((x) => x.destination === '/.runcvm/guest');
    expect(m).toEqual([{ destination: '/.runcvm/guest', type: 'bind', source: '/g2', options: ['rbind', 'ro', 'nosuid', 'nodev'] }]);
  });
  it('withKvmDevices adds device nodes and cgroup allow rules', () => {
    const s = withKvmDevices([{ path: '/dev/kvm', type: 'c', major: 10, minor: 232 }])(fixture());
    expect(s.linux!.devices).toContainEqual(expect.objectContaining({ path: '/dev/kvm', major: 10, minor: 232 }));
    expect(s.linux!.resources!.devices!.at(-1)).toEqual({ allow: true, type: 'c', major: 10, minor: 232, access: 'rwm' });
    expect(withKvmDevices([])(fixture())).toEqual(fixture());
  });
  it('withMemoryOverhead raises limit and swap, leaves unlimited containers alone', () => {
    const s = withMemoryOverhead(256)(fixture());
    expect(s.linux!.resources!.memory).toEqual({ limit: 536870912 + 256 * 1048576, swap: 1073741824 + 256 * 1048576 });
    const unlimited = { ...fixture(), linux: {} };
    expect(withMemoryOverhead(256)(unlimited)).toEqual(unlimited);
  });
  it('withCaps adds without duplicates', () => {
    const s = withCaps(['CAP_NET_ADMIN', 'CAP_CHOWN'])(fixture());
    expect(s.process!.capabilities!.bounding).toEqual(['CAP_CHOWN', 'CAP_NET_ADMIN']);
  });
  it('rewriteForVm composes all of them and does not mutate its input', () => {
    const input = fixture();
    const before = JSON.stringify(input);
    const s = rewriteForVm(input, { guestDir: '/g', kernelDir: '/k', stateDir: '/s', baseDisk: '/d.ext4', debugLog: '/tmp/runcvm-x.debug', devices: [] });
    expect(JSON.stringify(input)).toBe(before);
    expect(s.mounts!.map((m) => m.destination)).toEqual(expect.arrayContaining(['/.runcvm/guest', '/.runcvm/kernel', '/.runcvm/state', '/.runcvm/disks/base.ext4', '/.runcvm/debug.log']));
    expect(s.linux!.resources!.memory!.limit).toBeGreaterThan(536870912);
  });
  it('passThroughReason: Kubernetes sandbox and RUNCVM_DISABLE stay plain runc', () => {
    expect(passThroughReason(fixture())).toBeUndefined();
    expect(passThroughReason({ ...fixture(), annotations: { 'io.kubernetes.cri.container-type': 'sandbox' } })).toMatch(/sandbox/);
    const f = fixture();
    f.process!.env!.push('RUNCVM_DISABLE=1');
    expect(passThroughReason(f)).toMatch(/RUNCVM_DISABLE/);
  });
});
