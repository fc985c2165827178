import { describe, expect, it } from 'vitest';
import { qemuArgs } from '../../../../src/runcvm/hypervisor/qemu/index.js';
import { sharedMemoryArgs, virtiofsDeviceArgs, volumeArgs } from '../../../../src/runcvm/hypervisor/qemu/volumes.js';
import type { VmPlan } from '../../../../src/runcvm/hypervisor/index.js';
import { hardNofile, mkfsArgs, virtiofsdArgs, withVolumes } from '../../../../src/runcvm/volumes/apply.js';
import type { Volume } from '../../../../src/runcvm/volumes/plan.js';
import { launchSpecSchema } from '../../../../src/runcvm/launch/schema.js';
import { volumeSchema } from '../../../../src/runcvm/launch/volume-schema.js';

const plan: VmPlan = {
  accel: 'tcg', vcpus: 1, memoryMiB: 512, kernel: '/k', initrd: '/i', cmdline: 'console=ttyS0',
  disks: [
    { id: 'base', path: '/b', readOnly: true },
    { id: 'upper', path: '/u', readOnly: false },
    { id: 'disk0', path: '/d.img', readOnly: false },
  ],
  console: { socket: '/c.sock' }, io: { socket: '/io.sock', portName: 'runcvm.io' },
};
const disk: Volume = { kind: 'disk', id: 'disk0', source: '/d.img', containerPath: '/d.img', destination: '/mnt', fs: 'ext4', sizeBytes: 1 << 26 };

describe('QEMU argv for volumes', () => {
  it('shared memory (memfd as the machine RAM) and modern virtio-mmio', () => {
    expect(sharedMemoryArgs(512)).toEqual([
      '-object', 'memory-backend-memfd,id=runcvm-mem,size=512M,share=on',
      '-machine', 'memory-backend=runcvm-mem',
      '-global', 'virtio-mmio.force-legacy=false',
    ]);
  });
  it('one vhost-user-fs-device per share', () => {
    expect(virtiofsDeviceArgs([{ tag: 'runcvm0', socket: '/s/0.sock' }, { tag: 'runcvm1', socket: '/s/1.sock' }])).toEqual([
      '-chardev', 'socket,id=fs0,path=/s/0.sock', '-device', 'vhost-user-fs-device,chardev=fs0,tag=runcvm0',
      '-chardev', 'socket,id=fs1,path=/s/1.sock', '-device', 'vhost-user-fs-device,chardev=fs1,tag=runcvm1',
    ]);
  });
  it('nothing at all without shares: the core argv is unchanged', () => {
    expect(volumeArgs(undefined, 512)).toEqual([]);
    expect(volumeArgs([], 512)).toEqual([]);
    expect(qemuArgs(plan).join(' ')).not.toContain('memory-backend');
  });
  it('data disks honour flushes (cache=writeback), the upper disk stays cache=unsafe', () => {
    const args = qemuArgs(withVolumes(plan, { shares: [{ tag: 'runcvm0', socket: '/s.sock' }] }, [disk])).join(' ');
    expect(args).toContain('id=disk0,file=/d.img,format=raw,if=none,cache=writeback');
    expect(args).toContain('id=upper,file=/u,format=raw,if=none,cache=unsafe');
    expect(args).toContain('vhost-user-fs-device,chardev=fs0,tag=runcvm0');
    expect(args).toContain('memory-backend-memfd,id=runcvm-mem,size=512M,share=on');
  });
});

describe('launcher tools', () => {
  it('virtiofsd: chroot sandbox (works in a container), cache=auto, the hard fd limit', () => {
    expect(virtiofsdArgs({ socket: '/st/runcvm0.fs.sock', source: '/.runcvm/vols/v0' }, { nofile: 1048576 })).toEqual([
      '--socket-path=/st/runcvm0.fs.sock', '-o', 'source=/.runcvm/vols/v0', '-o', 'cache=auto', '-o', 'sandbox=chroot', '-o', 'log_level=warn', '--rlimit-nofile=1048576',
    ]);
    expect(virtiofsdArgs({ socket: '/s', source: '/v' })).toContain('--rlimit-nofile=0');
  });
  it('reads the hard RLIMIT_NOFILE from /proc/self/limits', () => {
    const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n';
    expect(hardNofile(limits)).toBe(524288);
    expect(hardNofile('Max open files            1024                 unlimited            files\n')).toBe(1048576);
    expect(hardNofile('')).toBeUndefined();
  });
  it('mke2fs: lazy init, label from the id, forced on a fresh file', () => {
    expect(mkfsArgs({ fs: 'ext4', id: 'disk0' }, '/d.img.tmp')).toEqual(['-t', 'ext4', '-q', '-F', '-L', 'disk0', '-E', 'lazy_itable_init=1,lazy_journal_init=1', '/d.img.tmp']);
  });
});

describe('LaunchSpec schema', () => {
  it('accepts volumes, and specs without them (older launch.json)', () => {
    expect(volumeSchema.parse(disk)).toEqual(disk);
    expect(() => volumeSchema.parse({ ...disk, fs: 'xfs' })).toThrow();
    expect(launchSpecSchema.shape.volumes.isOptional()).toBe(true);
  });
});
