import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import {
  LAUNCHER_ARGS,
  LAUNCHER_CAPABILITIES,
  CALLER_BUNDLE_ANNOTATION,
  passThroughReason,
  rewriteForVm,
  withAbsoluteSources,
  withLauncherCaps,
  withoutWorkloadConfinement,
  LAUNCHER_DENIED_SYSCALLS,
  LAUNCHER_SECCOMP,
  withLauncherMountNamespace,
  withKvmDevices,
  withLauncherEntrypoint,
  withMemoryOverhead,
  withGuestMount,
} from '../../../src/runcvm/bundle/transforms/index.js';

import { compileSeccomp } from '../../../src/runcvm/seccomp/index.js';
import { AUDIT_ARCH, decide, planSeccomp, RET } from '../../../src/runcvm/seccomp/plan.js';
import { SYSCALLS_X32, SYSCALLS_X86, SYSCALLS_X86_64 } from '../../../src/runcvm/seccomp/syscalls.js';

const fixture = (): OciSpec => JSON.parse(readFileSync(new URL('../../fixtures/runcvm/config.docker.json', import.meta.url), 'utf8')) as OciSpec;

describe('spec transforms', () => {
  it('withLauncherEntrypoint runs the launcher as root with no workload env (no secrets in config.json)', () => {
    const s = withLauncherEntrypoint()(fixture());
    expect(s.process!.args).toEqual(LAUNCHER_ARGS);
    expect(LAUNCHER_ARGS.at(-1)).toBe('/.runcvm/guest/lib/runcvm/launcher.mjs');
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
  it("withLauncherCaps: Docker's default set plus CAP_NET_ADMIN, whatever the workload asked; nothing inheritable or ambient (issue 16 cause 10)", () => {
    const reduced = fixture();
    reduced.process!.capabilities = { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL'] };
    for (const input of [reduced, fixture()]) {
      const caps = withLauncherCaps(input).process!.capabilities!;
      expect(caps.bounding).toEqual([...LAUNCHER_CAPABILITIES]);
      expect(caps.effective).toEqual([...LAUNCHER_CAPABILITIES]);
      expect(caps.permitted).toEqual([...LAUNCHER_CAPABILITIES]);
      expect(caps.inheritable).toEqual([]);
      expect(caps.ambient).toEqual([]);
    }
    expect(LAUNCHER_CAPABILITIES).toEqual(expect.arrayContaining(['CAP_NET_ADMIN', 'CAP_SYS_CHROOT', 'CAP_DAC_OVERRIDE', 'CAP_SETUID', 'CAP_SETGID', 'CAP_FOWNER', 'CAP_CHOWN']));
  });
  it('withoutWorkloadConfinement: no seccomp profile and no rlimits on the launcher (issue 16 cause 1)', () => {
    const input = fixture();
    input.linux = { ...input.linux, seccomp: { defaultAction: 'SCMP_ACT_ERRNO' } };
    input.process!.rlimits = [{ type: 'RLIMIT_AS', soft: 1 << 30, hard: 1 << 30 }];
    const s = withoutWorkloadConfinement(input);
    expect(s.linux!.seccomp).toBeUndefined();
    expect(s.process!.rlimits).toBeUndefined();
    expect(s.linux!.namespaces).toEqual(input.linux.namespaces);
    expect(s.process!.args).toEqual(input.process!.args);
  });
  it('the default handler\'s launcher gets runcvm\'s own seccomp profile (a deny-list), never the workload\'s; the userns handler keeps the pod\'s', () => {
    const input = fixture();
    input.linux = { ...input.linux, seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] } };
    const r = { launcherRoot: '/s/bundle/root', callerBundle: '/bundles/x', guestDir: '/g', kernelDir: '/k', stateDir: '/s', baseDisk: '/d.ext4', devices: [] };
    expect(rewriteForVm(input, r).linux!.seccomp).toEqual(LAUNCHER_SECCOMP);
    expect(rewriteForVm(input, { ...r, podConfinementOnLauncher: true }).linux!.seccomp!.defaultAction).toBe('SCMP_ACT_ERRNO');
    // what the launcher side does itself stays allowed: chroot and unshare(CLONE_FS) (virtiofsd), clone3, io_uring
    for (const needed of ['chroot', 'clone', 'clone3', 'execve', 'ioctl', 'io_uring_setup', 'memfd_create', 'socket', 'chown']) expect(LAUNCHER_DENIED_SYSCALLS).not.toContain(needed);
    // every name is one the compiler knows on x86-64 (an unknown one would be skipped silently, as runc does)
    const plan = planSeccomp(LAUNCHER_SECCOMP)!;
    for (const a of plan.arches) {
      const table = { x86_64: SYSCALLS_X86_64, x86: SYSCALLS_X86, x32: SYSCALLS_X32 }[a.arch];
      for (const name of LAUNCHER_DENIED_SYSCALLS) if (name in table) expect(a.rules.has(table[name]!), `${a.arch} ${name}`).toBe(true);
    }
    const call = (nr: number, arg0 = 0n, arch: number = AUDIT_ARCH.x86_64) => decide(plan, { arch, nr, args: [arg0] });
    const EPERM = (RET.ERRNO | 1) >>> 0;
    expect(call(SYSCALLS_X86_64.mount!)).toBe(EPERM);
    expect(call(SYSCALLS_X86.mount!, 0n, AUDIT_ARCH.x86)).toBe(EPERM); // the 32-bit ABI cannot go around the list
    expect(call(SYSCALLS_X86_64.unshare!, 0x200n)).toBe(RET.ALLOW); // virtiofsd's unshare(CLONE_FS)
    expect(call(SYSCALLS_X86_64.unshare!, 0x10000000n)).toBe(EPERM); // CLONE_NEWUSER
    expect(call(SYSCALLS_X86_64.read!)).toBe(RET.ALLOW);
    expect(call(SYSCALLS_X86_64.clone3!)).toBe(RET.ALLOW);
    expect(compileSeccomp(LAUNCHER_SECCOMP)!.program.length).toBeGreaterThan(0);
  });
  it('withLauncherMountNamespace: a spec without a mount namespace gets one for the launcher (its mounts never land in the node\'s namespace); one given, with or without a path, stays', () => {
    const none = { ...fixture(), linux: { ...fixture().linux, namespaces: [{ type: 'network' }] } };
    expect(withLauncherMountNamespace(none).linux!.namespaces).toEqual([{ type: 'network' }, { type: 'mount' }]);
    expect(withLauncherMountNamespace({ ...fixture(), linux: {} }).linux!.namespaces).toEqual([{ type: 'mount' }]);
    const joined = { ...fixture(), linux: { namespaces: [{ type: 'mount', path: '/proc/42/ns/mnt' }] } };
    expect(withLauncherMountNamespace(joined)).toEqual(joined);
  });
  it('withAbsoluteSources: relative bind sources are the bundle\'s; absolute ones and non-binds stay', () => {
    const spec = { ...fixture(), mounts: [
      { destination: '/a', type: 'bind', source: 'data', options: ['rbind'] },
      { destination: '/b', type: 'none', source: './x', options: ['bind'] },
      { destination: '/c', type: 'bind', source: '/abs', options: ['rbind'] },
      { destination: '/proc', type: 'proc', source: 'proc' },
    ] };
    expect(withAbsoluteSources('/bundles/c1/')(spec).mounts!.map((m) => m.source)).toEqual(['/bundles/c1/data', '/bundles/c1/x', '/abs', 'proc']);
    const plain = { ...fixture(), mounts: [{ destination: '/c', type: 'bind', source: '/abs' }] };
    expect(withAbsoluteSources('/b')(plain)).toBe(plain);
  });
  it('rewriteForVm composes all of them and does not mutate its input', () => {
    const input = fixture();
    const before = JSON.stringify(input);
    const s = rewriteForVm(input, { launcherRoot: '/s/bundle/root', callerBundle: '/bundles/x', guestDir: '/g', kernelDir: '/k', stateDir: '/s', baseDisk: '/d.ext4', debugLog: '/tmp/runcvm-x.debug', devices: [] });
    expect(JSON.stringify(input)).toBe(before);
    // the launcher's own root, writable whatever the workload's root.readonly; the caller's bundle recorded for hooks
    expect(s.root).toEqual({ path: '/s/bundle/root', readonly: false });
    expect(s.annotations![CALLER_BUNDLE_ANNOTATION]).toBe('/bundles/x');
    expect(s.process!.capabilities!.bounding).toEqual([...LAUNCHER_CAPABILITIES]);
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
