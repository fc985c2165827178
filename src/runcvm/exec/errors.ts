/** Errors of `runcvm-runtime exec` (message, cause, fix). Exit status 1 is what runc returns for a failed exec. */
import { defineErrors } from '../../core/errors.js';

export const execErrors = defineErrors({
  EXEC_WRONG_STATE: {
    exit: 1,
    message: 'cannot exec: container {id} is {state}',
    cause: 'a command can only be run in a running container (its VM is up); a {state} container has none.',
    fix: '{fix}',
  },
  EXEC_BAD_PROCESS: {
    exit: 1,
    message: 'cannot exec in container {id}: the process file {path} is not valid: {problem}',
    cause: 'the engine (containerd, docker) passes the exec process as an OCI process JSON (--process).',
    fix: 'check the engine version; runc would reject the same file.',
  },
  EXEC_UNSUPPORTED_HYPERVISOR: {
    exit: 1,
    message: 'cannot exec in container {id}: exec into {hypervisor} VMs is not supported',
    cause: 'this runcvm reaches the exec agent under QEMU (virtio-serial port) and Firecracker (vsock port 1025) only; the container\'s launch.json names {hypervisor}, probably written by another runcvm version.',
    fix: 'recreate the container with this runcvm (RUNCVM_HYPERVISOR=qemu or firecracker), or use the container\'s own I/O (ctr task attach / docker attach).',
  },
  EXEC_NO_LAUNCH_SPEC: {
    exit: 1,
    message: 'cannot exec in container {id}: its launch.json is unreadable ({problem})',
    cause: 'runcvm keeps the original process of a VM container in $RUNCVM_STATE_DIR/{id}/launch.json; exec without --process starts from it.',
    fix: 'pass the process explicitly (--process FILE), or recreate the container.',
  },
});
