/**
 * Errors of `runcvm-runtime exec` (message, cause, fix). Exit status 255 is what runc returns when an exec fails
 * before the command runs (`exec failed: …`), so engines and scripts see the same code under both runtimes.
 */
import { defineErrors } from '../../core/errors.js';

export const execErrors = defineErrors({
  EXEC_WRONG_STATE: {
    exit: 255,
    message: 'cannot exec: container {id} is {state}',
    cause: 'a command can only be run in a running container (its VM is up); a {state} container has none.',
    fix: '{fix}',
  },
  EXEC_BAD_PROCESS: {
    exit: 255,
    message: 'cannot exec in container {id}: the process file {path} is not valid: {problem}',
    cause: 'the engine (containerd, docker) passes the exec process as an OCI process JSON (--process).',
    fix: 'check the engine version; runc would reject the same file.',
  },
  EXEC_UNSUPPORTED_HYPERVISOR: {
    exit: 255,
    message: 'cannot exec in container {id}: exec into {hypervisor} VMs is not supported',
    cause: 'this runcvm reaches the exec agent under QEMU (virtio-serial port) and Firecracker (vsock port 1025) only; the container\'s launch.json names {hypervisor}, probably written by another runcvm version.',
    fix: 'recreate the container with this runcvm (RUNCVM_HYPERVISOR=qemu or firecracker), or use the container\'s own I/O (ctr task attach / docker attach).',
  },
  EXEC_NO_LAUNCH_SPEC: {
    exit: 255,
    message: 'cannot exec in container {id}: its launch.json is unreadable ({problem})',
    cause: 'runcvm keeps the original process of a VM container in $RUNCVM_STATE_DIR/{id}/launch.json; exec without --process starts from it.',
    fix: 'pass the process explicitly (--process FILE), or recreate the container.',
  },
  EXEC_NO_VM_STATE: {
    exit: 255,
    message: 'cannot exec in container {id}: it runs as a microVM but its runcvm state folder is missing (looked in {expected}; recorded at create: {recorded})',
    cause: 'a VM container\'s commands run inside its VM, through the launcher\'s exec socket in its state folder; without that folder there is no way in, and running the command on the host kernel instead would escape the VM.',
    fix: 'run exec with the RUNCVM_STATE_DIR the container was created with (the engine\'s environment for the runtime must not change while containers run), or recreate the container.',
  },
  EXEC_PRESERVE_FDS: {
    exit: 255,
    message: 'cannot exec in container {id}: --preserve-fds {n} asks to pass host file descriptors 3-{last}, which cannot reach a process inside a microVM',
    cause: 'runc hands extra open descriptors to the new process; under runcvm the process runs in the VM\'s own kernel, which cannot receive host descriptors (a VM boundary, listed in docs/conformance.md).',
    fix: 'pass the data another way (stdin, a file in a volume the container mounts), or run this container with runc.',
  },
  EXEC_NO_AGENT: {
    exit: 255,
    message: 'cannot exec in container {id}: its VM did not open the exec socket {socket} within {seconds} s',
    cause: 'the container is running but its launcher has not reached the hypervisor start (networking or volume set-up is stuck, or the host is overloaded).',
    fix: 'retry; if it persists, rerun the container with RUNCVM_LOG_LEVEL=DEBUG and read /tmp/runcvm-{id}.debug.',
  },
});
