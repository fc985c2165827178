import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import { MS } from '../../../src/runcvm/launch/rootfs.js';
import { buildLaunchSpec, copiedFilesFromSpec, countCpuset, guestMountsFromSpec, memoryBelowFloor, memoryFromResources, vcpusFromResources } from '../../../src/runcvm/launch/build.js';
import { parseSettings, mergeSettingEnv, SettingError } from '../../../src/runcvm/launch/settings.js';
import { launchSpecSchema, parseLaunchSpec } from '../../../src/runcvm/launch/schema.js';
import { escapeValue, parseEntrypoint, renderEntrypoint, renderGuestConfig, unescapeValue } from '../../../src/runcvm/launch/guest-config.js';

const fixture = (): OciSpec => JSON.parse(readFileSync(new URL('../../fixtures/runcvm/config.docker.json', import.meta.url), 'utf8')) as OciSpec;

describe('settings', () => {
  it('defaults', () => {
    expect(parseSettings({})).toEqual({ logLevel: 'error', kernelAppend: '', kernelDebug: false, hypervisor: 'qemu', rootfsSizeBytes: 256 * 1048576, accel: 'auto', disabled: false });
  });
  it('parses every setting', () => {
    const s = parseSettings({ RUNCVM_LOG_LEVEL: 'DEBUG', RUNCVM_KERNEL: '/k', RUNCVM_KERNEL_APPEND: ' a=b ', RUNCVM_KERNEL_DEBUG: '1', RUNCVM_HYPERVISOR: 'firecracker', RUNCVM_ROOTFS_SIZE: '2G', RUNCVM_BREAK: 'initramfs', RUNCVM_ACCEL: 'tcg' });
    expect(s).toMatchObject({ logLevel: 'debug', kernel: { value: '/k', origin: 'container' }, kernelAppend: 'a=b', kernelDebug: true, hypervisor: 'firecracker', rootfsSizeBytes: 2 * 1024 ** 3, break: 'initramfs', accel: 'tcg' });
  });
  it('names the bad setting and its fix', () => {
    expect(() => parseSettings({ RUNCVM_ROOTFS_SIZE: 'lots' })).toThrow(SettingError);
    expect(() => parseSettings({ RUNCVM_LOG_LEVEL: 'LOUD' })).toThrow(/RUNCVM_LOG_LEVEL="LOUD"/);
    expect(() => parseSettings({ RUNCVM_ROOTFS_SIZE: '1M' })).toThrow(/smaller than 16M/);
  });
  it('container env wins over the runtime env; other variables are ignored', () => {
    expect(mergeSettingEnv({ RUNCVM_ACCEL: 'kvm', HOME: '/' }, { RUNCVM_ACCEL: 'tcg' })).toEqual({ RUNCVM_ACCEL: 'tcg' });
  });
});

describe('resources', () => {
  it('vCPUs from quota/period, cpuset, else 1', () => {
    expect(vcpusFromResources({ quota: 200000, period: 100000 })).toBe(2);
    expect(vcpusFromResources({ quota: 150000, period: 100000 })).toBe(2);
    expect(vcpusFromResources({ cpus: '0-2,5' })).toBe(4);
    expect(vcpusFromResources(undefined)).toBe(1);
    expect(countCpuset('x')).toBe(0);
  });
  it('memory from the limit, else 512 MiB', () => {
    expect(memoryFromResources({ limit: 536870912 })).toBe(512);
    expect(memoryFromResources(undefined)).toBe(512);
    expect(memoryFromResources({ limit: 1048576 })).toBe(128);
    // create refuses such a limit before the LaunchSpec is built (issue 16 cause 7)
    expect(memoryBelowFloor({ limit: 32 * 1048576 })).toBe(32);
    expect(memoryBelowFloor({ limit: 100 * 1048576 + 5 })).toBe(100);
    expect(memoryBelowFloor({ limit: 128 * 1048576 })).toBeUndefined();
    expect(memoryBelowFloor({ limit: 0 })).toBeUndefined();
    expect(memoryBelowFloor(undefined)).toBeUndefined();
  });
});

describe('buildLaunchSpec', () => {
  const settings = parseSettings({ RUNCVM_LOG_LEVEL: 'INFO' });
  it('keeps the original process (minus RUNCVM_*), hostname, vm size, tmpfs mounts', () => {
    const l = buildLaunchSpec(fixture(), { containerId: 'c1', settings, debugLog: true });
    expect(launchSpecSchema.parse(l)).toEqual(l);
    expect(l.process.args).toEqual(['sh', '-c', 'echo hi']);
    expect(l.process.env).not.toContain('RUNCVM_LOG_LEVEL=DEBUG');
    expect(l.process.env).toContain('SECRET_TOKEN=s3cr3t-value');
    expect(l.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [2000] });
    expect(l.process.cwd).toBe('/work');
    expect(l.hostname).toBe('abc');
    expect(l.vm).toEqual({ hypervisor: 'qemu', accel: 'auto', vcpus: 2, memoryMiB: 512 });
    // the tmpfs is the workload's (replayed in the spec's order); init mounts only a tmpfs that holds a volume
    expect(l.mounts).toEqual([]);
    expect(l.rootfs!.mounts.find((m) => m.destination === '/cache')).toEqual({ type: 'tmpfs', source: 'tmpfs', destination: '/cache', options: ['nosuid', 'nodev', 'size=10m'] });
    expect(l.log).toEqual({ level: 'info', file: '/.runcvm/debug.log' });
    expect(parseLaunchSpec(JSON.stringify(l))).toEqual(l);
  });
  it('lists the engine files copied into the VM and skips built-in mounts', () => {
    expect(copiedFilesFromSpec(fixture()).map((f) => f.destination)).toEqual(['/etc/resolv.conf', '/etc/hosts']);
    expect(guestMountsFromSpec(fixture()).map((m) => m.destination)).toEqual([]);
    const withVolume = fixture();
    withVolume.mounts = [...(withVolume.mounts ?? []), { destination: '/cache/data', type: 'bind', source: '/srv/data', options: ['rbind'] }];
    expect(guestMountsFromSpec(withVolume).map((m) => m.destination)).toEqual(['/cache']);
  });
  it('carries the workload\'s rlimits to the guest and refuses an unknown type, as runc does (the launcher carries none)', () => {
    const withLimits = fixture();
    withLimits.process!.rlimits = [{ type: 'RLIMIT_AS', soft: 1 << 30, hard: 1 << 30 }];
    expect(buildLaunchSpec(withLimits, { containerId: 'c1', settings, debugLog: false }).process.rlimits).toEqual([{ type: 'RLIMIT_AS', soft: 1 << 30, hard: 1 << 30 }]);
    withLimits.process!.rlimits = [{ type: 'RLIMIT_TEST', soft: 1, hard: 1 }];
    expect(() => buildLaunchSpec(withLimits, { containerId: 'c1', settings, debugLog: false })).toThrow(/unknown rlimit type RLIMIT_TEST/);
  });
  it('a new user namespace carries its maps to the guest; a joined one (a path) and none carry nothing; no maps is refused as runc does', () => {
    const ctx = { containerId: 'c1', settings, debugLog: false };
    const s = fixture();
    expect(buildLaunchSpec(s, ctx).userns).toBeUndefined();
    s.linux = { ...(s.linux ?? {}), namespaces: [...(s.linux?.namespaces ?? []), { type: 'user', path: '/proc/1/ns/user' }], uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] };
    expect(buildLaunchSpec(s, ctx).userns).toBeUndefined();
    s.linux.namespaces = [{ type: 'user' }];
    expect(() => buildLaunchSpec(s, ctx)).toThrow(/no gid mappings found/);
    s.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 10 }];
    const l = buildLaunchSpec(s, ctx);
    expect(l.userns).toEqual({ uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 200000, size: 10 }] });
    expect(renderGuestConfig(l)).toContain('\nuidmap=0 100000 65536\ngidmap=0 200000 10\n');
  });
  it('rejects a launch spec of another version', () => {
    const l = buildLaunchSpec(fixture(), { containerId: 'c1', settings, debugLog: false });
    expect(() => parseLaunchSpec(JSON.stringify({ ...l, version: 2 }))).toThrow();
  });
});

describe('guest config rendering', () => {
  it('escapes %, newlines and CR, and round-trips', () => {
    const v = 'a%b\nc\rd';
    expect(escapeValue(v)).toBe('a%25b%0Ac%0Dd');
    expect(unescapeValue(escapeValue(v))).toBe(v);
  });
  it('entrypoint: one argument per line, empty args kept, empty file for none', () => {
    const args = ['sh', '-c', 'echo "a\nb"', ''];
    expect(parseEntrypoint(renderEntrypoint(args))).toEqual(args);
    expect(renderEntrypoint([])).toBe('');
  });
  it('config lines for the C init', () => {
    const l = buildLaunchSpec(fixture(), { containerId: 'c1', settings: parseSettings({}), debugLog: false });
    const text = renderGuestConfig(l);
    expect(text).toContain('uid=1000\ngid=1000\ngroups=2000\n');
    expect(text).toContain('cwd=/work\n');
    expect(text).toContain('rlimit=7 1024 1048576\n');
    expect(text).toContain(`mount=tmpfs tmpfs /cache ${MS.NOSUID | MS.NODEV} size=10m 0\n`);
    expect(text).toContain('env=SECRET_TOKEN=s3cr3t-value\n');
    expect(text).toContain('umask=18\n');
  });
});
