/**
 * The digest of what a build can see of its context: every file, folder and symlink not excluded by the ignore
 * file, with its type, permission bits, owner, size and content (a symlink: its target). Modification times are
 * left out, as Buildah's layer cache leaves them out (a `touch` keeps every cached layer; a `chmod` does not).
 *
 * Content hashes are reused from the previous run when a file's device, inode, size, mtime and ctime are all
 * unchanged (ctime moves on every write and every chmod, and cannot be set by a user), except for files modified
 * within two seconds before that run recorded them, whose timestamps cannot tell a later same-size write apart
 * (git's "racy" rule).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { IgnoreMatcher } from './ignore.js';

export interface StatEntry {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  hash: string;
}

export interface StatCache {
  /** when the cache was written (ns since the epoch, as a string) */
  writtenNs: string;
  files: Record<string, StatEntry>;
}

export interface ContextDigest {
  digest: string;
  files: number;
  bytes: number;
  /** how many content hashes came from the stat cache */
  reused: number;
  cache: StatCache;
}

const RACY_NS = 2_000_000_000n;
const SMALL_FILE = 256 * 1024;
const PARALLEL = 16;

async function hashFile(path: string, size: bigint): Promise<string> {
  const h = createHash('sha256');
  if (size <= BigInt(SMALL_FILE)) {
    const fh = await open(path, 'r');
    try {
      h.update(await fh.readFile());
    } finally {
      await fh.close();
    }
  } else {
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

/** Runs `jobs` with at most `limit` at once. */
async function pool<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array<T>(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return out;
}

export async function hashContext(dir: string, ignore: IgnoreMatcher, previous?: StatCache): Promise<ContextDigest> {
  const startedNs = BigInt(Date.now()) * 1_000_000n;
  const trustedBefore = previous ? BigInt(previous.writtenNs) - RACY_NS : 0n;
  const lines: string[] = [];
  const files: Record<string, StatEntry> = {};
  const toHash: { path: string; full: string; size: bigint; key: Omit<StatEntry, 'hash'>; meta: string }[] = [];
  let bytes = 0;
  let reused = 0;
  // folders one after the other (bounded open files), the entries of each at once
  const queue = [''];
  while (queue.length) {
    const rel = queue.shift()!;
    const entries = await readdir(rel ? join(dir, rel) : dir, { withFileTypes: true });
    const paths = entries.map((e) => (rel ? `${rel}/${e.name}` : e.name)).filter((p) => !ignore.excluded(p));
    await pool(paths.map((path) => async () => {
      const full = join(dir, path);
      const st = await lstat(full, { bigint: true });
      const meta = `${(st.mode & 0o7777n).toString(8)}\t${st.uid}\t${st.gid}`;
      if (st.isDirectory()) {
        lines.push(`${JSON.stringify(path)}\td\t${meta}`);
        queue.push(path);
      } else if (st.isSymbolicLink()) {
        lines.push(`${JSON.stringify(path)}\tl\t${meta}\t${JSON.stringify(await readlink(full))}`);
      } else if (st.isFile()) {
        const key = { dev: st.dev.toString(), ino: st.ino.toString(), size: st.size.toString(), mtimeNs: st.mtimeNs.toString(), ctimeNs: st.ctimeNs.toString() };
        bytes += Number(st.size);
        const old = previous?.files[path];
        if (old && old.dev === key.dev && old.ino === key.ino && old.size === key.size && old.mtimeNs === key.mtimeNs && old.ctimeNs === key.ctimeNs && st.mtimeNs < trustedBefore) {
          files[path] = old;
          reused++;
          lines.push(`${JSON.stringify(path)}\tf\t${meta}\t${st.size}\t${old.hash}`);
        } else toHash.push({ path, full, size: st.size, key, meta });
      } else {
        // sockets, fifos, devices: their type and metadata (Buildah copies none of them, but a change is a change)
        lines.push(`${JSON.stringify(path)}\to${(st.mode & 0o170000n).toString(8)}\t${meta}`);
      }
    }), PARALLEL);
  }
  await pool(toHash.map((f) => async () => {
    const hash = await hashFile(f.full, f.size);
    files[f.path] = { ...f.key, hash };
    lines.push(`${JSON.stringify(f.path)}\tf\t${f.meta}\t${f.size}\t${hash}`);
  }), PARALLEL);
  lines.sort();
  const digest = createHash('sha256').update(lines.join('\n')).digest('hex');
  return { digest, files: Object.keys(files).length, bytes, reused, cache: { writtenNs: startedNs.toString(), files } };
}
