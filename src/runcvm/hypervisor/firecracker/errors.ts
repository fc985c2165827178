/**
 * The pure mapping from what Firecracker says (an API fault_message, or its last output lines and exit status) to
 * runcvm errors (src/runcvm/errors.ts, the Firecracker section). The launcher prints `runcvm: ` + render() on the
 * container's stderr and exits with exitCode.
 */
import type { ToolError } from '../../../core/errors.js';
import { runcvmErrors } from '../../errors.js';

const { fail } = runcvmErrors;

/**
 * KVM's errno from Firecracker's words. Its exit output (config-file mode) prints the error's Debug form,
 * `…StartMicroVM(Kvm(Kvm(Error(19))))…`; the API's fault_message prints the Display form, `…Kvm error: … (os error 19)…`.
 */
export function kvmErrno(text: string): number | undefined {
  const debug = /Kvm\(Kvm\(Error\((\d+)\)\)\)/.exec(text);
  if (debug?.[1]) return Number(debug[1]);
  if (/kvm/i.test(text)) {
    const display = /\(os error (\d+)\)/.exec(text);
    if (display?.[1]) return Number(display[1]);
  }
  return undefined;
}

const ERRNO_TEXT: Record<number, string> = {
  2: 'ENOENT, /dev/kvm does not exist',
  6: 'ENXIO, the KVM device has no driver behind it',
  13: 'EACCES, permission denied on /dev/kvm',
  19: 'ENODEV, no KVM device: virtualization is disabled or the kvm module is not loaded',
};

/** Firecracker's KVM failure (if that is what the text shows) as a runcvm error. */
export function kvmError(text: string): ToolError | undefined {
  const errno = kvmErrno(text);
  if (errno === undefined) return undefined;
  const detail = `Firecracker reported Kvm(Error(${errno})) (${ERRNO_TEXT[errno] ?? `errno ${errno}`})`;
  if (errno === 13 || errno === 1) return fail('KVM_NO_ACCESS', { detail });
  return fail('KVM_UNAVAILABLE', { detail });
}

export interface ApiFailure {
  method: string;
  path: string;
  status: number;
  fault: string;
  version: string;
}

export function apiError(f: ApiFailure): ToolError {
  return kvmError(f.fault) ?? fail('FIRECRACKER_API', { request: `${f.method} ${f.path}`, fault: f.fault, status: f.status, version: f.version });
}

export function exitError(e: { exitCode: number | null; signal?: string | null; output: string }): ToolError {
  const kvm = kvmError(e.output);
  if (kvm) return kvm;
  const how = e.signal ? `killed by ${e.signal}` : `exit code ${e.exitCode ?? '?'}`;
  const tail = e.output.trim().split('\n').slice(-5).join('\n') || '(no output)';
  return fail('FIRECRACKER_EXITED', { how, output: tail });
}
