/**
 * The (device, inode) → path map behind file handles. A handle carries only the export id, device and inode, so it
 * stays valid across server restarts as long as the object exists; this table finds the path again:
 *   1. in memory (every handle the server hands out is remembered first),
 *   2. in the state file (an append-only JSON-lines log, replayed and compacted at start-up; appended before the
 *      reply that carries a new handle is sent, so a client never holds a handle the log does not know),
 *   3. (export.ts) by a bounded, rate-limited search of the export (a lost state file, or a rename on the host).
 */
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export const keyOf = (dev: bigint, ino: bigint): string => `${dev}:${ino}`;

/** Join a relative path inside the export ('' is the root). */
export const joinRel = (rel: string, name: string): string => (rel === '' ? name : `${rel}/${name}`);
export const parentRel = (rel: string): string => {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
};

export type HandleLogLine = [dev: string, ino: string, rel: string | null];

/** Replay a log (later lines win; null forgets). Pure; malformed lines are skipped. */
export function replayHandleLog(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (!Array.isArray(v) || v.length !== 3) continue;
      const [dev, ino, rel] = v as unknown[];
      if (typeof dev !== 'string' || typeof ino !== 'string' || !/^\d+$/.test(dev) || !/^\d+$/.test(ino)) continue;
      const key = `${dev}:${ino}`;
      if (rel === null) map.delete(key);
      else if (typeof rel === 'string' && !rel.startsWith('/') && !rel.split('/').includes('..')) map.set(key, rel);
    } catch {
      /* a torn last line after a crash */
    }
  }
  return map;
}

/** Rewrite every path at or under `from` to sit under `to` (a rename of a directory moves its whole subtree). */
export function renameInMap(map: Map<string, string>, from: string, to: string): [string, string][] {
  const changed: [string, string][] = [];
  for (const [key, rel] of map) {
    if (rel === from) changed.push([key, to]);
    else if (rel.startsWith(`${from}/`)) changed.push([key, to + rel.slice(from.length)]);
  }
  for (const [key, rel] of changed) map.set(key, rel);
  return changed;
}

export class HandleTable {
  private readonly map = new Map<string, string>();
  private pending: HandleLogLine[] = [];

  constructor(
    /** state log file, or undefined to keep the map in memory only */
    readonly stateFile: string | undefined,
  ) {}

  /** Load and compact the log. */
  async load(): Promise<void> {
    if (!this.stateFile) return;
    await mkdir(dirname(this.stateFile), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await readFile(this.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const [k, v] of replayHandleLog(text)) this.map.set(k, v);
    const lines = [...this.map].map(([k, rel]) => {
      const [dev, ino] = k.split(':');
      return JSON.stringify([dev, ino, rel]);
    });
    const temp = `${this.stateFile}.${process.pid}.tmp`;
    await writeFile(temp, lines.length ? `${lines.join('\n')}\n` : '', { mode: 0o600 });
    await rename(temp, this.stateFile);
  }

  get size(): number {
    return this.map.size;
  }

  lookup(dev: bigint, ino: bigint): string | undefined {
    return this.map.get(keyOf(dev, ino));
  }

  remember(dev: bigint, ino: bigint, rel: string): void {
    const key = keyOf(dev, ino);
    if (this.map.get(key) === rel) return;
    this.map.set(key, rel);
    this.log([String(dev), String(ino), rel]);
  }

  forget(dev: bigint, ino: bigint): void {
    if (this.map.delete(keyOf(dev, ino))) this.log([String(dev), String(ino), null]);
  }

  renamed(from: string, to: string): void {
    for (const [key, rel] of renameInMap(this.map, from, to)) {
      const [dev, ino] = key.split(':') as [string, string];
      this.log([dev, ino, rel]);
    }
  }

  /** a change for the state file (none kept without one: the in-memory map is all there is) */
  private log(line: HandleLogLine): void {
    if (this.stateFile) this.pending.push(line);
  }

  /** Persist what changed since the last flush (call before sending a reply that carries new handles). */
  async flush(): Promise<void> {
    if (!this.stateFile || this.pending.length === 0) return;
    const lines = this.pending.map((l) => JSON.stringify(l)).join('\n') + '\n';
    this.pending = [];
    await appendFile(this.stateFile, lines, { mode: 0o600 });
  }
}
