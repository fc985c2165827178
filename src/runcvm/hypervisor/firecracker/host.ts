/**
 * Host side of the hypervisor choice at `create`: read the few facts selectHypervisor needs (is there a firecracker
 * in the guest package, can /dev/kvm be used) and decide. Explicit RUNCVM_HYPERVISOR=firecracker only needs /dev/kvm
 * to open read/write (Firecracker itself reports anything deeper, mapped to cause and fix); the default prefers
 * Firecracker only when KVM passes every check the QEMU path uses (hypervisor/accel.ts), QEMU otherwise.
 */
import { constants as fsc } from 'node:fs';
import { access, open, readFile } from 'node:fs/promises';
import { cpuFlagsFromCpuinfo, kvmProblem, type AccelFacts } from '../accel.js';
import { selectHypervisor } from './select.js';

async function executable(path: string): Promise<boolean> {
  return access(path, fsc.X_OK).then(() => true, () => false);
}

export async function hostAccelFacts(): Promise<AccelFacts> {
  const kvmExists = await access('/dev/kvm', fsc.F_OK).then(() => true, () => false);
  let kvmOpenable = false;
  if (kvmExists) {
    kvmOpenable = await open('/dev/kvm', fsc.O_RDWR).then(async (fh) => {
      await fh.close();
      return true;
    }, () => false);
  }
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const kvmPvm = await access('/sys/module/kvm_pvm', fsc.F_OK).then(() => true, () => false);
  return { kvmExists, kvmOpenable, cpuFlags: cpuFlagsFromCpuinfo(cpuinfo), kvmPvm };
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
