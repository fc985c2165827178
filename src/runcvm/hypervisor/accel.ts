/**
 * KVM or TCG. KVM is used when it can work for a stock guest kernel: /dev/kvm opens read/write, the CPU has vmx or
 * svm, and the KVM module is not KVM-PVM (a paravirtual KVM on hosts that are themselves guests, under which a stock
 * kernel hangs). Otherwise TCG (software emulation), unless the user insisted on KVM. Pure: facts in, decision out.
 */

export interface AccelFacts {
  /** the KVM device these facts were read from (default /dev/kvm), for messages */
  kvmDevice?: string;
  /** the device exists and opens O_RDWR */
  kvmOpenable: boolean;
  kvmExists: boolean;
  /** flags line of /proc/cpuinfo */
  cpuFlags: readonly string[];
  /** /sys/module/kvm_pvm exists */
  kvmPvm: boolean;
}

export type AccelDecision =
  | { ok: true; accel: 'kvm' | 'tcg'; reason: string }
  | { ok: false; reason: string };

export function kvmProblem(f: AccelFacts): string | undefined {
  const device = f.kvmDevice ?? '/dev/kvm';
  if (!f.kvmExists) return `${device} does not exist`;
  if (!f.kvmOpenable) return `${device} cannot be opened read/write (permissions, or not passed into the container)`;
  if (!f.cpuFlags.includes('vmx') && !f.cpuFlags.includes('svm')) return 'the CPU reports neither vmx nor svm (no hardware virtualization exposed)';
  if (f.kvmPvm) return 'KVM here is KVM-PVM (kvm_pvm module), which cannot boot a stock guest kernel';
  return undefined;
}

export function decideAccel(requested: 'auto' | 'kvm' | 'tcg', f: AccelFacts): AccelDecision {
  if (requested === 'tcg') return { ok: true, accel: 'tcg', reason: 'RUNCVM_ACCEL=tcg' };
  const problem = kvmProblem(f);
  if (!problem) return { ok: true, accel: 'kvm', reason: 'KVM is usable' };
  if (requested === 'kvm') return { ok: false, reason: problem };
  return { ok: true, accel: 'tcg', reason: `KVM not usable (${problem}); using TCG software emulation (slower)` };
}

export function cpuFlagsFromCpuinfo(text: string): string[] {
  const line = text.split('\n').find((l) => /^flags\s*:/.test(l));
  return line ? line.replace(/^flags\s*:\s*/, '').trim().split(/\s+/) : [];
}

/** "cpu MHz : 2199.998" → kHz (for tsc_early_khz, which a TCG guest needs to boot reliably). */
export function cpuKhzFromCpuinfo(text: string): number | undefined {
  const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(text);
  if (!m) return undefined;
  const khz = Math.round(Number(m[1]) * 1000);
  return khz > 0 ? khz : undefined;
}
