/**
 * Hypervisor backends behind one interface, registered here. A VmPlan is the backend-neutral description of one
 * microVM (from the LaunchSpec plus the launcher's accel decision); each backend turns it into its invocation.
 */
import type { LaunchSpec } from '../launch/schema.js';
import { CONTAINER_PATHS } from '../launch/schema.js';
import { qemuInvocation } from './qemu/index.js';
import { AGENT_PORT_NAME, EXEC_PATHS } from '../agent/exec.js';
import { IO_PORT_NAME } from '../guest/contract.js';
import { explainFirecrackerExit, firecrackerInvocation } from './firecracker/invocation.js';
import type { ToolError } from '../../core/errors.js';
import type { HostFacts, Invocation, VmPlan } from './vm-plan.js';

export type { HostFacts, Invocation, VmPlan } from './vm-plan.js';

/** Where the launcher listens for the guest exec agent: the backend's own place, else QEMU's agent-port chardev. */
export function execPortSocket(inv: Pick<Invocation, 'execSocket'>, plan: VmPlan): string | undefined {
  return inv.execSocket ?? plan.agent?.socket;
}

export interface Hypervisor {
  name: 'qemu' | 'firecracker';
  /** the package binary this backend needs */
  binary: string;
  supports(facts: HostFacts): boolean;
  toInvocation(plan: VmPlan): Invocation;
  /** a backend-specific explanation of an exit without the workload's exit report (e.g. Firecracker's KVM errors) */
  explainExit?(e: { code: number | null; signal: string | null; output: string }): ToolError | undefined;
}

const GUEST_BIN = `${CONTAINER_PATHS.guest}/bin`;

export const qemu: Hypervisor = {
  name: 'qemu',
  binary: `${GUEST_BIN}/qemu-system-x86_64`,
  supports: (f) => f.binaries.has('qemu-system-x86_64'),
  toInvocation: (plan) => qemuInvocation(plan, `${GUEST_BIN}/qemu-system-x86_64`),
};

export const firecracker: Hypervisor = {
  name: 'firecracker',
  // wherever the node keeps it, create binds the chosen binary here (runtime/main.ts)
  binary: CONTAINER_PATHS.firecracker,
  supports: (f) => f.binaries.has('firecracker'),
  toInvocation: (plan) => firecrackerInvocation(plan, CONTAINER_PATHS.firecracker, plan.containerId ?? 'runcvm'),
  explainExit: explainFirecrackerExit,
};

export const HYPERVISORS: Record<Hypervisor['name'], Hypervisor> = { qemu, firecracker };

export interface KernelCmdlineInput {
  rootDevice: string;
  upperDevice?: string;
  debug: boolean;
  kernelDebug: boolean;
  tscKhz?: number;
  /**
   * `tsc=reliable`: under TCG the kernel's clocksource watchdog compares the TSC with jiffies, which lag whenever
   * the host is busy, marks the TSC unstable and falls back to refined-jiffies: a periodic tick (idle QEMU ~10×
   * the CPU) and jiffy-resolution clocks in the guest. QEMU's TCG TSC follows the host's monotonic clock, so it
   * is reliable (docs/dev/notes/bench.md has the measurement).
   */
  tscReliable?: boolean;
  breakAt?: string;
  /** initramfs module groups besides core (`none`, `nfs`, `vsock`); unset = all */
  modules?: string;
  append: string;
}

/** Kernel command line: the initramfs contract (root=, runcvm.upper=, runcvm.debug=, runcvm.break=). */
export function kernelCmdline(i: KernelCmdlineInput): string {
  const parts = ['console=ttyS0', `root=${i.rootDevice}`, 'panic=-1', 'reboot=t'];
  if (i.upperDevice) parts.push(`runcvm.upper=${i.upperDevice}`);
  if (!i.kernelDebug) parts.push('quiet', 'loglevel=0');
  if (i.tscKhz) parts.push(`tsc_early_khz=${i.tscKhz}`);
  if (i.tscReliable) parts.push('tsc=reliable');
  if (i.debug) parts.push('runcvm.debug=1');
  if (i.modules) parts.push(`runcvm.modules=${i.modules}`);
  if (i.breakAt) parts.push(`runcvm.break=${i.breakAt}`);
  if (i.append) parts.push(i.append);
  return parts.join(' ');
}

/** virtio-blk devices are named vda, vdb, … in the order the guest probes them (the order of the disk list). */
export function guestDiskName(index: number): string {
  return `/dev/vd${String.fromCharCode('a'.charCodeAt(0) + index)}`;
}

export function planVm(spec: LaunchSpec, accel: 'kvm' | 'tcg', facts: { tscKhz?: number }): VmPlan {
  const disks = spec.disks.map((d) => ({ id: d.id, path: d.path, readOnly: d.readOnly }));
  const rootIndex = spec.disks.findIndex((d) => d.role === 'root');
  const upperIndex = spec.disks.findIndex((d) => d.role === 'upper');
  const cmd: KernelCmdlineInput = {
    rootDevice: guestDiskName(Math.max(0, rootIndex)),
    debug: spec.log.level === 'debug',
    kernelDebug: spec.kernel.debug,
    append: spec.kernel.append,
  };
  if (upperIndex >= 0) cmd.upperDevice = guestDiskName(upperIndex);
  if (facts.tscKhz) cmd.tscKhz = facts.tscKhz;
  if (accel === 'tcg') cmd.tscReliable = true;
  if (spec.break === 'initramfs') cmd.breakAt = 'initramfs';
  // QEMU guests need only the core modules (virtio, overlay, virtiofs); the NFS group alone costs ~1 s of a TCG boot.
  // Firecracker (NFS volumes, vsock channel) keeps them all.
  if (spec.vm.hypervisor === 'qemu') cmd.modules = 'none';
  // NFS volumes (RUNCVM_VOLUME_TRANSPORT=nfs, volumes/nfs.ts) need the nfs group
  if (spec.vm.hypervisor === 'qemu' && (spec.volumes ?? []).some((v) => v.kind === 'virtiofs' && v.transport === 'nfs')) cmd.modules = 'nfs';
  return {
    containerId: spec.containerId,
    accel,
    vcpus: spec.vm.vcpus,
    memoryMiB: spec.vm.memoryMiB,
    kernel: spec.kernel.path,
    initrd: spec.kernel.initrd,
    cmdline: kernelCmdline(cmd),
    disks,
    console: { socket: spec.channel.console },
    io: { socket: spec.channel.io, portName: IO_PORT_NAME },
    agent: { socket: EXEC_PATHS.portSocket, portName: AGENT_PORT_NAME },
    firmwareDir: `${CONTAINER_PATHS.guest}/share/qemu`,
  };
}
