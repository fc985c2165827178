/**
 * The filesystem the NFS procedures work on (procs/*.ts), as go-nfs puts a billy.Filesystem behind its handler: the
 * procedures decide what NFS means (permissions, weak cache consistency data, status codes); an NfsFs does the
 * effects and keeps every object inside its export. host-fs.ts is the implementation over the host's folders.
 *
 * An NfsFs is one request's view (a session): objects it returns hold descriptors that the session closes when
 * the request is answered, so a procedure never keeps an object beyond its call.
 */
import type { Fattr } from './proto.js';

/** A file, folder or symlink of an export, as resolved for this request. */
export interface FsObject {
  /** the NFS file handle (export id, device, inode) */
  readonly handle: Buffer;
  /** the attributes when it was resolved */
  readonly attr: Fattr;
  readonly exportId: number;
  /** its path inside the export ('' for the export's root): for checks such as "not into itself" */
  readonly rel: string;
}

export interface ExportInfo {
  /** the path clients mount */
  path: string;
}

export interface FsStat {
  blocks: bigint;
  bsize: bigint;
  bfree: bigint;
  bavail: bigint;
  files: bigint;
  ffree: bigint;
}

export interface NfsFs {
  exports(): readonly ExportInfo[];
  /** MNT: the folder at `path` (an export or a folder inside one); NOENT outside every export */
  mount(path: string): Promise<FsObject>;
  /** a handle → its object (BADHANDLE: not ours; STALE: gone, or outside its export) */
  resolve(fh: Buffer): Promise<FsObject>;
  /** `name` in `dir` without following a symlink; `..` is the parent (the root's parent is the root) */
  lookup(dir: FsObject, name: string): Promise<FsObject>;
  /** `name` in `dir`, or undefined when there is none */
  child(dir: FsObject, name: string): Promise<FsObject | undefined>;
  /** fresh attributes (undefined when the object is gone) */
  attr(o: FsObject): Promise<Fattr | undefined>;
  readlink(o: FsObject): Promise<Buffer>;
  /** up to count bytes at offset (fewer at the end of the file) */
  read(o: FsObject, offset: bigint, count: number): Promise<Buffer>;
  /** all of data at offset; sync: on stable storage before returning */
  write(o: FsObject, offset: bigint, data: Buffer, sync: boolean): Promise<void>;
  commit(o: FsObject): Promise<void>;
  truncate(o: FsObject, size: bigint): Promise<void>;
  chown(o: FsObject, uid: number, gid: number): Promise<void>;
  /** not for symlinks (their mode does not exist on Linux) */
  chmod(o: FsObject, mode: number): Promise<void>;
  /** seconds since the epoch */
  utimes(o: FsObject, atime: number, mtime: number): Promise<void>;
  /** a new regular file (exclusive) or the existing one at name; created tells which */
  openFile(dir: FsObject, name: string, exclusive: boolean): Promise<{ obj: FsObject; created: boolean }>;
  mkdir(dir: FsObject, name: string): Promise<FsObject>;
  symlink(dir: FsObject, name: string, target: string): Promise<FsObject>;
  /** unlink (a non-directory) or rmdir */
  remove(dir: FsObject, name: string, isDir: boolean): Promise<void>;
  rename(fromDir: FsObject, fromName: string, toDir: FsObject, toName: string): Promise<void>;
  link(o: FsObject, dir: FsObject, name: string): Promise<void>;
  readdir(dir: FsObject): Promise<string[]>;
  statfs(o: FsObject): Promise<FsStat>;
}
