/**
 * Host side of the hypervisor choice at `create`: read the few facts selectHypervisor needs (is there a firecracker
 * in the guest package, can /dev/kvm be used) and decide. Explicit RUNCVM_HYPERVISOR=firecracker only needs /dev/kvm
 * to open read/write (Firecracker itself reports anything deeper, mapped to cause and fix); the default prefers
 * Firecracker only when KVM passes every check the QEMU path uses (hypervisor/accel.ts), QEMU otherwise.
 */
import { constants as fsc } from 'node:fs';
import { access } from 'node:fs/promises';
import { kvmProblem, type AccelFacts } from '../accel.js';
import { gatherAccelFacts, kvmDevicePath } from '../facts.js';
import { firecrackerCandidates, selectHypervisor } from './select.js';

async function executable(path: string): Promise<boolean> {
  return access(path, fsc.X_OK).then(() => true, () => false);
}

/**
 * The same facts the launcher's accelerator decision reads (hypervisor/facts.ts), here on the host at create, from
 * the node's KVM device (RUNCVM_KVM_DEVICE in the runtime's own environment, default /dev/kvm).
 */
export async function hostAccelFacts(nodeEnv: Record<string, string | undefined> = {}): Promise<AccelFacts> {
  return gatherAccelFacts(undefined, kvmDevicePath(nodeEnv));
}

export interface HypervisorDecision {
  hypervisor: 'qemu' | 'firecracker';
  /** the host path of the firecracker binary to bind into the container (set when hypervisor is firecracker) */
  firecrackerPath?: string;
}

/**
 * `requested` is the raw RUNCVM_HYPERVISOR value (already validated by settings), undefined when unset. The binary is
 * looked up in the node's configuration only (`nodeEnv`: the runtime's own environment, never the container's, so a
 * container cannot make the runtime bind an arbitrary host file): RUNCVM_FIRECRACKER, else the guest package, else
 * the runtime's PATH.
 */
export async function chooseHypervisor(requested: string | undefined, guestBinDir: string, nodeEnv: Record<string, string | undefined> = {}): Promise<HypervisorDecision> {
  const want = requested?.trim().toLowerCase() || 'auto';
  if (want === 'qemu') return { hypervisor: 'qemu' };
  const candidates = firecrackerCandidates(nodeEnv, guestBinDir);
  let path: string | undefined;
  for (const c of candidates) {
    if (await executable(c)) {
      path = c;
      break;
    }
  }
  const facts = await hostAccelFacts(nodeEnv);
  let problem: string | undefined;
  if (want === 'firecracker') {
    if (!facts.kvmExists) problem = `${facts.kvmDevice} does not exist`;
    else if (!facts.kvmOpenable) problem = `${facts.kvmDevice} cannot be opened read/write`;
  } else problem = kvmProblem(facts);
  const choice = selectHypervisor(want === 'firecracker' ? 'firecracker' : 'auto', {
    ...(path ? { firecrackerPath: path } : {}),
    firecrackerLookedFor: lookedFor(candidates, nodeEnv),
    ...(problem ? { kvmProblem: problem } : {}),
  });
  if (!choice.ok) throw choice.error;
  return choice.hypervisor === 'firecracker' && path ? { hypervisor: 'firecracker', firecrackerPath: path } : { hypervisor: 'qemu' };
}

/** For messages: RUNCVM_FIRECRACKER alone when set, else the package path and "PATH" (the full PATH list is noise). */
function lookedFor(candidates: string[], nodeEnv: Record<string, string | undefined>): string {
  if (nodeEnv.RUNCVM_FIRECRACKER) return `${candidates[0]} (RUNCVM_FIRECRACKER)`;
  return candidates.length > 1 ? `${candidates[0]} or on the runtime's PATH` : (candidates[0] ?? 'firecracker');
}
