/**
 * runcvm runtime error table: each failure names what happened, why, and the fix. Exit statuses: 125 runtime
 * set-up failures (as runc reports its own), 2 usage. The launcher prints these as one `runcvm: error: …` block on
 * the container's stderr, so they reach `ctr run`, `docker logs` and `kubectl logs`.
 */
import { defineErrors } from '../core/errors.js';

export const RUNTIME_EXIT = { usage: 2, setup: 125, hypervisor: 125 } as const;

export const runcvmErrors = defineErrors({
  USAGE: {
    exit: RUNTIME_EXIT.usage,
    message: 'runcvm-runtime {verb}: {problem}',
    cause: 'the runtime was called with arguments runc would also reject.',
    fix: 'call it as runc is called: runcvm-runtime [global flags] create --bundle DIR [--pid-file F] [--console-socket S] ID',
  },
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
  BAD_NODE_SETTING: {
    exit: RUNTIME_EXIT.setup,
    message: '{name}="{value}" is not valid: {problem}',
    cause: "a RUNCVM_* setting in the runtime's own environment (the engine's configuration on this node) has a value runcvm does not understand.",
    fix: '{fix}',
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
    fix: 'check that e2fsprogs is installed on the host (`mke2fs -V`) and that {dir} is writable; rerun with RUNCVM_LOG_LEVEL=DEBUG and read /tmp/runcvm-{id}.debug.',
  },
  HYPERVISOR_CRASHED: {
    exit: RUNTIME_EXIT.hypervisor,
    message: 'the hypervisor {name} exited ({how}) before the workload reported its exit status: {reason}',
    cause: 'the microVM stopped without the guest init reporting how the workload ended (QEMU crash, kernel panic, or a guest boot failure).',
    fix: 'rerun with RUNCVM_LOG_LEVEL=DEBUG RUNCVM_KERNEL_DEBUG=1 to see the kernel console, and read /tmp/runcvm-{id}.debug.',
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
    fix: 'check that the volume source exists on the host and is a folder or file, that a RUNCVM_DISKS image path is writable in the container, and rerun with RUNCVM_LOG_LEVEL=DEBUG to read /tmp/runcvm-<id>.debug.',
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
});

export type RuncvmErrorCode = keyof typeof runcvmErrors.table;
