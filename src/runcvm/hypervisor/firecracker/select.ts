/**
 * Which hypervisor runs a container. RUNCVM_HYPERVISOR=qemu|firecracker is honoured (firecracker fails plainly when
 * its binary or KVM is missing); unset, Firecracker is chosen when its binary is present and KVM is usable, QEMU
 * otherwise. Pure: facts in, decision out.
 */
import { runcvmErrors } from '../../errors.js';
import type { ToolError } from '../../../core/errors.js';

export interface SelectionFacts {
  /** absolute path of an executable firecracker (RUNCVM_FIRECRACKER, the guest package, or PATH), if any */
  firecrackerPath?: string;
  /** where we looked, for the message when it is missing */
  firecrackerLookedFor: string;
  /** undefined when KVM is usable; otherwise why not (hypervisor/accel.ts kvmProblem) */
  kvmProblem?: string;
}

export type HypervisorChoice =
  | { ok: true; hypervisor: 'qemu' | 'firecracker'; reason: string }
  | { ok: false; error: ToolError };

export function selectHypervisor(requested: 'auto' | 'qemu' | 'firecracker' | undefined, f: SelectionFacts): HypervisorChoice {
  if (requested === 'qemu') return { ok: true, hypervisor: 'qemu', reason: 'RUNCVM_HYPERVISOR=qemu' };
  if (requested === 'firecracker') {
    if (!f.firecrackerPath) return { ok: false, error: runcvmErrors.fail('FIRECRACKER_NOT_INSTALLED', { path: f.firecrackerLookedFor }) };
    if (f.kvmProblem) return { ok: false, error: runcvmErrors.fail('FIRECRACKER_NEEDS_KVM', { reason: f.kvmProblem }) };
    return { ok: true, hypervisor: 'firecracker', reason: 'RUNCVM_HYPERVISOR=firecracker' };
  }
  if (!f.firecrackerPath) return { ok: true, hypervisor: 'qemu', reason: `no firecracker binary (looked for ${f.firecrackerLookedFor})` };
  if (f.kvmProblem) return { ok: true, hypervisor: 'qemu', reason: `firecracker present but KVM is not usable (${f.kvmProblem})` };
  return { ok: true, hypervisor: 'firecracker', reason: `firecracker found at ${f.firecrackerPath} and KVM is usable` };
}

/** Candidate locations in lookup order: RUNCVM_FIRECRACKER, the guest package, then each PATH entry. */
export function firecrackerCandidates(env: Record<string, string | undefined>, guestBin: string): string[] {
  if (env.RUNCVM_FIRECRACKER) return [env.RUNCVM_FIRECRACKER];
  const path = (env.PATH ?? '').split(':').filter(Boolean).map((d) => `${d.replace(/\/$/, '')}/firecracker`);
  return [`${guestBin.replace(/\/$/, '')}/firecracker`, ...path];
}
