/**
 * The workload's seccomp profile, compiled on the host into the BPF program the guest loads (guest/seccomp.c). Pure:
 * plan.ts gives the profile runc's meaning, bpf.ts writes the program. One call for create (launch/guest-config.ts)
 * and `runcvm plan`.
 */
import { encodeProgram, generateBpf } from './bpf.js';
import { planSeccomp } from './plan.js';
import type { SeccompProfile } from './profile.js';

export { SeccompProfileError } from './plan.js';
export { SeccompProgramTooLarge } from './bpf.js';
export { seccompProfileSchema, type SeccompProfile } from './profile.js';

export interface CompiledSeccomp {
  /** struct sock_filter[], little-endian */
  program: Buffer;
  /** SECCOMP_FILTER_FLAG_* for seccomp(2) */
  flags: number;
}

/** undefined when the profile turns seccomp off (no default action and no syscalls, as runc reads it) */
export function compileSeccomp(profile: SeccompProfile): CompiledSeccomp | undefined {
  const plan = planSeccomp(profile);
  if (!plan) return undefined;
  return { program: encodeProgram(generateBpf(plan)), flags: plan.flags };
}
