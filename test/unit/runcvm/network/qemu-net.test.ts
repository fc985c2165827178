import { describe, expect, it } from 'vitest';
import { netArgs } from '../../../../src/runcvm/hypervisor/qemu/net.js';
import { qemuArgs } from '../../../../src/runcvm/hypervisor/qemu/index.js';
import { planVm } from '../../../../src/runcvm/hypervisor/index.js';
import { withNetwork } from '../../../../src/runcvm/network/setup.js';
import { networkModeFromSpec } from '../../../../src/runcvm/launch/build.js';

describe('QEMU net argv', () => {
  it('one tap netdev + virtio-net-device with the pod MAC per NIC, no scripts, no vhost', () => {
    expect(netArgs([{ id: 'net0', tap: 'tap-eth0', mac: 'fa:0d:1f:38:0c:ca' }, { id: 'net1', tap: 'tap-eth1', mac: '52:e3:cd:f2:bf:87' }])).toEqual([
      '-netdev', 'tap,id=net0,ifname=tap-eth0,script=no,downscript=no',
      '-device', 'virtio-net-device,netdev=net0,mac=fa:0d:1f:38:0c:ca',
      '-netdev', 'tap,id=net1,ifname=tap-eth1,script=no,downscript=no',
      '-device', 'virtio-net-device,netdev=net1,mac=52:e3:cd:f2:bf:87',
    ]);
    expect(netArgs([])).toEqual([]);
  });

  it('withNetwork adds the NICs to the VmPlan and the guest parameters to the kernel command line', () => {
    const base = { cmdline: 'console=ttyS0 root=/dev/vda' };
    expect(withNetwork(base, { nics: [], cmdline: '' })).toBe(base);
    const plan = withNetwork(base, { nics: [{ id: 'net0', tap: 'tap-eth0', mac: 'fa:0d:1f:38:0c:ca' }], cmdline: 'runcvm.net.if=eth0,fa:0d:1f:38:0c:ca,1500,10.88.0.2/24' });
    expect(plan).toEqual({ cmdline: 'console=ttyS0 root=/dev/vda runcvm.net.if=eth0,fa:0d:1f:38:0c:ca,1500,10.88.0.2/24', nics: [{ id: 'net0', tap: 'tap-eth0', mac: 'fa:0d:1f:38:0c:ca' }] });
  });

  it('refuses a guest config the kernel would cut short', () => {
    const nics = [{ id: 'net0', tap: 'tap-eth0', mac: 'fa:0d:1f:38:0c:ca' }];
    const routes = Array.from({ length: 80 }, (_v, i) => `runcvm.net.route=10.${i}.0.0/16,10.88.0.1,eth0`).join(' ');
    expect(() => withNetwork({ cmdline: 'console=ttyS0' }, { nics, cmdline: routes })).toThrow(/guest network config on the kernel command line: \d+ bytes, the kernel keeps 2047/);
  });

  it('qemuArgs ends with the NICs of the plan, and has none without them', () => {
    const spec = {
      version: 1, containerId: 'c1', hostname: '', mounts: [], network: { mode: 'auto' }, log: { level: 'error' }, channel: { io: '/s/io.sock', console: '/s/con.sock' },
      process: { args: ['sh'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false, rlimits: [], noNewPrivileges: false },
      vm: { hypervisor: 'qemu', accel: 'auto', vcpus: 1, memoryMiB: 256 },
      kernel: { path: '/k/vmlinux', initrd: '/k/initrd', append: '', debug: false },
      disks: [{ id: 'base', path: '/d/base.ext4', readOnly: true, role: 'root' }],
    } as const;
    const vm = planVm(JSON.parse(JSON.stringify(spec)), 'tcg', {});
    expect(qemuArgs(vm).join(' ')).not.toContain('-netdev');
    const args = qemuArgs({ ...vm, nics: [{ id: 'net0', tap: 'tap-eth0', mac: 'fa:0d:1f:38:0c:ca' }] });
    expect(args.slice(-4)).toEqual(['-netdev', 'tap,id=net0,ifname=tap-eth0,script=no,downscript=no', '-device', 'virtio-net-device,netdev=net0,mac=fa:0d:1f:38:0c:ca']);
  });
});

describe('LaunchSpec network mode', () => {
  it("'auto' with a network namespace of its own (new or joined), 'none' in the host's", () => {
    expect(networkModeFromSpec({ linux: { namespaces: [{ type: 'pid' }, { type: 'network' }] } } as never)).toBe('auto');
    expect(networkModeFromSpec({ linux: { namespaces: [{ type: 'network', path: '/var/run/netns/pod' }] } } as never)).toBe('auto');
    expect(networkModeFromSpec({ linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] } } as never)).toBe('none');
    expect(networkModeFromSpec({} as never)).toBe('none');
  });
});
