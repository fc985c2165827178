/**
 * Root filesystem plan. The image becomes a read-only base ext4 disk (cached by image content and shared by every
 * container of that image) plus a per-container sparse writable ext4 (the overlay upper, also carrying
 * /.runcvm/{entrypoint,config} and the guest init). Sizes come from measured content, never from a fixed number,
 * so nothing is ever truncated. Pure: facts in, plan out.
 */

export const BLOCK = 4096;
const MiB = 1024 * 1024;
/** bumped whenever the base-disk recipe changes, so old cache entries are never reused */
export const BASE_RECIPE = 'runcvm-base-v1';

export interface TreeUsage {
  /** bytes rounded up to whole blocks, directories counted as one block each */
  bytes: number;
  /** files + directories + symlinks + specials */
  inodes: number;
}

/** One mountinfo line's fields that matter here. */
export interface MountInfo {
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

export interface OverlayLayers {
  lowers: string[];
  upper?: string;
}

export interface DiskSize {
  bytes: number;
  inodes: number;
}

/** Base disk: content + 10 % + 32 MiB for ext4 metadata; inodes with 25 % headroom. Read-only, so no more is needed. */
export function baseDiskSize(usage: TreeUsage): DiskSize {
  const bytes = roundUp(Math.ceil(usage.bytes * 1.1) + 32 * MiB + usage.inodes * 256, MiB);
  const inodes = Math.ceil(usage.inodes * 1.25) + 1024;
  return { bytes, inodes };
}

/**
 * Writable layer: at least RUNCVM_ROOTFS_SIZE, and never smaller than the image content (so a workload can rewrite
 * every file of its image). Sparse: costs only what is written.
 */
export function upperDiskSize(usage: TreeUsage, rootfsSizeBytes: number): DiskSize {
  const bytes = roundUp(Math.max(rootfsSizeBytes, Math.ceil(usage.bytes * 1.1) + 64 * MiB), MiB);
  const inodes = Math.max(65536, Math.ceil(usage.inodes * 1.25) + 4096);
  return { bytes, inodes };
}

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Decode the octal escapes mountinfo uses for spaces, tabs, newlines and backslashes. */
export function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 5 || right.length < 3) continue;
    out.push({ mountPoint: unescapeMountinfo(left[4]!), fsType: right[0]!, superOptions: right.slice(2).join(' ') });
  }
  return out;
}

/** The overlay layers of the mount at `path` (the last mount there wins), if it is an overlay with absolute paths. */
export function overlayLayersAt(mounts: readonly MountInfo[], path: string): OverlayLayers | undefined {
  const target = path.replace(/\/+$/, '') || '/';
  const hit = [...mounts].reverse().find((m) => m.mountPoint === target);
  if (!hit || hit.fsType !== 'overlay') return undefined;
  const opts = splitOptions(hit.superOptions);
  const lower = opts.get('lowerdir');
  if (!lower) return undefined;
  const lowers = lower.split(':').filter(Boolean).map(unescapeMountinfo);
  if (lowers.some((l) => !l.startsWith('/'))) return undefined;
  const upper = opts.get('upperdir');
  return upper && upper.startsWith('/') ? { lowers, upper: unescapeMountinfo(upper) } : { lowers };
}

function splitOptions(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
    else out.set(part, '');
  }
  return out;
}

/**
 * Docker's per-container `<id>-init` layer (hosts, resolv.conf placeholders, /.dockerenv) sits among the lowers;
 * it is split off into the writable layer so the base disk stays shared by every container of the image.
 * `resolved` holds each lower's real path (docker lists `l/<short>` symlinks).
 */
export function splitVolatileLowers(lowers: readonly string[], resolved: readonly string[]): { shared: string[]; volatile: string[] } {
  const shared: string[] = [];
  const volatile: string[] = [];
  lowers.forEach((l, i) => {
    const real = resolved[i] ?? l;
    if (/-init\/diff\/?$/.test(real)) volatile.push(l);
    else shared.push(l);
  });
  return { shared, volatile };
}

export interface LayerIdentity {
  path: string;
  dev: number;
  ino: number;
  mtimeMs: number;
}

/** Cache key of a base disk built from these (immutable) layers. */
export function layerCacheKeyMaterial(layers: readonly LayerIdentity[]): string {
  return [BASE_RECIPE, 'layers', ...layers.map((l) => `${l.path}|${l.dev}|${l.ino}|${Math.trunc(l.mtimeMs)}`)].join('\n');
}
