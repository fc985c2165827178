/**
 * OCI `linux.seccomp` as the LaunchSpec carries it (the workload's profile, applied inside the guest). The schema
 * checks the shape only; what the names mean (actions, operators, architectures, flags) is plan.ts's to judge, with
 * a message that names the entry.
 */
import { z } from 'zod';

export const seccompArgSchema = z.object({
  index: z.number().int().nonnegative(),
  value: z.number().nonnegative(),
  valueTwo: z.number().nonnegative().optional(),
  op: z.string(),
});

export const seccompSyscallSchema = z.object({
  names: z.array(z.string()),
  action: z.string(),
  errnoRet: z.number().int().nonnegative().optional(),
  args: z.array(seccompArgSchema).optional(),
});

export const seccompProfileSchema = z.object({
  defaultAction: z.string(),
  defaultErrnoRet: z.number().int().nonnegative().optional(),
  architectures: z.array(z.string()).optional(),
  flags: z.array(z.string()).optional(),
  listenerPath: z.string().optional(),
  listenerMetadata: z.string().optional(),
  syscalls: z.array(seccompSyscallSchema).optional(),
});

export type SeccompProfile = z.infer<typeof seccompProfileSchema>;
export type SeccompSyscall = z.infer<typeof seccompSyscallSchema>;
export type SeccompArg = z.infer<typeof seccompArgSchema>;
