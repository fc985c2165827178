/**
 * Root filesystem plan. The image becomes a read-only base ext4 disk (cached by image content and shared by every
 * container of that image) plus a per-container sparse writable ext4 (the overlay upper, also carrying
 * /.runcvm/{entrypoint,config} and the guest init). Sizes come from measured content, never from a fixed number,
 * so nothing is ever truncated. planDisks is storage's part of create's plan: the actions that build both disks
 * (storage/apply.ts performs them). Pure: facts in, plan out.
 */
import { formatSize } from '../../core/config.js';
import { GUEST_PATHS } from '../launch/schema.js';

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

/** What the base disk of a rootfs is made of (read by storage/apply.ts readBaseSource). */
export interface BaseSource {
  /** cache key (hex) */
  key: string;
  /** how the key was found, for the log */
  how: string;
  /** folders whose content goes into the writable layer (docker's -init layer, a non-empty upper), lowest first */
  extraLayers: string[];
  /** what to build from: one layer folder, or a read-only overlay of the shared layers */
  from: { kind: 'dir'; dir: string } | { kind: 'overlay'; lowers: string[] };
  /** the cache already holds this disk: its measured content */
  cached?: TreeUsage;
}

export interface BaseDiskPlan {
  cacheDir: string;
  path: string;
  source: BaseSource;
  /**
   * The cache's bound (RUNCVM_CACHE_MAX): after a build, least recently used disks beyond it are removed, never the
   * one just built and never one a container uses (named by a `base-disk` file in a state folder under `stateRoot`).
   */
  bound: { maxBytes: number; stateRoot: string };
}

/** A cached disk (the `.ext4` and its `.json`) as the eviction sees it. */
export interface CacheEntry {
  /** the disk's path */
  path: string;
  /** apparent bytes of the disk and its usage file */
  bytes: number;
  /** last use (the mtime: a hit touches it) */
  usedMs: number;
}

/**
 * Which cached disks to remove so the cache fits `maxBytes`: the least recently used first, never `keep` (the disk
 * just built or hit) nor one in `inUse`. Disks that cannot go stay, even when the cache is then over its bound.
 */
export function planEviction(entries: readonly CacheEntry[], maxBytes: number, keep: string, inUse: ReadonlySet<string>): string[] {
  let total = entries.reduce((n, e) => n + e.bytes, 0);
  const out: string[] = [];
  for (const e of [...entries].sort((a, b) => a.usedMs - b.usedMs || (a.path < b.path ? -1 : 1))) {
    if (total <= maxBytes) break;
    if (e.path === keep || inUse.has(e.path)) continue;
    out.push(e.path);
    total -= e.bytes;
  }
  return out;
}

/** The cache file of a base disk. */
export function baseDiskPath(cacheDir: string, key: string): string {
  return `${cacheDir.replace(/\/+$/, '')}/${key.slice(0, 32)}.ext4`;
}

/** Filesystem changes of create (the state folder, files it writes). */
export type FsAction =
  | { op: 'mkdir'; path: string; mode: number; recursive?: true; removeOnFailure?: true }
  | { op: 'remove'; path: string }
  | { op: 'write'; path: string; content: string; mode: number; what: string; atomic?: true }
  | { op: 'chmod'; path: string; mode: number };

/** Building the disks. */
export type DiskAction =
  /** reuse the cached base disk, or build it (storage/apply.ts ensureBaseDisk) */
  | { op: 'base-disk'; disk: BaseDiskPlan; id: string }
  /** copy a whole layer folder into the staging tree, owners kept */
  | { op: 'stage-tree'; from: string; into: string }
  /** a file into the staging tree, its parents made with the image's own modes and owners */
  | { op: 'stage-file'; into: string; rootfs: string; destination: string; mode: number; from: { file: string } | { content: string; what: string } }
  | { op: 'stage-parents'; into: string; rootfs: string; dir: string }
  | { op: 'copy'; from: string; to: string; mode: number }
  /** the per-container writable disk from the staging tree, sized from the base disk's content (upperDiskSize) */
  | { op: 'upper-disk'; from: string; to: string; rootfsSizeBytes: number; id: string };

export type StorageAction = FsAction | DiskAction;

export interface DisksInput {
  id: string;
  /** the image rootfs on the host and its root folder's mode */
  rootfs: { path: string; mode: number };
  base: BaseDiskPlan;
  /** the per-container staging folder and writable disk (state/index.ts containerPaths) */
  staging: string;
  upperDisk: string;
  rootfsSizeBytes: number;
  /** the engine's /etc/hosts etc. (launch/build.ts copiedFilesFromSpec), those the host has */
  engineFiles: readonly { source: string; destination: string }[];
  /** /.runcvm/entrypoint and /.runcvm/config, rendered (launch/guest-config.ts) */
  entrypoint: string;
  guestConfig: string;
  /** guest binaries from the package: the init always, busybox and the exec agent when the package has them */
  binaries: { init: string; busybox?: string; agent?: string };
}

/** Storage's part of create: the base disk (cached), the staging tree of the writable layer, the writable disk. */
export function planDisks(i: DisksInput): StorageAction[] {
  const top = `${i.staging}/upper`;
  const stage = (destination: string, mode: number, from: { file: string } | { content: string; what: string }): DiskAction => ({ op: 'stage-file', into: top, rootfs: i.rootfs.path, destination, mode, from });
  const bin = (name: string) => `${top}${GUEST_PATHS.bin}/${name}`;
  return [
    { op: 'base-disk', disk: i.base, id: i.id },
    { op: 'mkdir', path: `${i.staging}/work`, mode: 0o700, recursive: true },
    { op: 'mkdir', path: top, mode: 0o755 },
    // the overlay's upper root takes the image root's mode (a 0755 upper over a 0700 root would change it)
    { op: 'chmod', path: top, mode: i.rootfs.mode & 0o7777 },
    ...i.base.source.extraLayers.map((layer): DiskAction => ({ op: 'stage-tree', from: layer, into: top })),
    ...i.engineFiles.map((f) => stage(f.destination, 0o644, { file: f.source })),
    stage(GUEST_PATHS.entrypoint, 0o600, { content: i.entrypoint, what: 'the command, one argument per line' }),
    stage(GUEST_PATHS.config, 0o600, { content: i.guestConfig, what: 'the guest init config' }),
    { op: 'chmod', path: `${top}/.runcvm`, mode: 0o711 },
    { op: 'stage-parents', into: top, rootfs: i.rootfs.path, dir: GUEST_PATHS.bin },
    { op: 'copy', from: i.binaries.init, to: `${top}${GUEST_PATHS.init}`, mode: 0o755 },
    // busybox in the VM: guest networking (net.c runs `busybox ip`) and the break shells
    ...(i.binaries.busybox ? [{ op: 'copy', from: i.binaries.busybox, to: bin('busybox'), mode: 0o755 } as const] : []),
    // the exec agent, started by runcvm-init at boot
    ...(i.binaries.agent ? [{ op: 'copy', from: i.binaries.agent, to: bin('runcvm-agent'), mode: 0o755 } as const] : []),
    // the disk holds upper/ and work/ of the guest's overlay
    { op: 'upper-disk', from: i.staging, to: i.upperDisk, rootfsSizeBytes: i.rootfsSizeBytes, id: i.id },
    { op: 'remove', path: i.staging },
  ];
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

export function describeStorageAction(a: StorageAction): string {
  switch (a.op) {
    case 'mkdir':
      return `mkdir${a.recursive ? ' -p' : ''} ${a.path} ${octal(a.mode)}${a.removeOnFailure ? ' (removed on failure)' : ''}`;
    case 'remove':
      return `remove ${a.path}`;
    case 'write':
      return `write ${a.path} ${octal(a.mode)}${a.atomic ? ' atomically' : ''}: ${a.what}, ${Buffer.byteLength(a.content)} bytes`;
    case 'chmod':
      return `chmod ${octal(a.mode)} ${a.path}`;
    case 'base-disk':
      return a.disk.source.cached
        ? `base disk ${a.disk.path}: reuse the cached disk (${formatSize(a.disk.source.cached.bytes)} of content, ${a.disk.source.cached.inodes} files), marked as just used`
        : `base disk ${a.disk.path}: build it from the ${a.disk.source.how} (${a.disk.source.from.kind === 'dir' ? a.disk.source.from.dir : `overlay of ${a.disk.source.from.lowers.join(':')}`}), read-only ext4 sized from the content; then keep ${a.disk.cacheDir} within ${formatSize(a.disk.bound.maxBytes)} (RUNCVM_CACHE_MAX): the least recently used disks no container uses are removed`;
    case 'stage-tree':
      return `stage ${a.from}/. into ${a.into}`;
    case 'stage-file':
      return `stage ${a.destination} ${octal(a.mode)} into ${a.into}: ${'file' in a.from ? `copy of ${a.from.file}` : `${a.from.what}, ${Buffer.byteLength(a.from.content)} bytes`}`;
    case 'stage-parents':
      return `stage the folders of ${a.dir} into ${a.into} (the image's modes and owners)`;
    case 'copy':
      return `copy ${a.from} to ${a.to} ${octal(a.mode)}`;
    case 'upper-disk':
      return `writable disk ${a.to} from ${a.from}: sparse ext4 of at least ${formatSize(a.rootfsSizeBytes)} (RUNCVM_ROOTFS_SIZE), never smaller than the image content + 10 % + 64 MiB`;
  }
}
