/**
 * One exported folder: its root descriptor (held open for the server's life, so the export is the folder that was
 * checked at start, whatever happens to its path later), its handle map, and the bounded search for handles the
 * map does not know.
 *
 * A handle missing from the map (a restart without the state file, or an object renamed on the host side) is found
 * by walking the export once and indexing every (device, inode) seen (at most SEARCH_LIMIT entries, depth
 * SEARCH_MAX_DEPTH, symlinks never followed). The index answers every miss for SEARCH_INDEX_TTL_MS, concurrent
 * misses share one walk, and a handle absent from a fresh index is STALE at once: a client sending forged handles
 * costs the server at most one walk per SEARCH_INDEX_TTL_MS, however many it sends.
 */
import { constants as C } from 'node:fs';
import { lstat, open, readdir, realpath, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { at, fdPath, O_PATH } from './containment.js';
import { HandleTable, joinRel, keyOf } from './handles.js';
import { exportIdOf } from './proto.js';

export const SEARCH_LIMIT = 200_000;
export const SEARCH_MAX_DEPTH = 128;
export const SEARCH_INDEX_TTL_MS = 30_000;

export interface SearchStats {
  /** walks of the export done to find unknown handles */
  walks: number;
  /** entries those walks looked at */
  entries: number;
}

export class NfsExport {
  readonly stats: SearchStats = { walks: 0, entries: 0 };
  private index: { map: Map<string, string>; at: number } | undefined;
  private indexing: Promise<Map<string, string>> | undefined;

  private constructor(
    /** the path clients mount (absolute, normalised) */
    readonly path: string,
    /** its real path on the host when the server started */
    readonly real: string,
    readonly id: number,
    readonly fsid: bigint,
    readonly rootDev: bigint,
    readonly rootIno: bigint,
    /** O_PATH descriptor of the root folder */
    readonly root: FileHandle,
    readonly table: HandleTable,
    private readonly now: () => number,
  ) {}

  /** Open the export (it must be an existing folder); stateDir undefined keeps the handle map in memory. */
  static async open(path: string, stateDir: string | undefined, now: () => number = Date.now): Promise<NfsExport> {
    const real = await realpath(path);
    const root = await open(real, O_PATH | C.O_DIRECTORY);
    try {
      const st = await root.stat({ bigint: true });
      const id = exportIdOf(path);
      const stateFile = stateDir ? join(stateDir, `handles-${id.toString(16).padStart(8, '0')}.jsonl`) : undefined;
      const table = new HandleTable(stateFile);
      await table.load();
      return new NfsExport(path, real, id, st.dev, st.dev, st.ino, root, table, now);
    } catch (err) {
      await root.close().catch(() => undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.table.flush().catch(() => undefined);
    await this.root.close().catch(() => undefined);
  }

  /** The path of (dev, ino) by the index (built or rebuilt when missing or older than the TTL), or undefined. */
  async search(dev: bigint, ino: bigint): Promise<string | undefined> {
    const fresh = this.index && this.now() - this.index.at < SEARCH_INDEX_TTL_MS ? this.index.map : undefined;
    const map = fresh ?? (await (this.indexing ??= this.buildIndex().finally(() => (this.indexing = undefined))));
    return map.get(keyOf(dev, ino));
  }

  /** Depth-first over descriptors (one open per level of depth), never following a symlink. */
  private async buildIndex(): Promise<Map<string, string>> {
    const map = new Map<string, string>();
    const stack: { fd: FileHandle; rel: string; names: string[]; next: number }[] = [];
    this.stats.walks++;
    let seen = 0;
    try {
      stack.push({ fd: this.root, rel: '', names: await readdir(fdPath(this.root)).catch(() => []), next: 0 });
      while (stack.length > 0 && seen < SEARCH_LIMIT) {
        const top = stack[stack.length - 1]!;
        if (top.next >= top.names.length) {
          stack.pop();
          if (top.fd !== this.root) await top.fd.close().catch(() => undefined);
          continue;
        }
        const name = top.names[top.next++]!;
        seen++;
        const st = await lstat(at(top.fd, name), { bigint: true }).catch(() => undefined);
        if (!st) continue;
        const rel = joinRel(top.rel, name);
        map.set(keyOf(st.dev, st.ino), rel);
        if (!st.isDirectory() || stack.length >= SEARCH_MAX_DEPTH) continue;
        const fd = await open(at(top.fd, name), O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW).catch(() => undefined);
        if (!fd) continue;
        const names = await readdir(fdPath(fd)).catch(() => undefined);
        if (names) stack.push({ fd, rel, names, next: 0 });
        else await fd.close().catch(() => undefined);
      }
    } finally {
      for (const s of stack) if (s.fd !== this.root) await s.fd.close().catch(() => undefined);
      this.stats.entries += seen;
    }
    this.index = { map, at: this.now() };
    return map;
  }
}
