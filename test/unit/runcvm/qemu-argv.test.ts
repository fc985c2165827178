import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import { buildLaunchSpec } from '../../../src/runcvm/launch/build.js';
import { parseSettings } from '../../../src/runcvm/launch/settings.js';
import { guestDiskName, kernelCmdline, planVm } from '../../../src/runcvm/hypervisor/index.js';
import { blockArgs, machineArgs, qemu } from '../../../src/runcvm/hypervisor/qemu/index.js';

const fixture = (): OciSpec => JSON.parse(readFileSync(new URL('../../fixtures/runcvm/config.docker.json', import.meta.url), 'utf8')) as OciSpec;

function argAfter(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

describe('QEMU microvm argv', () => {
  const launch = buildLaunchSpec(fixture(), { containerId: 'c1', settings: parseSettings({ RUNCVM_KERNEL_APPEND: 'foo=bar' }), debugLog: false });
  const plan = planVm(launch, 'tcg', { tscKhz: 2199998 });
  const hp = qemu.plan(plan);
  // the command runs through the guest package's loader: QEMU's own argv follows its binary
  const inv = { file: hp.argv[3], args: hp.argv.slice(4) };

  it('machine: microvm with the PIT, TCG with -cpu max, vCPUs and memory from the spec', () => {
    expect(hp.argv.slice(0, 3)).toEqual(['/.runcvm/guest/lib/ld', '--library-path', '/.runcvm/guest/lib']);
    expect(inv.file).toBe('/.runcvm/guest/bin/qemu-system-x86_64');
    expect(hp.env).toEqual({ PATH: '/.runcvm/guest/bin:/usr/bin:/bin', QEMU_MODULE_DIR: '/.runcvm/guest/lib/x86_64-linux-gnu/qemu' });
    // QEMU connects to the launcher's sockets: console, io and the exec agent's port
    expect(hp.listen).toEqual({ io: '/.runcvm/state/io.sock', console: '/.runcvm/state/console.sock', agent: '/.runcvm/state/agent.sock' });
    expect(hp.files).toEqual([]);
    expect(hp.control).toBeUndefined();
    expect(argAfter(inv.args, '-M')[0]).toMatch(/^microvm,pit=on/);
    expect(argAfter(inv.args, '-accel')[0]).toMatch(/^tcg/);
    expect(argAfter(inv.args, '-cpu')).toEqual(['max']);
    expect(argAfter(inv.args, '-smp')).toEqual(['2']);
    expect(argAfter(inv.args, '-m')).toEqual(['512M']);
    expect(inv.args).toEqual(expect.arrayContaining(['-nodefaults', '-no-reboot', '-nographic']));
    expect(argAfter(inv.args, '-L')).toEqual(['/.runcvm/guest/share/qemu']);
    expect(machineArgs({ ...plan, accel: 'kvm' })).toEqual(expect.arrayContaining(['-accel', 'kvm', '-cpu', 'host']));
  });
  it('kernel command line: initramfs contract, quiet, tsc_early_khz, user append last', () => {
    const cmdline = argAfter(inv.args, '-append')[0]!;
    expect(cmdline).toMatch(/^console=ttyS0 root=\/dev\/vda /);
    expect(cmdline).toContain('runcvm.upper=/dev/vdb');
    expect(cmdline).toContain('quiet');
    expect(cmdline).toContain('tsc_early_khz=2199998');
    expect(cmdline.endsWith(' foo=bar')).toBe(true);
    // TCG: the clocksource watchdog would mark the (host-clock-driven) TSC unstable under host load
    expect(cmdline).toContain(' tsc=reliable ');
    expect(kernelCmdline({ rootDevice: '/dev/vda', debug: false, kernelDebug: false, append: '' })).not.toContain('tsc=reliable');
    expect(kernelCmdline({ rootDevice: '/dev/vda', debug: true, kernelDebug: true, append: '', breakAt: 'initramfs' })).toBe(
      'console=ttyS0 root=/dev/vda panic=-1 reboot=t runcvm.debug=1 runcvm.break=initramfs',
    );
  });
  it('disks: base read-only first (vda), writable second (vdb)', () => {
    expect(blockArgs(plan.disks)).toEqual([
      '-drive', 'id=base,file=/.runcvm/disks/base.ext4,format=raw,if=none,readonly=on,discard=unmap', '-device', 'virtio-blk-device,drive=base',
      '-drive', 'id=upper,file=/.runcvm/state/upper.ext4,format=raw,if=none,cache=unsafe,discard=unmap', '-device', 'virtio-blk-device,drive=upper',
    ]);
    expect(guestDiskName(2)).toBe('/dev/vdc');
  });
  it('console and io channel are client sockets connected before the guest runs', () => {
    expect(argAfter(inv.args, '-chardev')).toEqual(expect.arrayContaining(['socket,id=con,path=/.runcvm/state/console.sock', 'socket,id=io,path=/.runcvm/state/io.sock']));
    expect(argAfter(inv.args, '-device')).toContain('virtserialport,chardev=io,name=runcvm.io,nr=1');
    expect(argAfter(inv.args, '-serial')).toEqual(['chardev:con']);
  });
});
