/**
 * Where build keys are kept: a folder beside the image storage they refer to (`--cache-dir=/cache` →
 * `/cache/kimia-build-keys`; else next to `$HOME/.local/share/containers/storage`), so a record is read only with
 * the storage that holds its image. In it: `salt` (32 random bytes, 0600, made on first use), one record per key
 * (the image ID, the manifest digests it was pushed as, when it was built; at most MAX_RECORDS, oldest dropped), and
 * the stat cache of each context folder (at most MAX_STAT_CACHES), and `engines`: the version of each Buildah binary
 * seen (buildah/engine.ts), so that an unchanged build runs no `buildah --version`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { StatCache } from './context.js';

export const MAX_RECORDS = 100;
export const MAX_STAT_CACHES = 20;

export interface BuildRecord {
  v: 1;
  key: string;
  imageId: string;
  builtAt: string;
  /** destination → manifest digest it was pushed as */
  pushed: Record<string, string>;
}

export function keyDir(storageRoot: string): string {
  return join(dirname(storageRoot.replace(/\/+$/, '')), 'kimia-build-keys');
}

/** Buildah's version per binary identity (no `.json` suffix: the stat-cache pruning leaves it alone). */
export function knownEnginesFile(storageRoot: string): string {
  return join(keyDir(storageRoot), 'engines');
}

async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

export async function loadSalt(dir: string): Promise<string> {
  await mkdir(join(dir, 'records'), { recursive: true, mode: 0o700 });
  const path = join(dir, 'salt');
  const existing = await readFile(path, 'utf8').catch(() => undefined);
  if (existing && /^[0-9a-f]{64}$/.test(existing.trim())) return existing.trim();
  const salt = randomBytes(32).toString('hex');
  try {
    await writeFile(path, salt, { mode: 0o600, flag: 'wx' });
    return salt;
  } catch {
    // another build made it at the same moment
    return (await readFile(path, 'utf8')).trim();
  }
}

export async function readRecord(dir: string, key: string): Promise<BuildRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(join(dir, 'records', `${key}.json`), 'utf8')) as BuildRecord;
    return r.v === 1 && r.key === key && /^[0-9a-f]{64}$/.test(r.imageId) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** `except`: a name neither counted nor removed (the one about to be written: pruning to keep - 1 leaves it room) */
async function pruneOldest(folder: string, keep: number, suffix: string, except?: string): Promise<void> {
  const names = (await readdir(folder).catch(() => [] as string[])).filter((n) => n.endsWith(suffix) && n !== except);
  if (names.length <= keep) return;
  const aged = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(folder, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
  aged.sort((a, b) => a.t - b.t);
  await Promise.all(aged.slice(0, aged.length - keep).map((a) => unlink(join(folder, a.n)).catch(() => undefined)));
}

/**
 * The record, and (`local`: its local key, key.ts) an empty marker `local/<local key>` that says a record with this
 * local key may exist (at most MAX_RECORDS markers, like the records).
 */
export async function writeRecord(dir: string, record: BuildRecord, local?: string, opts: { prepared?: boolean } = {}): Promise<void> {
  if (!opts.prepared) await prepareRecordDir(dir, record.key, local);
  await Promise.all([
    writeAtomic(join(dir, 'records', `${record.key}.json`), JSON.stringify(record) + '\n'),
    // rewritten, not only created: its mtime says how recently it was used, for the pruning
    local ? writeFile(join(dir, 'local', local), '', { mode: 0o600 }) : undefined,
  ]);
}

/**
 * Room for the record of `key` (and the marker of `local`): the folders exist and hold at most MAX_RECORDS - 1
 * others. Independent of the build's result, so a build does it while Buildah still runs (writeRecord `prepared`).
 */
export async function prepareRecordDir(dir: string, key: string, local?: string): Promise<void> {
  await Promise.all([
    pruneOldest(join(dir, 'records'), MAX_RECORDS - 1, '.json', `${key}.json`),
    local ? mkdir(join(dir, 'local'), { recursive: true, mode: 0o700 }).then(() => pruneOldest(join(dir, 'local'), MAX_RECORDS - 1, '', local)) : undefined,
  ]);
}

/** Can a record with this local key exist? (false: certainly none; true: maybe, the full key decides) */
export async function localKeyKnown(dir: string, local: string): Promise<boolean> {
  return stat(join(dir, 'local', local)).then(() => true, () => false);
}

function statCachePath(dir: string, contextId: string): string {
  return join(dir, `stat-${createHash('sha256').update(contextId).digest('hex').slice(0, 16)}.json`);
}

export async function readStatCache(dir: string, contextId: string): Promise<StatCache | undefined> {
  try {
    return JSON.parse(await readFile(statCachePath(dir, contextId), 'utf8')) as StatCache;
  } catch {
    return undefined;
  }
}

export async function writeStatCache(dir: string, contextId: string, cache: StatCache): Promise<void> {
  await writeAtomic(statCachePath(dir, contextId), JSON.stringify(cache));
  await pruneOldest(dir, MAX_STAT_CACHES, '.json');
}

/** The image's names when it is still in the storage (containers/storage's images.json), else undefined. */
export async function storedImage(storage: { root: string; driver: string }, imageId: string): Promise<{ names: string[] } | undefined> {
  try {
    const images = JSON.parse(await readFile(join(storage.root, `${storage.driver}-images`, 'images.json'), 'utf8')) as { id: string; names?: string[] }[];
    const image = images.find((i) => i.id === imageId);
    return image ? { names: image.names ?? [] } : undefined;
  } catch {
    return undefined;
  }
}

