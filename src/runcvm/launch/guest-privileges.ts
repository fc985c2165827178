/**
 * RUNCVM_GUEST_PRIVILEGES: what the workload may do inside the VM, a node-level choice (the runtime's own
 * environment, per containerd runtime entry; never the container's environment, which is the pod author's).
 *
 *   pod (default)  the container's OCI process security applies inside the guest as under runc: user, capability
 *                  sets, no_new_privs (runc parity);
 *   userns         the workload may use user namespaces with subordinate IDs, as a rootless builder needs:
 *                  CAP_SETUID and CAP_SETGID join the bounding set (so newuidmap/newgidmap's file capabilities
 *                  work) and no_new_privs is off inside the guest. The user, every other capability restriction,
 *                  and all of the container's restrictions on the node (user, capabilities, no_new_privs, seccomp
 *                  of the processes that run the VM) are unchanged: the VM, with its own kernel, is the boundary.
 * The installer registers this as its own runtime handler (runcvm-userns), so a RuntimeClass, chosen by the cluster
 * admin, decides it; see docs/kubernetes.md "A restricted build".
 */
import type { LaunchSpec } from './schema.js';

export type GuestPrivileges = 'pod' | 'userns';

export const GUEST_PRIVILEGES_FIX = 'set RUNCVM_GUEST_PRIVILEGES in the runtime\'s environment (the containerd runtime entry\'s BinaryName bin/runcvm-runtime-userns sets userns) to pod or userns';

export function parseGuestPrivileges(value: string | undefined): GuestPrivileges | { error: string } {
  if (value === undefined || value === '' || value === 'pod') return 'pod';
  if (value === 'userns') return 'userns';
  return { error: `RUNCVM_GUEST_PRIVILEGES=${value} is not pod or userns` };
}

const USERNS_CAPS = ['CAP_SETUID', 'CAP_SETGID'];

/** The launch spec's process with the userns privileges inside the guest (pure; pod leaves it unchanged). */
export function withGuestPrivileges(launch: LaunchSpec, privileges: GuestPrivileges): LaunchSpec {
  if (privileges === 'pod') return launch;
  const caps = launch.process.capabilities;
  const bounding = [...new Set([...(caps?.bounding ?? []), ...USERNS_CAPS])];
  return {
    ...launch,
    process: {
      ...launch.process,
      noNewPrivileges: false,
      // no capability sets at all means "init keeps full root" (old launch specs): only the bounding set is widened
      ...(caps ? { capabilities: { ...caps, bounding } } : {}),
    },
  };
}
