/**
 * Firecracker failures as runcvm errors (code, exit status, message, cause, fix), and the pure mapping from what
 * Firecracker says (an API fault_message, or its last output lines and exit status) to one of them. The launcher
 * prints `runcvm: ` + render() on the container's stderr and exits with exitCode.
 */
import { defineErrors, type ToolError } from '../../../core/errors.js';

export const FIRECRACKER_EXIT = { setup: 125 } as const;

const KVM_FIX = [
  'run `ls -l /dev/kvm` on the node: if it is missing, enable hardware virtualization (VT-x/AMD-V) in the BIOS/firmware;',
  'if the node is itself a VM (cloud instance, Colima, UTM), enable nested virtualization in its hypervisor settings;',
  'give the container runtime (containerd/k3s/dockerd) read/write access to /dev/kvm;',
  'or run this container with RUNCVM_HYPERVISOR=qemu (software emulation when KVM is unavailable).',
].join('\n');

export const firecrackerErrors = defineErrors({
  KVM_UNAVAILABLE: {
    exit: FIRECRACKER_EXIT.setup,
    message: 'firecracker cannot start the microVM: KVM is not available on this node (no /dev/kvm)',
    cause: 'KVM is not available on this node (no /dev/kvm): {detail}. Firecracker only runs on hardware virtualization.',
    fix: KVM_FIX,
  },
  KVM_NO_ACCESS: {
    exit: FIRECRACKER_EXIT.setup,
    message: 'firecracker cannot open /dev/kvm: permission denied',
    cause: 'KVM exists on this node but the runtime may not open /dev/kvm read/write: {detail}.',
    fix: KVM_FIX,
  },
  FIRECRACKER_NOT_INSTALLED: {
    exit: FIRECRACKER_EXIT.setup,
    message: 'RUNCVM_HYPERVISOR=firecracker: firecracker is not installed on this node (looked for {path})',
    cause: 'firecracker is not installed on this node; it is not part of this runcvm installation.',
    fix: 'install a Firecracker release binary (github.com/firecracker-microvm/firecracker, static x86_64 build) at {path}; or use RUNCVM_HYPERVISOR=qemu.',
  },
  FIRECRACKER_NEEDS_KVM: {
    exit: FIRECRACKER_EXIT.setup,
    message: 'RUNCVM_HYPERVISOR=firecracker but KVM is not usable here: {reason}',
    cause: 'Firecracker has no software emulation; it needs a working /dev/kvm ({reason}).',
    fix: KVM_FIX,
  },
  FIRECRACKER_API: {
    exit: FIRECRACKER_EXIT.setup,
    message: 'firecracker rejected {request}: {fault}',
    cause: 'the Firecracker API answered HTTP {status}; runcvm checks its requests against the API schema of Firecracker {version}, so this usually means a different Firecracker version or a host resource it could not open.',
    fix: 'check `firecracker --version` (runcvm is tested against {version}) and that the paths in the request exist in the container; rerun with RUNCVM_LOG_LEVEL=DEBUG and read {debugLog}.',
  },
  FIRECRACKER_EXITED: {
    exit: FIRECRACKER_EXIT.setup,
    message: 'firecracker exited ({how}) before the microVM started: {output}',
    cause: 'the Firecracker process ended during start-up.',
    fix: 'read its output above; rerun with RUNCVM_LOG_LEVEL=DEBUG and read {debugLog}.',
  },
  FIRECRACKER_NOT_READY: {
    exit: FIRECRACKER_EXIT.setup,
    message: 'firecracker did not open its API socket {socket} within {ms} ms',
    cause: 'the Firecracker process started but its API never answered GET /.',
    fix: 'check that the state directory is writable and not on a filesystem without Unix socket support; rerun with RUNCVM_LOG_LEVEL=DEBUG.',
  },
});

export type FirecrackerErrorCode = keyof typeof firecrackerErrors.table;

const { fail } = firecrackerErrors;

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
