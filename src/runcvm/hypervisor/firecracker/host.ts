/**
 * Host side of the hypervisor choice at `create`: read the few facts selectHypervisor needs (is there a firecracker
 * in the guest package, can /dev/kvm be used) and decide. Explicit RUNCVM_HYPERVISOR=firecracker only needs /dev/kvm
 * to open read/write (Firecracker itself reports anything deeper, mapped to cause and fix); the default prefers
 * Firecracker only when KVM passes every check the QEMU path uses (hypervisor/accel.ts), QEMU otherwise.
 */
import { constants as fsc } from 'node:fs';
import { access } from 'node:fs/promises';
import { kvmProblem, type AccelFacts } from '../accel.js';
import { gatherAccelFacts } from '../facts.js';
import { selectHypervisor } from './select.js';

async function executable(path: string): Promise<boolean> {
  return access(path, fsc.X_OK).then(() => true, () => false);
}

/** The same facts the launcher's accelerator decision reads (hypervisor/facts.ts), here on the host at create. */
export async function hostAccelFacts(): Promise<AccelFacts> {
  return gatherAccelFacts();
}

/** `requested` is the raw RUNCVM_HYPERVISOR value (already validated by settings), undefined when unset. */
export async function chooseHypervisor(requested: string | undefined, guestBinDir: string): Promise<'qemu' | 'firecracker'> {
  const want = requested?.trim().toLowerCase() || 'auto';
  if (want === 'qemu') return 'qemu';
  const path = `${guestBinDir.replace(/\/$/, '')}/firecracker`;
  const present = await executable(path);
  const facts = await hostAccelFacts();
  let problem: string | undefined;
  if (want === 'firecracker') {
    if (!facts.kvmExists) problem = '/dev/kvm does not exist';
    else if (!facts.kvmOpenable) problem = '/dev/kvm cannot be opened read/write';
  } else problem = kvmProblem(facts);
  const choice = selectHypervisor(want === 'firecracker' ? 'firecracker' : 'auto', {
    ...(present ? { firecrackerPath: path } : {}),
    firecrackerLookedFor: path,
    ...(problem ? { kvmProblem: problem } : {}),
  });
  if (!choice.ok) throw choice.error;
  return choice.hypervisor;
}
