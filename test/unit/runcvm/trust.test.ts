/**
 * The pure decisions behind test/e2e/runtime-trust.test.ts: which settings a container may set, where a container's
 * RUNCVM_KERNEL may point, the node's caps on disk sizes, the folders a RUNCVM_DISKS image may not live in, and the
 * debug log path in error texts.
 */
import { describe, expect, it } from 'vitest';
import { kernelCandidate, kernelChoice, type KernelFacts } from '../../../src/runcvm/launch/kernel.js';
import {
  CONTAINER_SETTING_NAMES, mergeSettingEnv, NODE_SETTING_NAMES, parseNodeSettings, readSettings, settingOrigins, SettingError, type KernelRequest,
} from '../../../src/runcvm/launch/settings.js';
import { diskPathProblem, parseDisksSetting } from '../../../src/runcvm/volumes/plan.js';
import { rewriteForVm } from '../../../src/runcvm/bundle/transforms/index.js';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import { runcvmErrors } from '../../../src/runcvm/errors.js';
import { isToolError, type ToolError } from '../../../src/core/errors.js';

const DIR = '/var/lib/runcvm/kernels';
const container = (value: string): KernelRequest => ({ value, origin: 'container' });
const node = (value: string): KernelRequest => ({ value, origin: 'node' });
const file = (realPath: string): KernelFacts => ({ kind: 'file', realPath, realKernelsDir: DIR });

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('which settings a container may set', () => {
  it('the container allow-list and the node-only list do not overlap', () => {
    expect(CONTAINER_SETTING_NAMES.filter((n) => (NODE_SETTING_NAMES as readonly string[]).includes(n))).toEqual([]);
  });
  it('a node-only setting in the container environment is never read', () => {
    const containerEnv = { RUNCVM_MAX_ROOTFS_SIZE: '8T', RUNCVM_KERNELS_DIR: '/', RUNCVM_STATE_DIR: '/etc', RUNCVM_CACHE_MAX: '1T', RUNCVM_GUEST_PRIVILEGES: 'userns', RUNCVM_GUEST_SECCOMP: 'off', RUNCVM_TEMPLATE: 'on', RUNCVM_ROOTFS_SIZE: '1G' };
    expect(mergeSettingEnv({}, containerEnv)).toEqual({ RUNCVM_ROOTFS_SIZE: '1G' });
    expect(parseNodeSettings({})).toEqual({ maxRootfsBytes: 16 * 1024 ** 3, maxDiskBytes: 64 * 1024 ** 3, cacheMaxBytes: 10 * 1024 ** 3, kernelsDir: DIR, guestPrivileges: 'pod', guestSeccomp: true, template: 'off' });
    // a pod can neither switch templates on nor make the node build them
    expect(parseNodeSettings(mergeSettingEnv({}, containerEnv)).template).toBe('off');
    expect(parseNodeSettings({ RUNCVM_TEMPLATE: 'on' }).template).toBe('on');
    expect(parseNodeSettings({ RUNCVM_CACHE_MAX: '100M' }).cacheMaxBytes).toBe(100 * 1024 ** 2);
    expect(parseNodeSettings({ RUNCVM_GUEST_SECCOMP: 'off' }).guestSeccomp).toBe(false);
  });
  it('the origin of each value: the container\'s wins over the node default', () => {
    expect(settingOrigins({ RUNCVM_KERNEL: '/a', RUNCVM_ACCEL: 'tcg' }, { RUNCVM_KERNEL: 'b' })).toEqual({ RUNCVM_KERNEL: 'container', RUNCVM_ACCEL: 'node' });
    expect(readSettings({ RUNCVM_KERNEL: '/a' }, {}).kernel).toEqual({ value: '/a', origin: 'node' });
    expect(readSettings({ RUNCVM_KERNEL: '/a' }, { RUNCVM_KERNEL: 'b' }).kernel).toEqual({ value: 'b', origin: 'container' });
  });
});

describe('RUNCVM_KERNEL', () => {
  it.each(['/etc/shadow', '/', '/var/lib/runcvm', '/var/lib/runcvm/kernels', '/var/lib/runcvm/kernels-x/v', '../x', 'a/../../x', '/var/lib/runcvm/kernels/../../x', ''])(
    'a container\'s %j outside the approved folder is refused from its text alone, always with the same message',
    (value) => {
      const c = kernelCandidate(container(value), DIR);
      expect(c.ok).toBe(false);
      if (!c.ok) {
        expect(c.error.code).toBe('SETTING_NOT_ALLOWED');
        expect(c.error.render().split(`"${value}"`).join('"V"')).toBe(
          'error: RUNCVM_KERNEL="V" is not allowed: a container may only choose a kernel file inside the node\'s approved folder /var/lib/runcvm/kernels\n' +
            `cause: ${runcvmErrors.table.SETTING_NOT_ALLOWED.cause}\n` +
            'fix: name a kernel file of /var/lib/runcvm/kernels (RUNCVM_KERNEL=FILE, or its full path); the node admin adds kernels there or sets RUNCVM_KERNELS_DIR in the runtime\'s environment; unset RUNCVM_KERNEL to boot runcvm\'s own kernel',
        );
      }
    },
  );
  it('a container\'s name or path inside the folder is a candidate; the file must be a regular file that stays inside', () => {
    expect(kernelCandidate(container('vmlinux-6.12'), DIR)).toEqual({ ok: true, path: `${DIR}/vmlinux-6.12` });
    expect(kernelCandidate(container(`${DIR}/sub/v`), DIR)).toEqual({ ok: true, path: `${DIR}/sub/v` });
    const req = container('v');
    expect(kernelChoice(req, DIR, `${DIR}/v`, file(`${DIR}/v`))).toEqual({ ok: true, hostPath: `${DIR}/v` });
    // a symlink leading out: the same refusal as an outside path
    const out = kernelChoice(req, DIR, `${DIR}/v`, file('/etc/shadow'));
    expect(!out.ok && out.error.code).toBe('SETTING_NOT_ALLOWED');
    // missing or a folder inside the approved folder: a plain setting error naming the folder
    for (const facts of [{ kind: 'missing' } as KernelFacts, { kind: 'dir', realPath: `${DIR}/v`, realKernelsDir: DIR } as KernelFacts]) {
      const r = kernelChoice(req, DIR, `${DIR}/v`, facts);
      expect(!r.ok && r.error.message).toBe(`RUNCVM_KERNEL="v" is not valid: the node's approved kernel folder ${DIR} has no regular file v`);
    }
  });
  it('the node may name any regular file (absolute), and is told plainly when it is missing or not a file', () => {
    expect(kernelCandidate(node('/opt/k/vmlinux'), DIR)).toEqual({ ok: true, path: '/opt/k/vmlinux' });
    const rel = kernelCandidate(node('vmlinux'), DIR);
    expect(!rel.ok && rel.error.code).toBe('BAD_SETTING');
    expect(kernelChoice(node('/opt/k/v'), DIR, '/opt/k/v', file('/opt/k/v'))).toEqual({ ok: true, hostPath: '/opt/k/v' });
    const missing = kernelChoice(node('/opt/k/v'), DIR, '/opt/k/v', { kind: 'missing' });
    expect(!missing.ok && missing.error.code).toBe('NO_KERNEL');
    const dir = kernelChoice(node('/'), DIR, '/', { kind: 'dir', realPath: '/' });
    expect(!dir.ok && dir.error.causeText).toContain('not a regular file');
  });
  it('the chosen file is bound read-only, nosuid, nodev, as a file (bind, not rbind)', () => {
    const spec = { ociVersion: '1.0.2', process: { args: ['true'], cwd: '/', user: { uid: 0, gid: 0 } }, mounts: [] } as unknown as OciSpec;
    const out = rewriteForVm(spec, { launcherRoot: '/s/bundle/root', callerBundle: '/b', guestDir: '/g', kernelDir: '/k', stateDir: '/s', baseDisk: '/b', devices: [], customKernel: `${DIR}/v` });
    expect(out.mounts?.find((m) => m.destination === '/.runcvm/kernel-custom/vmlinux')).toEqual({ destination: '/.runcvm/kernel-custom/vmlinux', type: 'bind', source: `${DIR}/v`, options: ['bind', 'ro', 'nosuid', 'nodev'] });
  });
});

describe('node caps on disk sizes', () => {
  it('RUNCVM_ROOTFS_SIZE above the cap: SIZE_OVER_CAP naming the cap and the node setting that raises it', () => {
    const err = thrown(() => readSettings({}, { RUNCVM_ROOTFS_SIZE: '4T' }));
    expect(err).toBeInstanceOf(SettingError);
    const se = err as SettingError;
    expect(se.code).toBe('SIZE_OVER_CAP');
    const te = runcvmErrors.fail(se.code, se.details());
    expect(te.message).toBe('RUNCVM_ROOTFS_SIZE="4T" is not allowed: it asks for 4.0 TiB, more than this node allows (16 GiB, RUNCVM_MAX_ROOTFS_SIZE)');
    expect(te.causeText).toContain('/run by default: node memory');
    expect(te.fix).toContain('set RUNCVM_MAX_ROOTFS_SIZE=SIZE in the runtime\'s own environment');
    expect(readSettings({ RUNCVM_MAX_ROOTFS_SIZE: '8T' }, { RUNCVM_ROOTFS_SIZE: '4T' }).rootfsSizeBytes).toBe(4 * 1024 ** 4);
    expect(() => readSettings({}, { RUNCVM_ROOTFS_SIZE: '4T', RUNCVM_MAX_ROOTFS_SIZE: '8T' })).toThrow(/16 GiB/);
  });
  it('each RUNCVM_DISKS size against RUNCVM_MAX_DISK_SIZE', () => {
    expect(parseDisksSetting('/d/a.img,/a,ext4,64G')).toHaveLength(1);
    const err = thrown(() => parseDisksSetting('/d/a.img,/a,ext4,1G;/d/b.img,/b,ext4,65G')) as SettingError;
    expect(err.code).toBe('SIZE_OVER_CAP');
    expect(err.problem).toBe('entry "/d/b.img,/b,ext4,65G" asks for 65 GiB, more than this node allows (64 GiB, RUNCVM_MAX_DISK_SIZE)');
    expect(parseDisksSetting('/d/b.img,/b,ext4,65G', { maxDiskBytes: 100 * 1024 ** 3 })).toHaveLength(1);
  });
});

describe('where a RUNCVM_DISKS image may live', () => {
  it.each(['/.runcvm/state/x.img', '/.runcvm/kernel-custom/vmlinux/dev/shm/x.img', '/proc/x.img', '/sys/x', '/dev/shm/x.img'])('%s is refused at create', (src) => {
    expect(() => parseDisksSetting(`${src},/mnt,ext4,8M`)).toThrow(/belongs to the runtime or the kernel/);
  });
  it('in the launcher, a path that resolves (through the image\'s symlinks) under /.runcvm is refused, except the volumes', () => {
    expect(diskPathProblem('/.runcvm/state')).toMatch(/under \/\.runcvm/);
    expect(diskPathProblem('/.runcvm/debug.log')).toMatch(/under \/\.runcvm/);
    expect(diskPathProblem('/.runcvm/vols/v0/disks')).toBeUndefined();
    expect(diskPathProblem('/data')).toBeUndefined();
  });
});

describe('error texts name the debug log where the node keeps it', () => {
  it('the boundary fills {debugLog}, also inside a fix passed in by the caller', () => {
    const crashed = runcvmErrors.fail('HYPERVISOR_CRASHED', { name: 'qemu', how: 'exit code 1', reason: 'x', id: 'c1' });
    expect(crashed.fix).toContain('read {debugLog}');
    const filled = crashed.withDetails({ debugLog: '/var/log/runcvm/runcvm-c1.debug' });
    expect(filled.fix).toContain('read /var/log/runcvm/runcvm-c1.debug');
    expect(filled.code).toBe('HYPERVISOR_CRASHED');
    const nfs: ToolError = runcvmErrors.fail('VOLUME_NFS', { volumes: '/d', problem: 'p', cause: 'c', fix: 'read {debugLog}.' }).withDetails({ debugLog: '/l/x.debug' });
    expect(nfs.fix).toBe('read /l/x.debug.');
    expect(isToolError(nfs)).toBe(true);
  });
  it('no error of the table names /tmp: the log folder is the node\'s (RUNCVM_LOG_DIR)', () => {
    const texts = Object.values(runcvmErrors.table).flatMap((s) => [s.message, s.cause, s.fix]);
    expect(texts.filter((t) => t.includes('/tmp/runcvm'))).toEqual([]);
  });
});
