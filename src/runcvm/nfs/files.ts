/**
 * Open file descriptors reused by READ, WRITE and COMMIT (a client sends one call per 1 MiB: opening the file for
 * each would cost an open and a close per call). Keyed by (device, inode); idle ones are closed after IDLE_MS, and
 * at most MAX_OPEN are kept (the least recently used idle one goes first). A descriptor is opened through the
 * object's own checked O_PATH descriptor (containment.ts), so it is always the handle's inode.
 */
import { constants as C } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { keyOf } from './handles.js';
import { NfsError, NfsStat } from './proto.js';

export const IDLE_MS = 5000;
export const MAX_OPEN = 256;

interface OpenFile {
  fd: FileHandle;
  writable: boolean;
  lastUse: number;
  users: number;
}

export class OpenFiles {
  private readonly files = new Map<string, OpenFile>();
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor() {
    this.sweeper = setInterval(() => void this.closeIdle(IDLE_MS), 2000);
    this.sweeper.unref();
  }

  /**
   * Run fn with a descriptor of the object (dev, ino), opened from `path` (the object's magic link) when none is
   * cached. A descriptor of another inode is STALE.
   */
  async with<T>(obj: { dev: bigint; ino: bigint }, path: () => Promise<string>, writable: boolean, fn: (fd: FileHandle) => Promise<T>): Promise<T> {
    const key = keyOf(obj.dev, obj.ino);
    let f = this.files.get(key);
    if (f && writable && !f.writable) {
      if (f.users === 0) await this.drop(key, f);
      f = undefined;
    }
    if (f && f.users === 0 && (await f.fd.stat({ bigint: true }).catch(() => undefined))?.nlink === 0n) {
      // the cached descriptor is of a deleted file whose inode number was reused: never write through it
      await this.drop(key, f);
      f = undefined;
    }
    let temporary = false;
    if (!f) {
      const fd = await open(await path(), writable ? C.O_RDWR : C.O_RDONLY);
      const st = await fd.stat({ bigint: true });
      if (st.ino !== obj.ino || st.dev !== obj.dev) {
        await fd.close();
        throw new NfsError(NfsStat.STALE);
      }
      f = { fd, writable, lastUse: Date.now(), users: 0 };
      if (this.files.has(key)) temporary = true;
      else {
        this.files.set(key, f);
        if (this.files.size > MAX_OPEN) await this.closeOldestIdle();
      }
    }
    f.users++;
    f.lastUse = Date.now();
    try {
      return await fn(f.fd);
    } finally {
      f.users--;
      f.lastUse = Date.now();
      if (temporary) await f.fd.close().catch(() => undefined);
    }
  }

  /** Drop the cached descriptor of an object that was removed or replaced. */
  async evict(dev: bigint, ino: bigint): Promise<void> {
    const key = keyOf(dev, ino);
    const f = this.files.get(key);
    if (f && f.users === 0) await this.drop(key, f);
  }

  /** Close descriptors idle for longer than idleMs (every one with a negative idleMs). */
  async closeIdle(idleMs: number): Promise<void> {
    const now = Date.now();
    for (const [key, f] of this.files) {
      if (f.users === 0 && (idleMs < 0 || now - f.lastUse > idleMs)) await this.drop(key, f);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.closeIdle(-1);
  }

  private async closeOldestIdle(): Promise<void> {
    let oldest: [string, OpenFile] | undefined;
    for (const e of this.files) if (e[1].users === 0 && (!oldest || e[1].lastUse < oldest[1].lastUse)) oldest = e;
    if (oldest) await this.drop(...oldest);
  }

  private async drop(key: string, f: OpenFile): Promise<void> {
    if (this.files.get(key) === f) this.files.delete(key);
    await f.fd.close().catch(() => undefined);
  }
}
