/**
 * The launcher's root folder in runcvm's private bundle (`<state>/bundle/root`): nothing but the mount points of the
 * launcher's config.json, made at create so that runc never writes into a root it does not own (the caller's image
 * rootfs stays untouched; in a user namespace runc's init, as the mapped root, could not create them under a
 * host-root folder). Pure: the launcher's config in, folders and files out.
 */
import { normalizeDestination, type OciIdMapping, type OciSpec } from '../../launch/oci.js';

/** Folders every launcher needs besides its mounts: /tmp, /run, and virtiofsd's lock folder (/var/run/virtiofsd). */
export const LAUNCHER_ROOT_DIRS = ['/proc', '/dev', '/sys', '/tmp', '/run', '/var/run/virtiofsd'] as const;

/** Mounts inside these are made by runc in the filesystem mounted there (/dev/pts in /dev's tmpfs, …). */
const INSIDE_SYSTEM = ['/proc/', '/sys/', '/dev/'];

function isBind(m: { type?: string; options?: string[] }): boolean {
  const opts = m.options ?? [];
  return m.type === 'bind' || opts.includes('bind') || opts.includes('rbind');
}

/**
 * Folders and files to make in the launcher's root: one per mount point of `config` (a file where a bind mount's
 * source is one of `fileSources`), plus LAUNCHER_ROOT_DIRS; sorted, without duplicates.
 */
export function launcherMountPoints(config: OciSpec, fileSources: ReadonlySet<string>): { dirs: string[]; files: string[] } {
  const dirs = new Set<string>(LAUNCHER_ROOT_DIRS);
  const files = new Set<string>();
  for (const m of config.mounts ?? []) {
    const dest = normalizeDestination(m.destination);
    if (dest === '/' || INSIDE_SYSTEM.some((p) => dest.startsWith(p))) continue;
    if (isBind(m) && m.source !== undefined && fileSources.has(m.source)) files.add(dest);
    else dirs.add(dest);
  }
  // a folder that is only the parent of another mount point is made with it (mkdir -p)
  const leaves = [...dirs].filter((d) => ![...dirs, ...files].some((o) => o !== d && o.startsWith(`${d}/`)));
  return { dirs: leaves.sort(), files: [...files].sort() };
}

/** Host ids. */
export interface HostIds {
  uid: number;
  gid: number;
}

/**
 * The host ids a new user namespace's root (id 0) maps to, from linux.uidMappings/gidMappings: the owner of what the
 * launcher, running as that root, must reach and write (its root, the state folder, the debug log). undefined
 * without a user namespace of the spec's own, or when 0 is not mapped (runc refuses that itself).
 */
export function userNamespaceRoot(spec: OciSpec): HostIds | undefined {
  const linux = spec.linux;
  if (!(linux?.namespaces ?? []).some((n) => n.type === 'user' && !n.path)) return undefined;
  const root = (maps: readonly OciIdMapping[] | undefined) => (maps ?? []).find((m) => m.containerID <= 0 && 0 < m.containerID + m.size);
  const u = root(linux?.uidMappings);
  const g = root(linux?.gidMappings);
  if (!u || !g) return undefined;
  return { uid: u.hostID - u.containerID, gid: g.hostID - g.containerID };
}
