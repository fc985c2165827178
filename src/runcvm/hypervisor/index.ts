/**
 * Hypervisor backends behind one interface (./types.ts), registered here, and what is common to them: the choice
 * of backend (selectHypervisor, from host facts through each backend's `supports`), and the backend-neutral VmPlan
 * (planVm) every backend turns into its own plan.
 */
import type { LaunchSpec } from '../launch/schema.js';
import { AGENT_PORT_NAME, EXEC_PATHS } from '../agent/exec.js';
import { IO_PORT_NAME } from '../guest/contract.js';
import type { ToolError } from '../../core/errors.js';
import { qemu } from './qemu/index.js';
import { firecracker } from './firecracker/index.js';
import type { HostBind, HostFacts, Hypervisor, HypervisorName, VmPlan } from './types.js';

export type * from './types.js';

export const HYPERVISORS: Readonly<Record<HypervisorName, Hypervisor>> = { qemu, firecracker };

/** The default choice, in order of preference: the first backend that `supports` the host confidently. */
export const PREFERENCE: readonly HypervisorName[] = ['firecracker', 'qemu'];

export type HypervisorChoice =
  | { ok: true; hypervisor: HypervisorName; reason: string; binds: HostBind[] }
  | { ok: false; error: ToolError };

/**
 * RUNCVM_HYPERVISOR=qemu|firecracker is honoured when that backend can run (else its error says why); unset
 * ('auto'), the first backend of PREFERENCE that supports the host. Pure: facts in, decision out.
 */
export function selectHypervisor(requested: 'auto' | HypervisorName | undefined, facts: HostFacts): HypervisorChoice {
  if (requested && requested !== 'auto') {
    const s = HYPERVISORS[requested].supports(facts, true);
    return s.ok ? { ok: true, hypervisor: requested, reason: `RUNCVM_HYPERVISOR=${requested}`, binds: s.binds } : { ok: false, error: s.error };
  }
  const passed: string[] = [];
  let last: ToolError | undefined;
  for (const name of PREFERENCE) {
    const s = HYPERVISORS[name].supports(facts, false);
    if (s.ok) return { ok: true, hypervisor: name, reason: [...passed, s.reason].join('; '), binds: s.binds };
    passed.push(`not ${name}: ${s.reason}`);
    last = s.error;
  }
  // QEMU supports every host today; should a backend ever not, the last refusal says why
  return { ok: false, error: last! };
}

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
  };
}
