/**
 * The workload's /proc, /dev and /sys in the guest, from config.json (src/runcvm/launch/rootfs.ts): which of the
 * spec's mounts the workload's namespace replays and how, the device nodes, masked and read-only paths, sysctls,
 * oom_score_adj and the seccomp profile on their way into the LaunchSpec, and the node's RUNCVM_GUEST_SECCOMP.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildLaunchSpec, guestMountsFromSpec } from '../../../src/runcvm/launch/build.js';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import { DEFAULT_DEVICES, GuestSpecError, mountFlags, MS, rootfsFromSpec, sysctlFromSpec } from '../../../src/runcvm/launch/rootfs.js';
import { guestSeccompSetting, mergeSettingEnv, parseSettings, SettingError } from '../../../src/runcvm/launch/settings.js';
import { parseLaunchSpec } from '../../../src/runcvm/launch/schema.js';
import { renderGuestConfig } from '../../../src/runcvm/launch/guest-config.js';

const docker = (): OciSpec => JSON.parse(readFileSync(new URL('../../fixtures/runcvm/config.docker.json', import.meta.url), 'utf8')) as OciSpec;

/** the mounts `runc spec` writes (runc 1.1) */
const RUNC_SPEC_MOUNTS = [
  { destination: '/proc', type: 'proc', source: 'proc' },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
  { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
];

const spec = (over: Partial<OciSpec> = {}): OciSpec => ({
  ociVersion: '1.0.2',
  process: { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/' },
  root: { path: 'rootfs', readonly: true },
  mounts: RUNC_SPEC_MOUNTS,
  linux: {
    maskedPaths: ['/proc/acpi', '/proc/kcore', '/sys/firmware'],
    readonlyPaths: ['/proc/bus', '/proc/sys'],
  },
  ...over,
});

describe('rootfs: the spec\'s /proc, /dev, /sys mounts for the workload\'s namespace', () => {
  it('runc spec: every mount replayed in the spec\'s order, cgroup as cgroup2 (as runc on a cgroup v2 host)', () => {
    const r = rootfsFromSpec(spec());
    expect(r.mounts.map((m) => `${m.type} ${m.destination}`)).toEqual([
      'proc /proc', 'tmpfs /dev', 'devpts /dev/pts', 'tmpfs /dev/shm', 'mqueue /dev/mqueue', 'sysfs /sys', 'cgroup2 /sys/fs/cgroup',
    ]);
    expect(r.mounts[6]).toEqual({ type: 'cgroup2', source: 'cgroup', destination: '/sys/fs/cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
    expect(r.maskedPaths).toEqual(['/proc/acpi', '/proc/kcore', '/sys/firmware']);
    expect(r.readonlyPaths).toEqual(['/proc/bus', '/proc/sys']);
  });

  it('options become runc\'s mount(2) flags and data; binds, remounts and propagation never reach a replayed mount', () => {
    expect(mountFlags(['nosuid', 'strictatime', 'mode=755', 'size=65536k'])).toEqual({ flags: MS.NOSUID | MS.STRICTATIME, data: 'mode=755,size=65536k' });
    expect(mountFlags(['nosuid', 'noexec', 'nodev', 'relatime', 'ro'])).toEqual({ flags: MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RELATIME | MS.RDONLY, data: '' });
    expect(mountFlags(['ro', 'rw', 'suid', 'nosuid', 'rbind', 'rprivate', 'remount', 'tmpcopyup'])).toEqual({ flags: MS.NOSUID, data: '' });
  });

  it('a read-only /dev or tmpfs is mounted writable and remounted read-only after its nodes exist (ro_after)', () => {
    const s = spec({ mounts: RUNC_SPEC_MOUNTS.map((m) => (m.destination === '/dev' ? { ...m, options: [...m.options!, 'ro'] } : m)) });
    const launch = buildLaunchSpec(s, { containerId: 'c', settings: parseSettings({}), debugLog: false });
    const lines = renderGuestConfig(launch).split('\n').filter((l) => l.startsWith('mount='));
    expect(lines[1]).toBe(`mount=tmpfs tmpfs /dev ${MS.NOSUID | MS.STRICTATIME} mode=755,size=65536k 1`);
    expect(lines[5]).toBe(`mount=sysfs sysfs /sys ${MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY} - 0`);
  });

  it('Docker: its /dev/shm bind from the host becomes the guest\'s own tmpfs; other host binds under /dev are not replayed', () => {
    const s = docker();
    s.mounts = [
      ...(s.mounts ?? []).filter((m) => m.destination !== '/dev/shm'),
      { destination: '/dev/shm', type: 'bind', source: '/var/lib/docker/containers/x/mounts/shm', options: ['rbind', 'nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/termination-log', type: 'bind', source: '/var/lib/kubelet/pods/x/termination-log', options: ['rbind'] },
    ];
    const r = rootfsFromSpec(s);
    expect(r.mounts.find((m) => m.destination === '/dev/shm')).toEqual({ type: 'tmpfs', source: 'shm', destination: '/dev/shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777'] });
    expect(r.mounts.some((m) => m.destination === '/dev/termination-log')).toBe(false);
  });

  it('a spec without /proc, /dev or /dev/pts still gets them (the guest needs them); no /sys unless asked', () => {
    const r = rootfsFromSpec(spec({ mounts: [{ destination: '/tmp', type: 'tmpfs', source: 'tmpfs' }] }));
    expect(r.mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/tmp']);
  });

  it('every tmpfs is replayed in the spec\'s order, except one a volume is mounted inside (the init mounts that first) and /run', () => {
    const s = spec({
      mounts: [
        ...RUNC_SPEC_MOUNTS,
        { destination: '/dev/extra', type: 'tmpfs', source: 'tmpfs' },
        { destination: '/scratch', type: 'tmpfs', source: 'tmpfs' },
        { destination: '/mnt', type: 'tmpfs', source: 'tmpfs' },
        { destination: '/mnt/data', type: 'bind', source: '/srv/data', options: ['rbind'] },
        { destination: '/data/cache', type: 'tmpfs', source: 'tmpfs' },
        { destination: '/data', type: 'bind', source: '/srv/d2', options: ['rbind'] },
        { destination: '/run', type: 'tmpfs', source: 'tmpfs' },
      ],
    });
    expect(rootfsFromSpec(s).mounts.map((m) => m.destination)).toEqual([
      '/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/dev/extra', '/scratch', '/data/cache',
    ]);
    expect(guestMountsFromSpec(s).map((m) => m.destination)).toEqual(['/mnt']);
  });

  it('devices: runc\'s six defaults, a spec device replacing one at its path, /dev/ptmx never a node', () => {
    const r = rootfsFromSpec(spec({
      linux: {
        devices: [
          { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o600, uid: 5, gid: 6 },
          { path: '/dev/fuse', type: 'c', major: 10, minor: 229 },
          { path: '/dev/myfifo', type: 'p' },
          { path: '/dev/ptmx', type: 'c', major: 5, minor: 2 },
          { path: '/dev/kmsg2', type: 'u', major: 1, minor: 11, fileMode: 0o20644 },
        ],
      },
    }));
    expect(r.devices.map((d) => d.path)).toEqual(['/dev/random', '/dev/full', '/dev/tty', '/dev/zero', '/dev/urandom', '/dev/null', '/dev/fuse', '/dev/myfifo', '/dev/kmsg2']);
    expect(r.devices.find((d) => d.path === '/dev/null')).toEqual({ path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o600, uid: 5, gid: 6 });
    expect(r.devices.find((d) => d.path === '/dev/fuse')).toEqual({ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 });
    // the type bits of fileMode are dropped, `u` is a character device
    expect(r.devices.find((d) => d.path === '/dev/kmsg2')).toMatchObject({ type: 'c', fileMode: 0o644 });
    expect(DEFAULT_DEVICES).toHaveLength(6);
  });

  it('paths the guest resolves as root must be absolute without ".."', () => {
    expect(() => rootfsFromSpec(spec({ linux: { maskedPaths: ['/proc/../etc/shadow'] } }))).toThrow(GuestSpecError);
    expect(() => rootfsFromSpec(spec({ linux: { devices: [{ path: 'dev/x', type: 'c', major: 1, minor: 1 }] } }))).toThrow(/linux\.devices\[0\]\.path "dev\/x"/);
    expect(() => rootfsFromSpec(spec({ linux: { devices: [{ path: '/dev/x', type: 'q' }] } }))).toThrow(/type "q"/);
  });

  it('sysctl: names of kernel parameters only (never a path out of /proc/sys)', () => {
    expect(sysctlFromSpec(spec({ linux: { sysctl: { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.eth0/1.forwarding': '0' } } }))).toEqual({ 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.eth0/1.forwarding': '0' });
    for (const bad of ['../../etc/passwd', 'kernel..x', '/kernel.x', 'kernel.x/../../y', '']) {
      expect(() => sysctlFromSpec(spec({ linux: { sysctl: { [bad]: '1' } } })), bad).toThrow(GuestSpecError);
    }
  });
});

describe('rootfs: the LaunchSpec and the guest config carry it', () => {
  const withAll = () =>
    spec({
      process: { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/', oomScoreAdj: 123 },
      linux: {
        maskedPaths: ['/proc/keys'],
        readonlyPaths: ['/proc/sys'],
        sysctl: { 'kernel.shm_rmid_forced': '1' },
        seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] },
      },
    });

  it('every field survives launch.json and reaches /.runcvm/config', () => {
    const launch = parseLaunchSpec(JSON.stringify(buildLaunchSpec(withAll(), { containerId: 'c', settings: parseSettings({}), debugLog: false })));
    expect(launch.process.oomScoreAdj).toBe(123);
    expect(launch.sysctl).toEqual({ 'kernel.shm_rmid_forced': '1' });
    expect(launch.seccomp?.defaultAction).toBe('SCMP_ACT_ALLOW');
    const cfg = renderGuestConfig(launch);
    expect(cfg).toContain('\noom_score_adj=123\n');
    expect(cfg).toContain('\nsysctl=kernel.shm_rmid_forced 1\n');
    expect(cfg).toContain('\nmasked_path=/proc/keys\n');
    expect(cfg).toContain('\nreadonly_path=/proc/sys\n');
    expect(cfg).toMatch(/\nseccomp=[0-9a-f]+\nseccomp_flags=0\n/);
    expect(cfg).toContain('\ndevice=/dev/null c 1 3 438 0 0\n');
  });

  it('RUNCVM_GUEST_SECCOMP=off (the node\'s choice): no filter in the guest; a profile runc would refuse still fails', () => {
    const launch = buildLaunchSpec(withAll(), { containerId: 'c', settings: parseSettings({}), debugLog: false, guestSeccomp: false });
    expect(launch.seccomp).toBeUndefined();
    expect(renderGuestConfig(launch)).not.toMatch(/^seccomp=/m);
    const bad = withAll();
    bad.linux!.seccomp = { defaultAction: 'SCMP_ACT_SOMETIMES' };
    expect(() => buildLaunchSpec(bad, { containerId: 'c', settings: parseSettings({}), debugLog: false, guestSeccomp: false })).toThrow(/not a seccomp action/);
  });

  it('a profile of the wrong shape is refused with its path', () => {
    const bad = withAll();
    (bad.linux as Record<string, unknown>).seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: 'mkdir', action: 'SCMP_ACT_ERRNO' }] };
    expect(() => buildLaunchSpec(bad, { containerId: 'c', settings: parseSettings({}), debugLog: false })).toThrow(/linux\.seccomp\.syscalls\.0\.names/);
  });

  it('the node setting: unset or on applies the profile, off drops it, anything else is refused', () => {
    expect(guestSeccompSetting({})).toBe(true);
    expect(guestSeccompSetting({ RUNCVM_GUEST_SECCOMP: 'on' })).toBe(true);
    expect(guestSeccompSetting({ RUNCVM_GUEST_SECCOMP: 'off' })).toBe(false);
    expect(() => guestSeccompSetting({ RUNCVM_GUEST_SECCOMP: 'no' })).toThrow(SettingError);
    // a container cannot set it: the settings read from a container's environment never include it
    expect(mergeSettingEnv({}, { RUNCVM_GUEST_SECCOMP: 'off' })).toEqual({});
  });
});
