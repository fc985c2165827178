/**
 * Host-side network fact for `create`: does the container join the namespace the runtime itself runs in (the
 * node's)? Kubernetes joins every container to its sandbox's namespace by path (`/proc/<pause pid>/ns/net`), and a
 * `hostNetwork: true` pod's sandbox runs in the node's namespace, so "has a network namespace entry" is not enough:
 * the path must be compared with our own namespace. runcvm must never bridge the node's eth0.
 */
import { stat } from 'node:fs/promises';
import type { OciSpec } from '../launch/oci.js';

export async function joinsHostNetwork(spec: OciSpec, ownNetns = '/proc/self/ns/net'): Promise<boolean> {
  const entry = (spec.linux?.namespaces ?? []).find((n) => n.type === 'network');
  if (!entry) return true; // no namespace of its own: the runtime's (the host's)
  if (!entry.path) return false; // a new, empty namespace
  try {
    const [theirs, ours] = await Promise.all([stat(entry.path), stat(ownNetns)]);
    return theirs.dev === ours.dev && theirs.ino === ours.ino;
  } catch {
    // unreadable path: runc will fail on it anyway; never risk bridging the host
    return true;
  }
}
