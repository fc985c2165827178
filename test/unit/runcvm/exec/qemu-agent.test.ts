import { describe, expect, it } from 'vitest';
import { agentArgs, qemuArgs } from '../../../../src/runcvm/hypervisor/qemu/index.js';
import type { VmPlan } from '../../../../src/runcvm/hypervisor/index.js';

describe('the agent port in the QEMU argv', () => {
  it('is its own virtio-serial device with a named bus, on the chardev socket the launcher listens on', () => {
    expect(agentArgs({ socket: '/.runcvm/state/agent.sock', portName: 'org.runcvm.agent' })).toEqual([
      '-device', 'virtio-serial-device,id=agentser,max_ports=2',
      '-chardev', 'socket,id=agent,path=/.runcvm/state/agent.sock',
      '-device', 'virtserialport,bus=agentser.0,chardev=agent,name=org.runcvm.agent,nr=1',
    ]);
    expect(agentArgs(undefined)).toEqual([]);
  });
  it('comes after runcvm.io, so the io port keeps the first (unnamed) virtio-serial bus', () => {
    const plan: VmPlan = {
      accel: 'tcg', vcpus: 1, memoryMiB: 256, kernel: '/k', initrd: '/i', cmdline: 'x', disks: [], console: { socket: '/c' },
      io: { socket: '/io', portName: 'runcvm.io' }, agent: { socket: '/a', portName: 'org.runcvm.agent' },
    };
    const args = qemuArgs(plan);
    expect(args.indexOf('virtserialport,chardev=io,name=runcvm.io,nr=1')).toBeLessThan(args.indexOf('virtio-serial-device,id=agentser,max_ports=2'));
  });
});
