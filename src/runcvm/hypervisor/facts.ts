/**
 * Host facts for the hypervisor: the accelerator decision (read where the hypervisor will run: the launcher, or
 * `runcvm plan`) and the backend choice (read on the node at create).
 */
import { closeSync, constants as fsc, existsSync, openSync, readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { cpuFlagsFromCpuinfo, cpuKhzFromCpuinfo, type AccelFacts } from './accel.js';
import type { HostFacts } from './types.js';

export function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

export function gatherAccelFacts(cpuinfo = readCpuinfo()): AccelFacts {
  const kvmExists = existsSync('/dev/kvm');
  let kvmOpenable = false;
  if (kvmExists) {
    try {
      closeSync(openSync('/dev/kvm', fsc.O_RDWR));
      kvmOpenable = true;
    } catch {
      kvmOpenable = false;
    }
  }
  return { kvmExists, kvmOpenable, cpuFlags: cpuFlagsFromCpuinfo(cpuinfo), kvmPvm: existsSync('/sys/module/kvm_pvm') };
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
 * reads) and a firecracker binary, looked up in the node's configuration only (`nodeEnv`: the runtime's own
 * environment, never the container's, so a container cannot make the runtime bind an arbitrary host file).
 */
export async function readHostFacts(guestBinDir: string, nodeEnv: Record<string, string | undefined>): Promise<HostFacts> {
  const candidates = firecrackerCandidates(nodeEnv, guestBinDir);
  let firecrackerPath: string | undefined;
  for (const c of candidates) {
    if (await access(c, fsc.X_OK).then(() => true, () => false)) {
      firecrackerPath = c;
      break;
    }
  }
  return { kvm: gatherAccelFacts(), firecrackerLookedFor: firecrackerLookedFor(candidates, nodeEnv), ...(firecrackerPath ? { firecrackerPath } : {}) };
}
