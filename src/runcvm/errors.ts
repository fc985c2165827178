/**
 * runcvm's one error table: every failure of the runtime (create), the launcher, the hypervisors (QEMU, Firecracker),
 * the volumes, `runcvm-runtime exec` and `runcvm nfs-serve`, each with what happened, why, and the fix. Exit
 * statuses: 125 set-up failures (as runc reports its own), 255 exec failures (runc's exit for an exec that fails
 * before the command runs), 1 nfs-serve failures, 2 usage. The launcher prints these as one `runcvm: error: …` block on the container's stderr,
 * so they reach `ctr run`, `docker logs` and `kubectl logs`. `{debugLog}` is the container's debug log on the node
 * ($RUNCVM_LOG_DIR/runcvm-<id>.debug), filled in where the error is printed. Rendered into
 * docs/dev/runcvm-errors.md by scripts/gen-error-docs.ts (a unit test keeps the page current).
 */
import { defineErrors } from '../core/errors.js';

const KVM_FIX = [
  'run `ls -l /dev/kvm` on the node: if it is missing, enable hardware virtualization (VT-x/AMD-V) in the BIOS/firmware;',
  'if the node is itself a VM (cloud instance, Colima, UTM), enable nested virtualization in its hypervisor settings;',
  'give the container runtime (containerd/k3s/dockerd) read/write access to /dev/kvm;',
  'or run this container with RUNCVM_HYPERVISOR=qemu (software emulation when KVM is unavailable).',
].join('\n');

/** exec: 255 is what runc returns when an exec fails before the command runs (`exec failed: …`) */
export const RUNTIME_EXIT = { usage: 2, setup: 125, hypervisor: 125, exec: 255, service: 1 } as const;

export const runcvmErrors = defineErrors({
  BAD_CONFIG: {
    exit: RUNTIME_EXIT.setup,
    message: 'cannot read the OCI bundle {bundle}/config.json: {problem}',
    cause: 'the bundle given to create has no valid config.json.',
    fix: 'check the bundle folder the engine passed (--bundle); runc itself would fail on it the same way.',
  },
  BAD_SETTING: {
    exit: RUNTIME_EXIT.setup,
    message: '{name}="{value}" is not valid: {problem}',
    cause: 'a RUNCVM_* setting in the container environment has a value runcvm does not understand.',
    fix: '{fix}',
  },
  GUEST_SPEC: {
    exit: RUNTIME_EXIT.setup,
    message: 'config.json cannot be applied inside the microVM: {problem}',
    cause: 'runcvm applies the workload\'s mounts, devices, sysctls, rlimits and seccomp profile inside the guest, and checks them at create.',
    fix: '{fix}',
  },
  SETTING_NOT_ALLOWED: {
    exit: RUNTIME_EXIT.setup,
    message: '{name}="{value}" is not allowed: {problem}',
    cause: 'a container may choose a host file only inside the folder the node admin approved for it; runcvm opens, mounts and checks no other host path a container names.',
    fix: '{fix}',
  },
  SIZE_OVER_CAP: {
    exit: RUNTIME_EXIT.setup,
    message: '{name}="{value}" is not allowed: {problem}',
    cause: 'the node caps the disk sizes a container may ask for, so that no container can fill the node\'s memory or disks ({where}).',
    fix: '{fix}',
  },
  BAD_NODE_SETTING: {
    exit: RUNTIME_EXIT.setup,
    message: '{name}="{value}" is not valid: {problem}',
    cause: "a RUNCVM_* setting in the runtime's own environment (the engine's configuration on this node) has a value runcvm does not understand.",
    fix: '{fix}',
  },
  MEMORY_TOO_SMALL: {
    exit: RUNTIME_EXIT.setup,
    message: 'memory limit of {limit} MiB is below the {min} MiB a runcvm microVM needs to boot',
    cause: "the container's memory limit (docker run -m, resources.limits.memory) becomes the VM's RAM: the guest kernel, its init and the workload must all fit in it, and a smaller VM cannot boot.",
    fix: 'give the container at least {min} MiB (`docker run -m {min}m`, `resources.limits.memory: {min}Mi`), or run it as a plain container with RUNCVM_DISABLE=1.',
  },
  NO_KERNEL: {
    exit: RUNTIME_EXIT.setup,
    message: 'guest kernel not found: {path}',
    cause: 'the microVM needs a kernel (vmlinux) and an initramfs; {reason}',
    fix: 'build the assets with `bash scripts/assets/10-kernel.sh`, or point RUNCVM_KERNEL at an uncompressed vmlinux that exists on the host.',
  },
  NO_GUEST_PACKAGE: {
    exit: RUNTIME_EXIT.setup,
    message: 'runcvm guest package not found or incomplete: {path} (missing {missing})',
    cause: 'the launcher, QEMU and their libraries run from the package mounted at /.runcvm/guest.',
    fix: 'build it with `bash scripts/assets/20-guest.sh && bash scripts/assets/30-runtime.sh`, or set RUNCVM_ASSETS to a folder holding guest/ and kernel/.',
  },
  KVM_REQUIRED: {
    exit: RUNTIME_EXIT.setup,
    message: 'RUNCVM_ACCEL=kvm but KVM is not usable here: {reason}',
    cause: 'hardware virtualization is missing or unusable for a stock guest kernel ({reason}).',
    fix: 'enable virtualization (BIOS, or nested virtualization for a VM node) and give the runtime read/write access to /dev/kvm; or unset RUNCVM_ACCEL (KVM when usable, otherwise TCG emulation) or set RUNCVM_ACCEL=tcg.',
  },
  HYPERVISOR_NOT_INSTALLED: {
    exit: RUNTIME_EXIT.setup,
    message: 'RUNCVM_HYPERVISOR={name}: {name} is not installed (looked for {path})',
    cause: '{name} is not part of this runcvm installation.',
    fix: 'use RUNCVM_HYPERVISOR=qemu (the default), or install {name} into the guest package ({path}).',
  },
  ROOTFS_TOO_LARGE: {
    exit: RUNTIME_EXIT.setup,
    message: 'the image root filesystem does not fit its disk ({size}): {problem}',
    cause: 'mke2fs ran out of space or inodes while copying the image ({content} of content, {files} files).',
    fix: 'raise RUNCVM_ROOTFS_SIZE (e.g. RUNCVM_ROOTFS_SIZE=4G), and check free space in {dir}.',
  },
  DISK_BUILD_FAILED: {
    exit: RUNTIME_EXIT.setup,
    message: 'cannot build the {which} disk for container {id}: {problem}',
    cause: 'a host tool (mke2fs, mount, cp) failed while preparing the VM disks.',
    fix: 'check that e2fsprogs is installed on the host (`mke2fs -V`) and that {dir} is writable; rerun with RUNCVM_LOG_LEVEL=DEBUG and read {debugLog}.',
  },
  HYPERVISOR_CRASHED: {
    exit: RUNTIME_EXIT.hypervisor,
    message: 'the hypervisor {name} exited ({how}) before the workload reported its exit status: {reason}',
    cause: 'the microVM stopped without the guest init reporting how the workload ended (QEMU crash, kernel panic, or a guest boot failure).',
    fix: 'rerun with RUNCVM_LOG_LEVEL=DEBUG RUNCVM_KERNEL_DEBUG=1 to see the kernel console, and read {debugLog}.',
  },
  TEMPLATE_LOAD: {
    exit: RUNTIME_EXIT.hypervisor,
    message: 'the VM template {template} could not be loaded by {name}: {reason}',
    cause: 'a container restored from a pre-booted VM template (issue 17) did not come back: the saved state was refused, the load stalled, or the guest did not take its resume frame. The launcher then boots the VM cold and logs `template: cold boot (<reason>)`; `runcvm template build` sees this error when it checks a new template.',
    fix: 'remove the template with `runcvm template rm` (the next container rebuilds it), or turn templates off with RUNCVM_TEMPLATE=off; {debugLog} has the hypervisor\'s last lines.',
  },
  LAUNCH_SPEC: {
    exit: RUNTIME_EXIT.setup,
    message: 'cannot read the launch spec {path}: {problem}',
    cause: 'the launcher reads the hand-off written by `runcvm-runtime create`; it is missing or from another version.',
    fix: 'run the container through bin/runcvm-runtime (not runc directly) with a matching runcvm installation.',
  },
  NETWORK_FACTS: {
    exit: RUNTIME_EXIT.setup,
    message: 'cannot read the container network: {command}: {problem}',
    cause: 'the launcher reads the interfaces and routes the engine or CNI set up, with `ip -json`, before handing them to the VM.',
    fix: 'check that the guest package has a working ip (`/.runcvm/guest/bin/ip -V` inside the container) and that the container has CAP_NET_ADMIN.',
  },
  NETWORK_SETUP: {
    exit: RUNTIME_EXIT.setup,
    message: 'cannot hand the container network to the VM: {step}: {problem} ({command}); {undo}',
    cause: 'creating br-eth0/tap-eth0 or moving eth0 into the bridge failed inside the container network namespace.',
    fix: 'the container needs CAP_NET_ADMIN and /dev/net/tun (both added by runcvm-runtime create); check `ip link` in the pod for a leftover br-eth0 or tap-eth0, and rerun with RUNCVM_LOG_LEVEL=DEBUG.',
  },
  NETWORK_IN_USE: {
    exit: RUNTIME_EXIT.setup,
    message: 'cannot hand the container network to the VM: {problem}',
    cause: 'another runcvm container already bridged this network namespace, or a launcher was killed before it restored eth0.',
    fix: '{fix}',
  },
  VOLUME_SETUP: {
    exit: RUNTIME_EXIT.setup,
    message: 'cannot prepare the volume {destination} for the VM: {step}: {problem}',
    cause: 'the launcher shares each volume with the VM through virtiofsd (from the guest package) and creates RUNCVM_DISKS images with mke2fs before the VM starts ({command}).',
    fix: 'check that the volume source exists on the host and is a folder or file, that a RUNCVM_DISKS image path is writable in the container, and rerun with RUNCVM_LOG_LEVEL=DEBUG to read {debugLog}.',
  },
  VOLUME_NFS: {
    exit: RUNTIME_EXIT.setup,
    message: 'cannot serve the volumes {volumes} to the VM over NFS: {problem}',
    cause: '{cause}',
    fix: '{fix}',
  },
  VOLUMES_UNSUPPORTED: {
    exit: RUNTIME_EXIT.setup,
    message: 'volumes are not supported with RUNCVM_HYPERVISOR={hypervisor}: {volumes}',
    cause: 'runcvm shares host folders with the VM over virtiofs, which only the QEMU backend provides.',
    fix: 'set RUNCVM_HYPERVISOR=qemu for containers with volumes, or remove the volumes.',
  },
  UNEXPECTED: {
    exit: RUNTIME_EXIT.setup,
    message: 'runcvm {step} failed unexpectedly: {problem}',
    cause: 'an error runcvm has no entry for (a runcvm bug, or a host problem it does not recognise); it is reported as it came, not relabelled.',
    fix: 'the stack trace follows this message; rerun with RUNCVM_LOG_LEVEL=DEBUG (which keeps {debugLog}) and report both.',
  },

  // hypervisor/firecracker (errors.ts maps Firecracker's own words to these)
  KVM_UNAVAILABLE: {
    exit: RUNTIME_EXIT.setup,
    message: 'firecracker cannot start the microVM: KVM is not available on this node (no /dev/kvm)',
    cause: 'KVM is not available on this node (no /dev/kvm): {detail}. Firecracker only runs on hardware virtualization.',
    fix: KVM_FIX,
  },
  KVM_NO_ACCESS: {
    exit: RUNTIME_EXIT.setup,
    message: 'firecracker cannot open /dev/kvm: permission denied',
    cause: 'KVM exists on this node but the runtime may not open /dev/kvm read/write: {detail}.',
    fix: KVM_FIX,
  },
  FIRECRACKER_NOT_INSTALLED: {
    exit: RUNTIME_EXIT.setup,
    message: 'RUNCVM_HYPERVISOR=firecracker: firecracker is not installed on this node (looked for {path})',
    cause: 'firecracker is not installed on this node; it is not part of this runcvm installation.',
    fix: 'install a Firecracker release binary (github.com/firecracker-microvm/firecracker, static x86_64 build) at {path}; or use RUNCVM_HYPERVISOR=qemu.',
  },
  FIRECRACKER_NEEDS_KVM: {
    exit: RUNTIME_EXIT.setup,
    message: 'RUNCVM_HYPERVISOR=firecracker but KVM is not usable here: {reason}',
    cause: 'Firecracker has no software emulation; it needs a working /dev/kvm ({reason}).',
    fix: KVM_FIX,
  },
  FIRECRACKER_API: {
    exit: RUNTIME_EXIT.setup,
    message: 'firecracker rejected {request}: {fault}',
    cause: 'the Firecracker API answered HTTP {status}; runcvm checks its requests against the API schema of Firecracker {version}, so this usually means a different Firecracker version or a host resource it could not open.',
    fix: 'check `firecracker --version` (runcvm is tested against {version}) and that the paths in the request exist in the container; rerun with RUNCVM_LOG_LEVEL=DEBUG and read {debugLog}.',
  },
  FIRECRACKER_EXITED: {
    exit: RUNTIME_EXIT.setup,
    message: 'firecracker exited ({how}) before the microVM started: {output}',
    cause: 'the Firecracker process ended during start-up.',
    fix: 'read its output above; rerun with RUNCVM_LOG_LEVEL=DEBUG and read {debugLog}.',
  },
  FIRECRACKER_NOT_READY: {
    exit: RUNTIME_EXIT.setup,
    message: 'firecracker did not open its API socket {socket} within {ms} ms',
    cause: 'the Firecracker process started but its API never answered GET /.',
    fix: 'check that the state directory is writable and not on a filesystem without Unix socket support; rerun with RUNCVM_LOG_LEVEL=DEBUG.',
  },

  // runcvm-runtime exec (src/runcvm/exec)
  EXEC_WRONG_STATE: {
    exit: RUNTIME_EXIT.exec,
    message: 'cannot exec: container {id} is {state}',
    cause: 'a command can only be run in a running container (its VM is up); a {state} container has none.',
    fix: '{fix}',
  },
  EXEC_BAD_PROCESS: {
    exit: RUNTIME_EXIT.exec,
    message: 'cannot exec in container {id}: the process file {path} is not valid: {problem}',
    cause: 'the engine (containerd, docker) passes the exec process as an OCI process JSON (--process).',
    fix: 'check the engine version; runc would reject the same file.',
  },
  EXEC_UNSUPPORTED_HYPERVISOR: {
    exit: RUNTIME_EXIT.exec,
    message: 'cannot exec in container {id}: exec into {hypervisor} VMs is not supported',
    cause: 'this runcvm reaches the exec agent under QEMU (virtio-serial port) and Firecracker (vsock port 1025) only; the container\'s launch.json names {hypervisor}, probably written by another runcvm version.',
    fix: 'recreate the container with this runcvm (RUNCVM_HYPERVISOR=qemu or firecracker), or use the container\'s own I/O (ctr task attach / docker attach).',
  },
  EXEC_NO_LAUNCH_SPEC: {
    exit: RUNTIME_EXIT.exec,
    message: 'cannot exec in container {id}: its launch.json is unreadable ({problem})',
    cause: 'runcvm keeps the original process of a VM container in $RUNCVM_STATE_DIR/{id}/launch.json; exec without --process starts from it.',
    fix: 'pass the process explicitly (--process FILE), or recreate the container.',
  },
  EXEC_NO_VM_STATE: {
    exit: RUNTIME_EXIT.exec,
    message: 'cannot exec in container {id}: it runs as a microVM but its runcvm state folder is missing (looked in {expected}; recorded at create: {recorded})',
    cause: 'a VM container\'s commands run inside its VM, through the launcher\'s exec socket in its state folder; without that folder there is no way in, and running the command on the host kernel instead would escape the VM.',
    fix: 'run exec with the RUNCVM_STATE_DIR the container was created with (the engine\'s environment for the runtime must not change while containers run), or recreate the container.',
  },
  EXEC_PRESERVE_FDS: {
    exit: RUNTIME_EXIT.exec,
    message: 'cannot exec in container {id}: --preserve-fds {n} asks to pass host file descriptors 3-{last}, which cannot reach a process inside a microVM',
    cause: 'runc hands extra open descriptors to the new process; under runcvm the process runs in the VM\'s own kernel, which cannot receive host descriptors (a VM boundary, listed in docs/conformance.md).',
    fix: 'pass the data another way (stdin, a file in a volume the container mounts), or run this container with runc.',
  },
  EXEC_NO_AGENT: {
    exit: RUNTIME_EXIT.exec,
    message: 'cannot exec in container {id}: its VM did not open the exec socket {socket} within {seconds} s',
    cause: 'the container is running but its launcher has not reached the hypervisor start (networking or volume set-up is stuck, or the host is overloaded).',
    fix: 'retry; if it persists, rerun the container with RUNCVM_LOG_LEVEL=DEBUG and read {debugLog}.',
  },

  // runcvm nfs-serve (src/runcvm/nfs/main.ts)
  NFS_USAGE: {
    exit: RUNTIME_EXIT.usage,
    message: 'runcvm nfs-serve: {problem}',
    cause: 'the command line is incomplete or has an option nfs-serve does not know.',
    fix: 'runcvm nfs-serve --export /srv/vol --listen 169.254.1.254:2049 --allow 169.254.1.1 [--insecure] [--state /run/runcvm/nfs] [--verbose]',
  },
  NFS_EXPORT: {
    exit: RUNTIME_EXIT.service,
    message: 'cannot export {path}: {problem}',
    cause: 'an exported folder must exist, be a directory, be given as an absolute path, and be listed once.',
    fix: 'create the folder (mkdir -p {path}) or correct the --export argument.',
  },
  NFS_STATE: {
    exit: RUNTIME_EXIT.service,
    message: 'cannot use the state folder {dir}: {problem}',
    cause: 'the server keeps its file-handle map there (so handles survive a restart) and must be able to create and write it.',
    fix: 'pass a writable folder with --state DIR (e.g. --state /.runcvm/nfs-state), or run as root for the default /run/runcvm/nfs.',
  },
  NFS_LISTEN: {
    exit: RUNTIME_EXIT.service,
    message: 'cannot listen on {listen}: {problem}',
    cause: 'the address is not assigned to an interface of this network namespace, or the port is taken.',
    fix: 'check `ip addr` for the address (the identity IP 169.254.1.254 lives on br-eth0) and `ss -ltnp` for the port; or pick another port.',
  },

  // runcvm template build|ls|rm (src/runcvm/template/main.ts; issue 17)
  TEMPLATE_USAGE: {
    exit: RUNTIME_EXIT.usage,
    message: 'runcvm template: {problem}',
    cause: 'the command line is incomplete or has an option `runcvm template` does not know.',
    fix: 'runcvm template build [--cpus N] [--memory SIZE] [--nics N] [--data-disks N] [--hypervisor qemu|firecracker] [--accel auto|kvm|tcg] | runcvm template ls [--json] | runcvm template rm KEY|--all',
  },
  TEMPLATE_REFUSED: {
    exit: RUNTIME_EXIT.usage,
    message: 'no template can be made for this VM shape: {reason}',
    cause: 'a template is a VM saved in its initramfs; VMs the saved state cannot describe (virtiofs shares, RUNCVM_BREAK, debug logging, a kernel append, a backend without templates) always boot cold.',
    fix: '{fix}',
  },
  TEMPLATE_BUILD_FAILED: {
    exit: RUNTIME_EXIT.service,
    message: 'the template {key} could not be made: {problem}',
    cause: 'the template VM did not reach its parking point, could not be saved, or did not come back when restored once (every template is checked before it is kept); nothing of it was kept.',
    fix: 'containers keep booting cold meanwhile. Rerun with RUNCVM_LOG_LEVEL=DEBUG (`RUNCVM_LOG_LEVEL=DEBUG runcvm template build …`) for the guest console; check the guest assets with `runcvm doctor`.',
  },
  TEMPLATE_NOT_FOUND: {
    exit: RUNTIME_EXIT.service,
    message: 'no template {key} in {dir}',
    cause: 'the key names no template of this node\'s cache (RUNCVM_CACHE_DIR), or a prefix names more than one.',
    fix: 'list them with `runcvm template ls` and give a whole key (or a unique prefix of at least 8 characters).',
  },
});

export type RuncvmErrorCode = keyof typeof runcvmErrors.table;
