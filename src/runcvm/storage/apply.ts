/**
 * Root filesystem effects on the host, at `create`: measure the image, build (or reuse) the cached read-only base
 * disk, and build the per-container writable disk from a staging folder. Host binaries only (mke2fs, mount).
 */
import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { chmod, chown, copyFile, lstat, mkdir, readdir, readFile, realpath, rename, rm, stat, utimes, writeFile, access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '../../core/exec/index.js';
import { atomicWrite } from '../../core/fsx/index.js';
import { formatSize } from '../../core/config.js';
import type { Logger } from '../../core/log/index.js';
import { runcvmErrors } from '../errors.js';
import { BASE_DISK_REF, TEMPLATE_REF } from '../state/index.js';
import { listTemplates, removeTemplate } from '../template/store.js';
import {
  baseDiskSize,
  layerCacheKeyMaterial,
  overlayLayersAt,
  parseMountinfo,
  splitVolatileLowers,
  upperDiskSize,
  baseDiskPath,
  BASE_RECIPE,
  planEviction,
  type BaseDiskPlan,
  type CacheEntry,
  type BaseSource,
  type StorageAction,
  type DiskSize,
  type TreeUsage,
} from './plan.js';

const { fail } = runcvmErrors;

export async function measureTree(root: string): Promise<TreeUsage> {
  let bytes = 0;
  let inodes = 0;
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      inodes++;
      if (e.isDirectory()) {
        bytes += 4096;
        await walk(p);
      } else if (e.isFile()) {
        const st = await lstat(p).catch(() => undefined);
        if (st) bytes += Math.ceil(st.size / 4096) * 4096 + (st.size > 48 * 1024 ? Math.ceil(st.size / (4096 * 340)) * 4096 : 0);
      } else if (e.isSymbolicLink()) {
        bytes += 4096;
      }
    }
  };
  inodes++;
  await walk(root);
  return { bytes, inodes };
}

/** Fallback identity when the rootfs is not an overlay of immutable layers: every path's metadata. */
export async function treeFingerprint(root: string): Promise<string> {
  const h = createHash('sha256');
  h.update(`${BASE_RECIPE}\ntree\n`);
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true }).catch(() => [])).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = join(dir, e.name);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      h.update(`${rel}/${e.name}|${st.mode}|${st.uid}|${st.gid}|${st.size}|${Math.trunc(st.mtimeMs)}|${st.ino}\n`);
      if (e.isDirectory()) await walk(p, `${rel}/${e.name}`);
    }
  };
  await walk(root, '');
  return h.digest('hex');
}

async function dirHasEntries(dir: string): Promise<boolean> {
  const entries = await readdir(dir).catch(() => []);
  return entries.length > 0;
}

/**
 * What the base disk of this rootfs is made of, and its cache key (storage/plan.ts BaseSource), read without
 * changing anything: the overlay layers from /proc/self/mountinfo, else a fingerprint of the tree. The cached disk's
 * measured content when the cache already holds it.
 */
export async function readBaseSource(rootfs: string, cacheDir: string): Promise<BaseSource> {
  const real = await realpath(rootfs);
  const mounts = parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
  const layers = overlayLayersAt(mounts, real);
  let source: Omit<BaseSource, 'cached'> | undefined;
  if (layers) {
    const resolved = await Promise.all(layers.lowers.map((l) => realpath(l).catch(() => l)));
    const { shared, volatile } = splitVolatileLowers(layers.lowers, resolved);
    const extra = [...volatile];
    if (layers.upper && (await dirHasEntries(layers.upper))) extra.unshift(layers.upper);
    if (shared.length > 0) {
      const ids = await Promise.all(
        shared.map(async (p) => {
          const st = await stat(p);
          return { path: p, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs };
        }),
      );
      source = {
        key: createHash('sha256').update(layerCacheKeyMaterial(ids)).digest('hex'),
        // lowest first, so later copies win
        extraLayers: extra.reverse(),
        how: `overlay layers (${shared.length} shared, ${volatile.length} per-container)`,
        from: shared.length === 1 ? { kind: 'dir', dir: shared[0]! } : { kind: 'overlay', lowers: shared },
      };
    }
  }
  source ??= { key: await treeFingerprint(real), extraLayers: [], how: 'file tree fingerprint', from: { kind: 'dir', dir: real } };
  const cached = await readCachedUsage(baseDiskPath(cacheDir, source.key));
  return cached ? { ...source, cached } : source;
}

/** The cache entry's measured content, when the disk and its usage file are both there. */
async function readCachedUsage(path: string): Promise<TreeUsage | undefined> {
  try {
    await access(path, fsc.R_OK);
    return JSON.parse(await readFile(`${path}.json`, 'utf8')) as TreeUsage;
  } catch {
    return undefined;
  }
}

/** The folder to build from: a layer itself, or a read-only overlay of the shared layers mounted for the build. */
async function mountSource(from: BaseSource['from'], tmpBase: string): Promise<{ dir: string; release: () => Promise<void> }> {
  if (from.kind === 'dir') return { dir: from.dir, release: async () => {} };
  const mnt = join(tmpBase, `lower-${process.pid}-${Date.now()}`);
  await mkdir(mnt, { recursive: true });
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${from.lowers.join(':')}`, mnt]);
  return {
    dir: mnt,
    release: async () => {
      await run('umount', [mnt], { reject: false });
      await rm(mnt, { recursive: true, force: true });
    },
  };
}

function mke2fsArgs(source: string, out: string, size: DiskSize, opts: { journal: boolean; label: string }): string[] {
  return [
    '-t', 'ext4', '-q', '-F',
    '-L', opts.label,
    '-N', String(size.inodes),
    '-O', opts.journal ? '^metadata_csum_seed' : '^has_journal',
    '-E', 'root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1',
    '-d', source,
    out,
    `${Math.ceil(size.bytes / 1024)}k`,
  ];
}

function isNoSpace(text: string): boolean {
  return /Could not allocate block|No space left|No free space|Could not allocate inode|inode table/i.test(text);
}

export async function mkext4(source: string, out: string, size: DiskSize, opts: { journal: boolean; label: string; which: string; id: string; usage: TreeUsage }): Promise<void> {
  const r = await run('mke2fs', mke2fsArgs(source, out, size, opts), { reject: false });
  if (r.exitCode !== 0) {
    await rm(out, { force: true });
    const text = `${r.stderr}\n${r.stdout}`.trim();
    if (isNoSpace(text)) {
      throw fail('ROOTFS_TOO_LARGE', { size: formatSize(size.bytes), problem: lastLine(text), content: formatSize(opts.usage.bytes), files: opts.usage.inodes, dir: dirname(out) });
    }
    throw fail('DISK_BUILD_FAILED', { which: opts.which, id: opts.id, problem: lastLine(text) || `mke2fs exit ${r.exitCode}`, dir: dirname(out) });
  }
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim());
  return lines[lines.length - 1] ?? '';
}

/** Mark a cached disk as just used (the eviction's clock); false when it is gone (evicted since the facts were read). */
async function touchCached(path: string): Promise<boolean> {
  const now = new Date();
  try {
    await utimes(path, now, now);
    return true;
  } catch {
    return false;
  }
}

/**
 * The cached base disk (storage/plan.ts BaseDiskPlan): reused when the cache holds it (and marked as just used), else
 * built once (temp file + rename: concurrent builders are safe), after which the cache is brought back within its
 * bound. Returns the measured content (the writable disk is sized from it). The cache folder is 0711: a container
 * in a user namespace (runc's init as the mapped root) must reach its disk through it; the disks' names are not
 * listed.
 */
export async function ensureBaseDisk(plan: BaseDiskPlan, id: string, log: Logger): Promise<TreeUsage> {
  await mkdir(plan.cacheDir, { recursive: true, mode: 0o711 });
  await chmod(plan.cacheDir, 0o711);
  log.debug('base disk source', { how: plan.source.how, key: plan.source.key.slice(0, 32), extraLayers: plan.source.extraLayers });
  // the cache entry of the facts, or one a concurrent create finished since
  const usage = plan.source.cached ?? (await readCachedUsage(plan.path));
  if (usage && (await touchCached(plan.path))) {
    log.info('base disk cache hit', { path: plan.path });
    return usage;
  }
  const started = Date.now();
  const { dir, release } = await mountSource(plan.source.from, plan.cacheDir);
  let measured: TreeUsage;
  try {
    measured = await measureTree(dir);
    const size = baseDiskSize(measured);
    const tmp = `${plan.path}.${process.pid}.${Date.now()}.tmp`;
    await mkext4(dir, tmp, size, { journal: false, label: 'runcvm-base', which: 'base', id, usage: measured });
    await chmod(tmp, 0o644);
    await writeFile(`${plan.path}.json`, JSON.stringify(measured));
    await rename(tmp, plan.path);
    log.info('base disk built', { path: plan.path, content: formatSize(measured.bytes), files: measured.inodes, disk: formatSize(size.bytes), ms: Date.now() - started });
  } finally {
    await release();
  }
  await boundCache(plan, log);
  return measured;
}

/** The cached disks and their last use. */
async function cacheEntries(cacheDir: string): Promise<CacheEntry[]> {
  const out: CacheEntry[] = [];
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    if (!name.endsWith('.ext4')) continue;
    const path = join(cacheDir, name);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) continue;
    const usage = await stat(`${path}.json`).catch(() => undefined);
    out.push({ path, bytes: st.size + (usage?.size ?? 0), usedMs: st.mtimeMs });
  }
  return out;
}

/** What the containers of this node's state folder use: each state folder's `base-disk` and `template` name one. */
async function cacheInUse(stateRoot: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const id of await readdir(stateRoot).catch(() => [] as string[])) {
    for (const ref of [BASE_DISK_REF, TEMPLATE_REF]) {
      const path = await readFile(join(stateRoot, id, ref), 'utf8').catch(() => undefined);
      if (path) out.add(path.trim());
    }
  }
  return out;
}

/**
 * RUNCVM_CACHE_MAX: remove least recently used disks and VM templates beyond it (storage/plan.ts planEviction). A
 * disk a running container has open stays usable by it either way (its bind mount holds the file), and so does a
 * template's memory file (mapped privately, removed by unlink only); the in-use rule keeps the next container of the
 * same image or shape from rebuilding it. `keep` is the entry just built or hit.
 */
export async function boundNodeCache(cacheDir: string, stateRoot: string, maxBytes: number, keep: string, log: Logger): Promise<void> {
  const templates = await listTemplates(cacheDir);
  const templateDirs = new Map(templates.map((t) => [t.dir, t.key]));
  const entries: CacheEntry[] = [...(await cacheEntries(cacheDir)), ...templates.map((t) => ({ path: t.dir, bytes: t.bytes, usedMs: t.usedMs }))];
  const evict = planEviction(entries, maxBytes, keep, await cacheInUse(stateRoot));
  for (const path of evict) {
    const key = templateDirs.get(path);
    if (key) {
      await removeTemplate(cacheDir, key);
      continue;
    }
    await rm(`${path}.json`, { force: true });
    await rm(path, { force: true });
  }
  if (evict.length) log.info('cache bounded', { max: formatSize(maxBytes), removed: evict.length, templates: evict.filter((p) => templateDirs.has(p)).length });
}

export async function boundCache(plan: BaseDiskPlan, log: Logger): Promise<void> {
  await boundNodeCache(plan.cacheDir, plan.bound.stateRoot, plan.bound.maxBytes, plan.path, log);
}

/** Copy a file into the staging tree, creating parents with the image's own modes and owners. */
export async function stageFile(stagingRoot: string, rootfs: string, destination: string, content: Buffer | string, mode: number, owner = { uid: 0, gid: 0 }): Promise<void> {
  await stageParents(stagingRoot, rootfs, dirname(destination));
  const target = join(stagingRoot, destination);
  await rm(target, { force: true, recursive: true });
  await writeFile(target, content, { mode });
  await chmod(target, mode);
  await chown(target, owner.uid, owner.gid);
}

export async function stageParents(stagingRoot: string, rootfs: string, dir: string): Promise<void> {
  const parts = dir.split('/').filter(Boolean);
  let rel = '';
  for (const part of parts) {
    rel += `/${part}`;
    const target = join(stagingRoot, rel);
    const exists = await lstat(target).then(() => true, () => false);
    if (exists) continue;
    const orig = await stat(join(rootfs, rel)).catch(() => undefined);
    await mkdir(target, { mode: 0o755 });
    if (orig?.isDirectory()) {
      await chmod(target, orig.mode & 0o7777);
      await chown(target, orig.uid, orig.gid);
    }
  }
}

/** Copy a whole layer folder (docker's -init layer, a non-empty upper) into the staging tree, preserving owners. */
export async function stageTree(stagingRoot: string, layer: string): Promise<void> {
  await run('cp', ['-a', '--no-preserve=links', `${layer}/.`, `${stagingRoot}/`]);
}

export async function buildUpperDisk(stagingTop: string, out: string, usage: TreeUsage, rootfsSizeBytes: number, id: string): Promise<DiskSize> {
  const size = upperDiskSize(usage, rootfsSizeBytes);
  await mkext4(stagingTop, out, size, { journal: true, label: 'runcvm-upper', which: 'writable', id, usage });
  await chmod(out, 0o600);
  return size;
}

/** What storage's actions need from earlier ones: the base disk's measured content sizes the writable disk. */
export interface StorageContext {
  log: Logger;
  usage?: TreeUsage;
}

/**
 * Perform one storage action of create's plan (storage/plan.ts planDisks). A host tool's failure while building the
 * disks is a disk-build failure, said in the tool's own words.
 */
export async function applyStorageAction(a: StorageAction, ctx: StorageContext): Promise<void> {
  switch (a.op) {
    case 'mkdir':
      await mkdir(a.path, { mode: a.mode, recursive: a.recursive ?? false });
      return;
    case 'remove':
      await rm(a.path, { recursive: true, force: true });
      return;
    case 'write':
      if (a.atomic) await atomicWrite(a.path, a.content, a.mode);
      else await writeFile(a.path, a.content, { mode: a.mode });
      return;
    case 'chmod':
      await chmod(a.path, a.mode);
      return;
    case 'base-disk':
      ctx.usage = await ensureBaseDisk(a.disk, a.id, ctx.log);
      return;
    case 'stage-tree':
      await stageTree(a.into, a.from);
      return;
    case 'stage-file':
      await stageFile(a.into, a.rootfs, a.destination, 'file' in a.from ? await readFile(a.from.file) : a.from.content, a.mode);
      return;
    case 'stage-parents':
      await stageParents(a.into, a.rootfs, a.dir);
      return;
    case 'copy':
      await copyFile(a.from, a.to);
      await chmod(a.to, a.mode);
      return;
    case 'upper-disk': {
      if (!ctx.usage) throw new Error('the writable disk is sized from the base disk, which no earlier step provided');
      const size = await buildUpperDisk(a.from, a.to, ctx.usage, a.rootfsSizeBytes, a.id);
      ctx.log.info('writable disk built', { path: a.to, bytes: size.bytes });
      return;
    }
  }
}
