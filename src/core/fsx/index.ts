/**
 * Filesystem effects shared by both tools: atomic private writes, temp dirs that are always removed, and a stack
 * of closers that runs on success and on failure alike (so a failed step leaves no temp files, mounts or processes).
 */
import { mkdtemp, rename, rm, writeFile, open, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Write a file atomically (temp + rename) with mode 0600 by default: no reader ever sees a partial or open file. */
export async function atomicWrite(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export type Closer = () => unknown | Promise<unknown>;

/** LIFO stack of undo steps; `close()` runs them all, collecting (not stopping on) errors. */
export class CloserStack implements AsyncDisposable {
  private readonly closers: { name: string; fn: Closer }[] = [];

  push(name: string, fn: Closer): void {
    this.closers.push({ name, fn });
  }

  get size(): number {
    return this.closers.length;
  }

  async close(): Promise<Error[]> {
    const errors: Error[] = [];
    while (this.closers.length) {
      const { name, fn } = this.closers.pop()!;
      try {
        await fn();
      } catch (err) {
        errors.push(new Error(`cleanup "${name}" failed: ${(err as Error).message}`));
      }
    }
    return errors;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A temp dir (mode 0700) registered on the stack for removal. */
export async function tempDir(prefix: string, closers?: CloserStack, base = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(base, `${prefix}-`));
  closers?.push(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function writePrivate(path: string, data: string): Promise<void> {
  await writeFile(path, data, { mode: 0o600 });
}

/** A file's text, or undefined when it does not exist (any other error is thrown). */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
