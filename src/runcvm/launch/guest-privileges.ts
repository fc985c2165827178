/**
 * RUNCVM_GUEST_PRIVILEGES: what the workload may do inside the VM, a node-level choice (NODE_SETTING_NAMES: the
 * runtime's own environment, per containerd runtime entry; never the container's environment, the pod author's).
 *
 *   pod (default)  the container's OCI process security applies inside the guest as under runc: user, capability
 *                  sets, no_new_privs (runc parity);
 *   userns         the workload may use user namespaces with subordinate IDs, as a rootless builder needs:
 *                  CAP_SETUID and CAP_SETGID join the bounding set (so newuidmap/newgidmap's file capabilities
 *                  work), no_new_privs is off and the container's seccomp profile is not loaded inside the guest
 *                  (a runtime's default profile refuses unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN; Kata's
 *                  disable_guest_seccomp, RUNCVM_GUEST_SECCOMP=off for this handler only). The user, every other capability restriction,
 *                  and all of the container's restrictions on the node (user, capabilities, no_new_privs, seccomp
 *                  of the processes that run the VM) are unchanged: the VM, with its own kernel, is the boundary.
 * The installer registers this as its own runtime handler (runcvm-userns, whose BinaryName bin/runcvm-runtime-userns
 * sets it), so a RuntimeClass, chosen by the cluster admin, decides it; planCreate applies it to the LaunchSpec and
 * `runcvm plan` prints it. See docs/kubernetes.md "A restricted build". Pure.
 */
import type { LaunchSpec } from './schema.js';

export const GUEST_PRIVILEGES = ['pod', 'userns'] as const;
export type GuestPrivileges = (typeof GUEST_PRIVILEGES)[number];

export const GUEST_PRIVILEGES_FIX =
  "set RUNCVM_GUEST_PRIVILEGES in the runtime's own environment to pod or userns (the containerd runtime entry whose BinaryName is bin/runcvm-runtime-userns sets userns)";

const USERNS_CAPS = ['CAP_SETUID', 'CAP_SETGID'];

/** One line for the debug log and `runcvm plan`: what the workload may do inside the VM. */
export function describeGuestPrivileges(p: GuestPrivileges): string {
  return p === 'pod'
    ? 'pod (the container\'s user, capabilities and no_new_privs apply inside the VM, as under runc)'
    : 'userns (inside the VM: CAP_SETUID and CAP_SETGID in the bounding set, no_new_privs off, no seccomp profile, for user namespaces; the user and the container\'s restrictions on the node are unchanged)';
}

/** The launch spec's process with the userns privileges inside the guest (pod leaves it unchanged). */
export function withGuestPrivileges(launch: LaunchSpec, privileges: GuestPrivileges): LaunchSpec {
  if (privileges === 'pod') return launch;
  const caps = launch.process.capabilities;
  const bounding = [...new Set([...(caps?.bounding ?? []), ...USERNS_CAPS])];
  // the profile stays on the node (config.json: the launcher and QEMU); in the guest it would refuse the user namespace
  const { seccomp: _guestSeccomp, ...rest } = launch;
  return {
    ...rest,
    process: {
      ...launch.process,
      noNewPrivileges: false,
      // no capability sets at all means "init keeps full root" (old launch specs): only the bounding set is widened
      ...(caps ? { capabilities: { ...caps, bounding } } : {}),
    },
  };
}
