/**
 * Host facts for the hypervisor: the accelerator decision (read where the hypervisor will run: the launcher, or
 * `runcvm plan`) and the backend choice (read on the node at create).
 */
import { closeSync, constants as fsc, existsSync, openSync, readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { cpuFlagsFromCpuinfo, cpuKhzFromCpuinfo, type AccelFacts } from './accel.js';
import { runcvmErrors } from '../errors.js';
import type { HostFacts } from './types.js';

/** The KVM device inside a runcvm container (the runtime passes the node's device in under this path). */
export const KVM_DEVICE = '/dev/kvm';

/**
 * The node's KVM device: RUNCVM_KVM_DEVICE from the runtime's own environment (the engine's configuration, never a
 * container's env, so a container cannot point the runtime at another host file), default /dev/kvm. A node admin
 * uses it where the device lives elsewhere; the tests point it at a missing path, an unusable file or a stand-in to
 * set the node's KVM state themselves, whatever the machine has.
 */
export function kvmDevicePath(nodeEnv: Record<string, string | undefined>): string {
  const value = nodeEnv.RUNCVM_KVM_DEVICE;
  if (!value) return KVM_DEVICE;
  if (!isAbsolute(value)) {
    throw runcvmErrors.fail('BAD_NODE_SETTING', { name: 'RUNCVM_KVM_DEVICE', value, problem: 'not an absolute path', fix: "set it to the absolute path of the node's KVM device in the runtime's environment, or unset it (default /dev/kvm)" });
  }
  return value;
}

export function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

export function gatherAccelFacts(cpuinfo = readCpuinfo(), device = KVM_DEVICE): AccelFacts {
  const kvmExists = existsSync(device);
  let kvmOpenable = false;
  if (kvmExists) {
    try {
      closeSync(openSync(device, fsc.O_RDWR));
      kvmOpenable = true;
    } catch {
      kvmOpenable = false;
    }
  }
  return { kvmDevice: device, kvmExists, kvmOpenable, cpuFlags: cpuFlagsFromCpuinfo(cpuinfo), kvmPvm: existsSync('/sys/module/kvm_pvm') };
}

export function tscKhz(cpuinfo = readCpuinfo()): number | undefined {
  return cpuKhzFromCpuinfo(cpuinfo);
}

/** Candidate firecracker locations in lookup order: RUNCVM_FIRECRACKER, the guest package, then each PATH entry. */
export function firecrackerCandidates(env: Record<string, string | undefined>, guestBin: string): string[] {
  if (env.RUNCVM_FIRECRACKER) return [env.RUNCVM_FIRECRACKER];
  const path = (env.PATH ?? '').split(':').filter(Boolean).map((d) => `${d.replace(/\/$/, '')}/firecracker`);
  return [`${guestBin.replace(/\/$/, '')}/firecracker`, ...path];
}

/** For messages: RUNCVM_FIRECRACKER alone when set, else the package path and "PATH" (the full PATH list is noise). */
export function firecrackerLookedFor(candidates: readonly string[], nodeEnv: Record<string, string | undefined>): string {
  if (nodeEnv.RUNCVM_FIRECRACKER) return `${candidates[0]} (RUNCVM_FIRECRACKER)`;
  return candidates.length > 1 ? `${candidates[0]} or on the runtime's PATH` : (candidates[0] ?? 'firecracker');
}

/**
 * What the hypervisor choice reads on the node at create: KVM (the same facts the launcher's accelerator decision
 * reads, from the node's device: RUNCVM_KVM_DEVICE) and a firecracker binary, looked up in the node's configuration only (`nodeEnv`: the runtime's own
 * environment, never the container's, so a container cannot make the runtime bind an arbitrary host file).
 */
export async function readHostFacts(guestBinDir: string, nodeEnv: Record<string, string | undefined>, kvm?: AccelFacts): Promise<HostFacts> {
  const candidates = firecrackerCandidates(nodeEnv, guestBinDir);
  // all looked at at once, the first in lookup order wins
  const usable = await Promise.all(candidates.map((c) => access(c, fsc.X_OK).then(() => true, () => false)));
  const firecrackerPath = candidates.find((_, i) => usable[i]);
  return { kvm: kvm ?? gatherAccelFacts(undefined, kvmDevicePath(nodeEnv)), firecrackerLookedFor: firecrackerLookedFor(candidates, nodeEnv), ...(firecrackerPath ? { firecrackerPath } : {}) };
}
