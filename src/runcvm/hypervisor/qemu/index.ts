/**
 * QEMU microvm argv, one pure builder per device. Flags known to work under TCG on this kind of host:
 * `-M microvm,pit=on`, `-cpu max`, `tsc_early_khz` on the kernel command line (see docs: ENVIRONMENT).
 */
import type { Invocation, VmPlan } from '../vm-plan.js';
import { netArgs } from './net.js';
import { volumeArgs } from './volumes.js';

export function machineArgs(plan: Pick<VmPlan, 'accel' | 'vcpus' | 'memoryMiB' | 'firmwareDir'>): string[] {
  const accel = plan.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,tb-size=64', '-cpu', 'max'];
  return [
    '-M', 'microvm,pit=on,pic=off,rtc=on',
    ...accel,
    '-smp', String(plan.vcpus),
    '-m', `${plan.memoryMiB}M`,
    '-nodefaults', '-no-user-config', '-no-reboot', '-nographic',
    '-L', plan.firmwareDir,
  ];
}

export function kernelArgs(plan: Pick<VmPlan, 'kernel' | 'initrd' | 'cmdline'>): string[] {
  return ['-kernel', plan.kernel, '-initrd', plan.initrd, '-append', plan.cmdline];
}

export function blockArgs(disks: VmPlan['disks']): string[] {
  return disks.flatMap((d) => [
    '-drive', `id=${d.id},file=${d.path},format=raw,if=none,${d.readOnly ? 'readonly=on' : `cache=${d.cache ?? 'unsafe'}`},discard=unmap`,
    '-device', `virtio-blk-device,drive=${d.id}`,
  ]);
}

/** ttyS0 → a unix socket the launcher listens on (QEMU connects before the guest starts: nothing lost). */
export function consoleArgs(c: VmPlan['console']): string[] {
  return ['-chardev', `socket,id=con,path=${c.socket}`, '-serial', 'chardev:con'];
}

/** The framed host↔guest channel: one virtio-serial port named runcvm.io on a client unix socket. */
export function ioArgs(io: VmPlan['io']): string[] {
  return [
    '-device', 'virtio-serial-device,max_ports=2',
    '-chardev', `socket,id=io,path=${io.socket}`,
    '-device', `virtserialport,chardev=io,name=${io.portName},nr=1`,
  ];
}

/**
 * exec (owner: exec): the agent port on its own virtio-serial device (one more virtio-mmio transport), after ioArgs
 * so that runcvm.io keeps the first bus; the agent port names its bus.
 */
export function agentArgs(agent: VmPlan['agent']): string[] {
  if (!agent) return [];
  return [
    '-device', 'virtio-serial-device,id=agentser,max_ports=2',
    '-chardev', `socket,id=agent,path=${agent.socket}`,
    '-device', `virtserialport,bus=agentser.0,chardev=agent,name=${agent.portName},nr=1`,
  ];
}

export function qemuArgs(plan: VmPlan): string[] {
  return [...machineArgs(plan), ...kernelArgs(plan), ...consoleArgs(plan.console), ...blockArgs(plan.disks), ...ioArgs(plan.io), ...agentArgs(plan.agent), ...netArgs(plan.nics ?? []), ...volumeArgs(plan.shares, plan.memoryMiB)];
}

export function qemuInvocation(plan: VmPlan, binary: string): Invocation {
  return { file: binary, args: qemuArgs(plan) };
}
