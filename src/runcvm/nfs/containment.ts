/**
 * Containment: every path the server touches is one name inside a directory it holds open, so nothing a client
 * does between a check and its use can lead the server outside an export.
 *
 * Node has no openat(2) family, but Linux gives the same through /proc/self/fd: `/proc/self/fd/N/name` resolves N
 * as a "magic link" straight to the directory that descriptor N holds (the inode itself, wherever it is now: no
 * path is looked up again), then `name` inside it. So:
 *   - a directory is reached by opening one component at a time from the export's root descriptor, each with
 *     O_PATH | O_NOFOLLOW (| O_DIRECTORY for the folders on the way): a symlink anywhere on the way fails
 *     (ENOTDIR), it is never followed;
 *   - CREATE/MKDIR/SYMLINK/REMOVE/RENAME/LINK/LOOKUP act on `/proc/self/fd/<dir>/<name>` with calls that do not
 *     follow the last component (open with O_NOFOLLOW|O_EXCL, mkdir, symlink, unlink, rmdir, rename, link, lstat);
 *   - an object itself (chown, chmod, utimes, truncate, read, write) is reached through its own O_PATH descriptor
 *     (`/proc/self/fd/<obj>`), after checking that descriptor's device and inode are the handle's.
 * A client that swaps a folder for a symlink between two requests (or within one) changes which name points where,
 * but the server's descriptor still holds the folder it checked: the race has nothing to win.
 */
import { constants as C, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { NfsError, NfsStat } from './proto.js';

/** open(2)'s O_PATH on Linux (x86-64, arm64); node's fs.constants does not export it */
export const O_PATH = 0o10000000;

/** The magic link of a descriptor: the object it holds. */
export const fdPath = (fd: FileHandle): string => `/proc/self/fd/${fd.fd}`;

/** `name` inside the directory held by `dir` (name: one checked component). */
export function at(dir: FileHandle, name: string): string {
  if (!isComponent(name)) throw new NfsError(NfsStat.INVAL, `"${name}" is not a single name`);
  return `${fdPath(dir)}/${name}`;
}

/** One path component: not empty, not . or .., no slash or NUL. */
export const isComponent = (name: string): boolean => name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');

/** The descriptors one request opened, closed together when it is answered. */
export class Scope {
  private readonly fds: FileHandle[] = [];

  track(fd: FileHandle): FileHandle {
    this.fds.push(fd);
    return fd;
  }

  async close(): Promise<void> {
    for (const fd of this.fds.splice(0).reverse()) await fd.close().catch(() => undefined);
  }
}

/** Open `name` in `dir` as an O_PATH descriptor without following a symlink (a folder when `dir` is set). */
export async function openAt(scope: Scope, dir: FileHandle, name: string, mustBeDir: boolean): Promise<FileHandle> {
  return scope.track(await open(at(dir, name), O_PATH | C.O_NOFOLLOW | (mustBeDir ? C.O_DIRECTORY : 0)));
}

export interface Walked {
  fd: FileHandle;
  st: BigIntStats;
  /** the directory holding it and its name there (undefined / '' for the root itself) */
  parent: FileHandle | undefined;
  name: string;
}

/**
 * `rel` (components joined by /) from the root descriptor, one component at a time, never following a symlink.
 * A symlink or a file on the way is NOTDIR; a missing component NOENT (as the errno error).
 */
export async function walk(scope: Scope, root: FileHandle, rel: string): Promise<Walked> {
  if (rel === '') return { fd: root, st: await root.stat({ bigint: true }), parent: undefined, name: '' };
  const parts = rel.split('/');
  if (!parts.every(isComponent)) throw new NfsError(NfsStat.STALE, `bad path "${rel}" in the handle map`);
  let dir = root;
  for (const part of parts.slice(0, -1)) dir = await openAt(scope, dir, part, true);
  const name = parts[parts.length - 1] as string;
  const fd = await openAt(scope, dir, name, false);
  return { fd, st: await fd.stat({ bigint: true }), parent: dir, name };
}

/** Same device and inode. */
export const sameObject = (a: Pick<BigIntStats, 'dev' | 'ino'>, b: { dev: bigint; ino: bigint }): boolean => a.dev === b.dev && a.ino === b.ino;
