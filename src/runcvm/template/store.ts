/**
 * The template store (issue 17; docs/dev/notes/templates.md 3.3): `${RUNCVM_CACHE_DIR}/templates/<key>/` holding
 * `manifest.json`, `state` (the hypervisor's device state) and `memory` (the guest RAM file). A template is written
 * once: built in `templates/.tmp-<key>-<pid>/`, files and folder fsynced, verified (one restore), the manifest written
 * last, then the folder renamed into place; one builder per key (an O_EXCL lock file naming its pid; a lock left by a
 * dead pid is taken over). It is never changed in place (restored VMs map `memory` privately: they would see a
 * change of any page they have not touched yet): removal renames the folder away and unlinks, so running VMs keep
 * their mapping. `verifyTemplate` is what the launcher checks before a restore; any problem is a cold boot reason.
 *
 * The memory file is a trust boundary: QEMU 7.2 opens it O_RDWR even for a private mapping, so create binds it
 * read-write into every launcher container of its shape, and a guest that took over its QEMU could write it and reach
 * the later VMs of that shape. The manifest records the file's identity at build (device, inode, size, mtime and
 * ctime in ns); a write(2), a truncate or a shared mapping's write-back moves mtime/ctime, writes through a private
 * mapping (every restored VM) never do. A template whose memory file changed is refused (`TAMPERED_REASON`), and
 * create removes it and starts a rebuild (`storeState` reports it as `stale`).
 */
import { createHash } from 'node:crypto';
import { constants as fsc, createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { TemplateFiles } from '../hypervisor/types.js';

/** 2: the memory file's identity (`memoryFile`); a version-1 template is stale (create removes and rebuilds it) */
export const TEMPLATE_MANIFEST_VERSION = 2;
/** why a template whose RAM file is not the one the builder wrote is refused (and removed by create) */
export const TAMPERED_REASON = "the template's memory file changed since it was built";

const decimal = z.string().regex(/^\d+$/);
/** stat(2) of the memory file at build: any change of these is a write, a replacement or a truncation */
export const fileIdentitySchema = z.object({ dev: decimal, ino: decimal, size: decimal, mtimeNs: decimal, ctimeNs: decimal }).strict();
export type FileIdentity = z.infer<typeof fileIdentitySchema>;
export const TEMPLATES_FOLDER = 'templates';
/** A key is the sha256 of the shape's canonical JSON (template/key.ts). */
export const KEY_PATTERN = /^[0-9a-f]{64}$/;

export const templateManifestSchema = z.object({
  version: z.literal(TEMPLATE_MANIFEST_VERSION),
  key: z.string().regex(KEY_PATTERN),
  /** what made the key (template/key.ts): kept for `runcvm template ls` and for a person comparing two templates */
  shape: z.record(z.unknown()),
  stateSha256: z.string().regex(/^[0-9a-f]{64}$/),
  stateBytes: z.number().int().nonnegative(),
  /** the RAM file's apparent size (it is sparse: only the pages the guest touched take room) */
  ramBytes: z.number().int().nonnegative(),
  /** the memory file's identity when the builder had written it (decimal strings: bigint stat) */
  memoryFile: fileIdentitySchema,
  /** ISO time of the build */
  created: z.string(),
});
export type TemplateManifest = z.infer<typeof templateManifestSchema>;

export type VerifyResult = { ok: true; files: TemplateFiles; manifest: TemplateManifest } | { ok: false; reason: string };

export function templatesDir(cacheDir: string): string {
  return join(cacheDir, TEMPLATES_FOLDER);
}

export function templateDir(cacheDir: string, key: string): string {
  return join(templatesDir(cacheDir), key);
}

export function templateFiles(dir: string): TemplateFiles {
  return { state: join(dir, 'state'), memory: join(dir, 'memory') };
}

export function lockPath(cacheDir: string, key: string): string {
  return join(templatesDir(cacheDir), `.lock-${key}`);
}

export function tmpDirFor(cacheDir: string, key: string, pid: number): string {
  return join(templatesDir(cacheDir), `.tmp-${key}-${pid}`);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The identity of `path` (not following a link: the template's files are regular files). */
export async function fileIdentity(path: string): Promise<FileIdentity> {
  const st = await lstat(path, { bigint: true });
  return { dev: String(st.dev), ino: String(st.ino), size: String(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) };
}

/** The fields of the memory file's identity that differ from the manifest's ([] when none). */
export async function memoryFileChanges(memory: string, recorded: FileIdentity): Promise<string[] | undefined> {
  const now = await fileIdentity(memory).catch(() => undefined);
  if (!now) return undefined;
  return (Object.keys(recorded) as (keyof FileIdentity)[]).filter((k) => now[k] !== recorded[k]);
}

/**
 * Create's cheap check of a template folder (one read, one stat; no hashing): undefined when it may be bound, else
 * the reason it is stale and must be removed (another manifest version, or the memory file changed). A missing
 * memory file is not stale: the launcher's verifyTemplate reports it (a partial folder is never renamed into place).
 */
export async function staleTemplate(dir: string): Promise<string | undefined> {
  const text = await readFile(join(dir, 'manifest.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = templateManifestSchema.safeParse(safeJson(text));
  if (!parsed.success) return 'the template manifest is not valid (an older version, or changed)';
  const changed = await memoryFileChanges(templateFiles(dir).memory, parsed.data.memoryFile);
  return changed?.length ? TAMPERED_REASON : undefined;
}

/**
 * Is the template in `dir` complete, the one for `key`, and unchanged since it was written? Checks the manifest
 * (present, parsable, this key), both files (present, regular, the recorded sizes) and the state's sha256 (small:
 * the RAM file is checked by size only, hashing it would cost what the template saves). Never throws.
 */
export async function verifyTemplate(dir: string, key: string): Promise<VerifyResult> {
  const text = await readFile(join(dir, 'manifest.json'), 'utf8').catch((err: NodeJS.ErrnoException) => err);
  if (text instanceof Error) {
    return { ok: false, reason: text.code === 'ENOENT' ? `no template manifest in ${dir} (missing or partial template)` : `cannot read ${join(dir, 'manifest.json')}: ${text.message}` };
  }
  let manifest: TemplateManifest;
  try {
    manifest = templateManifestSchema.parse(JSON.parse(text));
  } catch {
    return { ok: false, reason: `the template manifest ${join(dir, 'manifest.json')} is not valid` };
  }
  if (manifest.key !== key) return { ok: false, reason: `the template is for key ${manifest.key.slice(0, 12)}, this VM needs ${key.slice(0, 12)}` };
  const files = templateFiles(dir);
  const state = await stat(files.state).catch(() => undefined);
  const memory = await stat(files.memory).catch(() => undefined);
  if (!state?.isFile()) return { ok: false, reason: 'the template has no state file (partial template)' };
  if (!memory?.isFile()) return { ok: false, reason: 'the template has no memory file (partial template)' };
  if (state.size !== manifest.stateBytes) return { ok: false, reason: `the template's state file has ${state.size} bytes, the manifest says ${manifest.stateBytes} (truncated or changed)` };
  if (memory.size !== manifest.ramBytes) return { ok: false, reason: `the template's memory file has ${memory.size} bytes, the manifest says ${manifest.ramBytes} (truncated or changed)` };
  // written in place (a QEMU its guest took over: the file is bound read-write) or replaced since the build
  const changed = await memoryFileChanges(files.memory, manifest.memoryFile);
  if (changed === undefined || changed.length) return { ok: false, reason: TAMPERED_REASON };
  const sha = await sha256File(files.state).catch(() => undefined);
  if (sha !== manifest.stateSha256) return { ok: false, reason: "the template's state file does not match its sha256 (corrupt)" };
  return { ok: true, files, manifest };
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type LockResult = { ok: true; release: () => Promise<void> } | { ok: false; holder: number };

/**
 * One builder per key: `templates/.lock-<key>` made with O_EXCL, holding the builder's pid. A lock whose pid is gone
 * (a builder killed mid-way) is taken over, and its tmp folder removed.
 */
export async function lockTemplate(cacheDir: string, key: string, pid = process.pid): Promise<LockResult> {
  await ensureTemplatesDir(cacheDir);
  const path = lockPath(cacheDir, key);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o644);
      await fh.writeFile(`${pid}\n`);
      await fh.close();
      return {
        ok: true,
        release: async () => {
          // only our own lock: a taker-over must not lose its lock to our late release
          const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
          if (holder === pid) await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    // a lock being written right now (empty for an instant) counts as held
    if (holder > 0 && pidAlive(holder)) return { ok: false, holder };
    if (!holder) {
      const st = await stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs < 5_000) return { ok: false, holder: 0 };
    }
    await rm(tmpDirFor(cacheDir, key, holder), { recursive: true, force: true }).catch(() => undefined);
    await rm(path, { force: true });
  }
  return { ok: false, holder: 0 };
}

async function ensureTemplatesDir(cacheDir: string): Promise<void> {
  // 0711 as the cache folder: a launcher in a user namespace reaches its template through it, nobody lists it
  await mkdir(cacheDir, { recursive: true, mode: 0o711 });
  await mkdir(templatesDir(cacheDir), { recursive: true, mode: 0o711 });
  await chmod(templatesDir(cacheDir), 0o711);
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, fsc.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface WriteTemplateSteps {
  /** boot the template VM and save it into `files` (template/boot-and-save.ts bootAndSave) */
  build(files: TemplateFiles, dir: string): Promise<void>;
  /** restore it once (boot-and-save.ts checkRestore): throws when the saved VM does not come back */
  verify(files: TemplateFiles): Promise<void>;
}

export type WriteResult = { built: true; dir: string; manifest: TemplateManifest } | { built: false; dir: string; reason: string };

/**
 * Make the template for `key` unless it exists: under the key's lock, in a tmp folder, fsynced, verified, manifest
 * last, renamed into place. Any failure removes the tmp folder and the lock and throws; nothing partial is ever at
 * `templates/<key>`. `built: false` when it already exists or another live builder holds the lock.
 */
export async function writeTemplate(cacheDir: string, key: string, shape: Record<string, unknown>, steps: WriteTemplateSteps, pid = process.pid): Promise<WriteResult> {
  if (!KEY_PATTERN.test(key)) throw new Error(`not a template key: ${key}`);
  const dir = templateDir(cacheDir, key);
  if ((await verifyTemplate(dir, key)).ok) return { built: false, dir, reason: 'the template exists' };
  const lock = await lockTemplate(cacheDir, key, pid);
  if (!lock.ok) return { built: false, dir, reason: `another builder (pid ${lock.holder || 'unknown'}) is making it` };
  const tmp = tmpDirFor(cacheDir, key, pid);
  try {
    // a builder that finished while we waited for the lock
    if ((await verifyTemplate(dir, key)).ok) return { built: false, dir, reason: 'the template exists' };
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { mode: 0o755 });
    const files = templateFiles(tmp);
    await steps.build(files, tmp);
    for (const f of [files.state, files.memory]) {
      await chmod(f, 0o644);
      await fsyncPath(f);
    }
    await steps.verify(files);
    const state = await stat(files.state);
    const memory = await stat(files.memory);
    const manifest: TemplateManifest = {
      version: TEMPLATE_MANIFEST_VERSION,
      key,
      shape,
      stateSha256: await sha256File(files.state),
      stateBytes: state.size,
      ramBytes: memory.size,
      // after the chmod and fsync above: nothing changes the file from here on (the rename moves the folder only)
      memoryFile: await fileIdentity(files.memory),
      created: new Date().toISOString(),
    };
    await writeFile(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o644 });
    await fsyncPath(join(tmp, 'manifest.json'));
    await fsyncPath(tmp);
    // a stale complete-looking folder (say, of an older manifest version) goes away first; rename never merges
    await removeFolder(dir, pid);
    await rename(tmp, dir);
    await fsyncPath(templatesDir(cacheDir));
    return { built: true, dir, manifest };
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    await lock.release();
  }
}

/** Rename away, then unlink: readers see the template or nothing, and running VMs keep their mapping. */
async function removeFolder(dir: string, pid: number): Promise<boolean> {
  const gone = `${dir.replace(/\/[^/]*$/, '')}/.rm-${dir.replace(/^.*\//, '')}-${pid}-${Date.now()}`;
  try {
    await rename(dir, gone);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  await rm(gone, { recursive: true, force: true });
  return true;
}

/** `runcvm template rm KEY`: false when there was no such template. Running VMs keep their private mapping. */
export async function removeTemplate(cacheDir: string, key: string): Promise<boolean> {
  if (!KEY_PATTERN.test(key)) return false;
  return removeFolder(templateDir(cacheDir, key), process.pid);
}

/** Removes the template folder `dir` (a key-named folder under a templates folder), as `rm` does. */
export async function removeTemplateDir(dir: string): Promise<boolean> {
  if (!KEY_PATTERN.test(dir.replace(/^.*\//, '')) || !dir.replace(/\/[^/]*$/, '').endsWith(`/${TEMPLATES_FOLDER}`)) throw new Error(`not a template folder: ${dir}`);
  return removeFolder(dir, process.pid);
}

/** Mark a template as just used (the cache bound's clock, as a base disk hit does). */
export async function touchTemplate(dir: string): Promise<void> {
  const now = new Date();
  await utimes(dir, now, now).catch(() => undefined);
}

export interface TemplateEntry {
  key: string;
  dir: string;
  /** bytes the template takes on disk (allocated: the RAM file is sparse) */
  bytes: number;
  /** last use (the folder's mtime: create touches it when it binds the template) */
  usedMs: number;
  manifest?: TemplateManifest;
  /** why it is not usable, when it is not */
  problem?: string;
}

async function allocatedBytes(dir: string): Promise<number> {
  let n = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st?.isFile()) n += st.blocks * 512;
  }
  return n;
}

/** The templates in the store (complete folders; tmp, lock and removal names are skipped). */
export async function listTemplates(cacheDir: string): Promise<TemplateEntry[]> {
  const root = templatesDir(cacheDir);
  const out: TemplateEntry[] = [];
  for (const name of (await readdir(root).catch(() => [] as string[])).sort()) {
    if (!KEY_PATTERN.test(name)) continue;
    const dir = join(root, name);
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const text = await readFile(join(dir, 'manifest.json'), 'utf8').catch(() => undefined);
    const parsed = text ? templateManifestSchema.safeParse(safeJson(text)) : undefined;
    out.push({
      key: name,
      dir,
      bytes: await allocatedBytes(dir),
      usedMs: st.mtimeMs,
      ...(parsed?.success ? { manifest: parsed.data } : { problem: text ? 'manifest not valid' : 'no manifest (partial)' }),
    });
  }
  return out;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * What create needs of the store, cheaply: keys with a manifest, keys a live builder holds the lock of, and keys whose
 * template is stale (staleTemplate: create removes it and starts a rebuild).
 */
export async function storeState(cacheDir: string): Promise<{ ready: string[]; building: string[]; stale: { key: string; reason: string }[] }> {
  const root = templatesDir(cacheDir);
  const ready: string[] = [];
  const building: string[] = [];
  const stale: { key: string; reason: string }[] = [];
  // each entry looked at concurrently (create waits for this), the lists in the folder's order
  const seen = await Promise.all((await readdir(root).catch(() => [] as string[])).map(async (name) => {
    if (KEY_PATTERN.test(name)) {
      if (!(await stat(join(root, name, 'manifest.json')).then((s) => s.isFile(), () => false))) return undefined;
      const reason = await staleTemplate(join(root, name));
      return reason ? { stale: { key: name, reason } } : { ready: name };
    } else if (name.startsWith('.lock-') && KEY_PATTERN.test(name.slice(6))) {
      const holder = Number((await readFile(join(root, name), 'utf8').catch(() => '')).trim());
      if (pidAlive(holder)) return { building: name.slice(6) };
    }
    return undefined;
  }));
  for (const e of seen) {
    if (e?.ready) ready.push(e.ready);
    if (e?.stale) stale.push(e.stale);
    if (e?.building) building.push(e.building);
  }
  return { ready, building, stale };
}
