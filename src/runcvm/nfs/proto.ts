/**
 * NFS version 3 (RFC 1813) and MOUNT version 3 wire types, as pure codecs and helpers: attributes, set-attributes,
 * directory-operation arguments, file handles, errno → nfsstat3, the ACCESS computation and READDIR cookies.
 * The server (server.ts) does the filesystem effects and uses these to speak the protocol.
 */
import { createHash } from 'node:crypto';
import { XdrError, XdrReader, XdrWriter } from './xdr.js';

export const NFS_PROGRAM = 100003;
export const NFS_V3 = 3;
export const MOUNT_PROGRAM = 100005;
export const MOUNT_V3 = 3;

export enum NfsProc {
  NULL = 0,
  GETATTR = 1,
  SETATTR = 2,
  LOOKUP = 3,
  ACCESS = 4,
  READLINK = 5,
  READ = 6,
  WRITE = 7,
  CREATE = 8,
  MKDIR = 9,
  SYMLINK = 10,
  MKNOD = 11,
  REMOVE = 12,
  RMDIR = 13,
  RENAME = 14,
  LINK = 15,
  READDIR = 16,
  READDIRPLUS = 17,
  FSSTAT = 18,
  FSINFO = 19,
  PATHCONF = 20,
  COMMIT = 21,
}

export enum MountProc {
  NULL = 0,
  MNT = 1,
  DUMP = 2,
  UMNT = 3,
  UMNTALL = 4,
  EXPORT = 5,
}

export enum NfsStat {
  OK = 0,
  PERM = 1,
  NOENT = 2,
  IO = 5,
  NXIO = 6,
  ACCES = 13,
  EXIST = 17,
  XDEV = 18,
  NODEV = 19,
  NOTDIR = 20,
  ISDIR = 21,
  INVAL = 22,
  FBIG = 27,
  NOSPC = 28,
  ROFS = 30,
  MLINK = 31,
  NAMETOOLONG = 63,
  NOTEMPTY = 66,
  DQUOT = 69,
  STALE = 70,
  REMOTE = 71,
  BADHANDLE = 10001,
  NOT_SYNC = 10002,
  BAD_COOKIE = 10003,
  NOTSUPP = 10004,
  TOOSMALL = 10005,
  SERVERFAULT = 10006,
  BADTYPE = 10007,
  JUKEBOX = 10008,
}

export enum MountStat {
  OK = 0,
  PERM = 1,
  NOENT = 2,
  IO = 5,
  ACCES = 13,
  NOTDIR = 20,
  INVAL = 22,
  NAMETOOLONG = 63,
  NOTSUPP = 10004,
  SERVERFAULT = 10006,
}

export enum FileType {
  REG = 1,
  DIR = 2,
  BLK = 3,
  CHR = 4,
  LNK = 5,
  SOCK = 6,
  FIFO = 7,
}

export enum StableHow {
  UNSTABLE = 0,
  DATA_SYNC = 1,
  FILE_SYNC = 2,
}

export enum CreateMode {
  UNCHECKED = 0,
  GUARDED = 1,
  EXCLUSIVE = 2,
}

export const ACCESS = { READ: 0x01, LOOKUP: 0x02, MODIFY: 0x04, EXTEND: 0x08, DELETE: 0x10, EXECUTE: 0x20 } as const;
export const FSF = { LINK: 0x01, SYMLINK: 0x02, HOMOGENEOUS: 0x08, CANSETTIME: 0x10 } as const;

export const FHSIZE3 = 64;
export const MAX_NAME = 255;
export const MAX_PATH = 1024;

// ---------------------------------------------------------------------------------------------------------------
// Attributes

export interface NfsTime {
  seconds: number;
  nseconds: number;
}

export interface Fattr {
  type: FileType;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: bigint;
  used: bigint;
  rdev: { major: number; minor: number };
  fsid: bigint;
  fileid: bigint;
  atime: NfsTime;
  mtime: NfsTime;
  ctime: NfsTime;
}

/** The fields of node's BigIntStats that attributes are made of. */
export interface StatLike {
  mode: bigint;
  nlink: bigint;
  uid: bigint;
  gid: bigint;
  size: bigint;
  blocks: bigint;
  rdev: bigint;
  dev: bigint;
  ino: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

const S_IFMT = 0o170000;

export function fileTypeOf(mode: number): FileType {
  switch (mode & S_IFMT) {
    case 0o040000:
      return FileType.DIR;
    case 0o120000:
      return FileType.LNK;
    case 0o060000:
      return FileType.BLK;
    case 0o020000:
      return FileType.CHR;
    case 0o140000:
      return FileType.SOCK;
    case 0o010000:
      return FileType.FIFO;
    default:
      return FileType.REG;
  }
}

export function timeFromNs(ns: bigint): NfsTime {
  if (ns < 0n) return { seconds: 0, nseconds: 0 };
  const s = ns / 1_000_000_000n;
  const n = ns - s * 1_000_000_000n;
  // nfstime3 seconds is uint32: clamp times before 1970 / after 2106 rather than wrap
  if (s > 0xffffffffn) return { seconds: 0xffffffff, nseconds: 999_999_999 };
  return { seconds: Number(s), nseconds: Number(n) };
}

/** Linux dev_t → (major, minor). */
export function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn & 0xffffffffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn & 0xffffffffn));
  return { major, minor };
}

export function fattrFromStat(st: StatLike, fsid: bigint): Fattr {
  const mode = Number(st.mode);
  return {
    type: fileTypeOf(mode),
    mode: mode & 0o7777,
    nlink: Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: st.size,
    used: st.blocks * 512n,
    rdev: splitDev(st.rdev),
    fsid,
    fileid: st.ino,
    atime: timeFromNs(st.atimeNs),
    mtime: timeFromNs(st.mtimeNs),
    ctime: timeFromNs(st.ctimeNs),
  };
}

export function writeTime(w: XdrWriter, t: NfsTime): void {
  w.uint(t.seconds).uint(t.nseconds);
}

export function readTime(r: XdrReader): NfsTime {
  return { seconds: r.uint(), nseconds: r.uint() };
}

export function writeFattr(w: XdrWriter, a: Fattr): void {
  w.uint(a.type).uint(a.mode).uint(a.nlink).uint(a.uid).uint(a.gid);
  w.uhyper(a.size).uhyper(a.used).uint(a.rdev.major).uint(a.rdev.minor).uhyper(a.fsid).uhyper(a.fileid);
  writeTime(w, a.atime);
  writeTime(w, a.mtime);
  writeTime(w, a.ctime);
}

export function readFattr(r: XdrReader): Fattr {
  return {
    type: r.uint() as FileType,
    mode: r.uint(),
    nlink: r.uint(),
    uid: r.uint(),
    gid: r.uint(),
    size: r.uhyper(),
    used: r.uhyper(),
    rdev: { major: r.uint(), minor: r.uint() },
    fsid: r.uhyper(),
    fileid: r.uhyper(),
    atime: readTime(r),
    mtime: readTime(r),
    ctime: readTime(r),
  };
}

export function writePostOpAttr(w: XdrWriter, a: Fattr | undefined): void {
  w.optional(a, writeFattr);
}

/** wcc_attr: the pre-operation size and times. */
export interface WccAttr {
  size: bigint;
  mtime: NfsTime;
  ctime: NfsTime;
}

export function wccFrom(a: Fattr | undefined): WccAttr | undefined {
  return a ? { size: a.size, mtime: a.mtime, ctime: a.ctime } : undefined;
}

export function writeWcc(w: XdrWriter, before: WccAttr | undefined, after: Fattr | undefined): void {
  w.optional(before, (x, b) => {
    x.uhyper(b.size);
    writeTime(x, b.mtime);
    writeTime(x, b.ctime);
  });
  writePostOpAttr(w, after);
}

export function writePostOpFh(w: XdrWriter, fh: Buffer | undefined): void {
  w.optional(fh, (x, h) => x.opaque(h));
}

// ---------------------------------------------------------------------------------------------------------------
// Arguments

export type SetTime = { how: 'dont' } | { how: 'server' } | { how: 'client'; time: NfsTime };

export interface Sattr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: bigint;
  atime: SetTime;
  mtime: SetTime;
}

function readSetTime(r: XdrReader): SetTime {
  const how = r.uint();
  if (how === 0) return { how: 'dont' };
  if (how === 1) return { how: 'server' };
  if (how === 2) return { how: 'client', time: readTime(r) };
  throw new XdrError(`time_how ${how} is not 0, 1 or 2`);
}

export function readSattr(r: XdrReader): Sattr {
  const s: Sattr = { atime: { how: 'dont' }, mtime: { how: 'dont' } };
  const mode = r.optional((x) => x.uint());
  const uid = r.optional((x) => x.uint());
  const gid = r.optional((x) => x.uint());
  const size = r.optional((x) => x.uhyper());
  if (mode !== undefined) s.mode = mode & 0o7777;
  if (uid !== undefined) s.uid = uid;
  if (gid !== undefined) s.gid = gid;
  if (size !== undefined) s.size = size;
  s.atime = readSetTime(r);
  s.mtime = readSetTime(r);
  return s;
}

export function writeSattr(w: XdrWriter, s: Partial<Sattr>): void {
  w.optional(s.mode, (x, v) => x.uint(v));
  w.optional(s.uid, (x, v) => x.uint(v));
  w.optional(s.gid, (x, v) => x.uint(v));
  w.optional(s.size, (x, v) => x.uhyper(v));
  for (const t of [s.atime, s.mtime]) {
    if (!t || t.how === 'dont') w.uint(0);
    else if (t.how === 'server') w.uint(1);
    else {
      w.uint(2);
      writeTime(w, t.time);
    }
  }
}

export function readFh(r: XdrReader): Buffer {
  return r.opaque(FHSIZE3);
}

export interface DirOp {
  dir: Buffer;
  name: string;
}

export function readDirOp(r: XdrReader): DirOp {
  const dir = readFh(r);
  const name = r.opaque(MAX_NAME + 1).toString('utf8');
  return { dir, name };
}

/** A name a client may create or remove: not empty, not . or .., no slash or NUL, at most 255 bytes. */
export function checkName(name: string): NfsStat {
  if (Buffer.byteLength(name) > MAX_NAME) return NfsStat.NAMETOOLONG;
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) return NfsStat.INVAL;
  return NfsStat.OK;
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

const ERRNO_TO_NFS: Record<string, NfsStat> = {
  EPERM: NfsStat.PERM,
  ENOENT: NfsStat.NOENT,
  EIO: NfsStat.IO,
  ENXIO: NfsStat.NXIO,
  EACCES: NfsStat.ACCES,
  EEXIST: NfsStat.EXIST,
  EXDEV: NfsStat.XDEV,
  ENODEV: NfsStat.NODEV,
  ENOTDIR: NfsStat.NOTDIR,
  EISDIR: NfsStat.ISDIR,
  EINVAL: NfsStat.INVAL,
  EFBIG: NfsStat.FBIG,
  ENOSPC: NfsStat.NOSPC,
  EROFS: NfsStat.ROFS,
  EMLINK: NfsStat.MLINK,
  ENAMETOOLONG: NfsStat.NAMETOOLONG,
  ENOTEMPTY: NfsStat.NOTEMPTY,
  EDQUOT: NfsStat.DQUOT,
  ESTALE: NfsStat.STALE,
  ELOOP: NfsStat.INVAL,
  EBADF: NfsStat.BADHANDLE,
  ENOTSUP: NfsStat.NOTSUPP,
  EOPNOTSUPP: NfsStat.NOTSUPP,
  EAGAIN: NfsStat.JUKEBOX,
  EBUSY: NfsStat.JUKEBOX,
};

/** Map a thrown Node error to an nfsstat3 (unknown errors are IO). An NfsError carries its status. */
export function statusOf(err: unknown): NfsStat {
  if (err instanceof NfsError) return err.status;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (code ? ERRNO_TO_NFS[code] : undefined) ?? NfsStat.IO;
}

export class NfsError extends Error {
  constructor(
    readonly status: NfsStat,
    message = NfsStat[status] ?? String(status),
  ) {
    super(message);
    this.name = 'NfsError';
  }
}

export function mountStatusOf(status: NfsStat): MountStat {
  switch (status) {
    case NfsStat.OK:
      return MountStat.OK;
    case NfsStat.PERM:
      return MountStat.PERM;
    case NfsStat.NOENT:
    case NfsStat.STALE:
      return MountStat.NOENT;
    case NfsStat.ACCES:
      return MountStat.ACCES;
    case NfsStat.NOTDIR:
      return MountStat.NOTDIR;
    case NfsStat.NAMETOOLONG:
      return MountStat.NAMETOOLONG;
    case NfsStat.INVAL:
      return MountStat.INVAL;
    default:
      return MountStat.IO;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Permissions (AUTH_SYS: uid, gid and supplementary gids; no root squash)

export interface Caller {
  uid: number;
  gid: number;
  gids: readonly number[];
}

export const NOBODY: Caller = { uid: 65534, gid: 65534, gids: [] };

/** The rwx bits (0-7) that apply to the caller for an object with this owner and mode. */
export function permBits(a: Pick<Fattr, 'mode' | 'uid' | 'gid'>, c: Caller): number {
  if (c.uid === a.uid) return (a.mode >> 6) & 7;
  if (c.gid === a.gid || c.gids.includes(a.gid)) return (a.mode >> 3) & 7;
  return a.mode & 7;
}

/** ACCESS3: the subset of `requested` the caller is granted (root gets everything but needs an x bit to execute). */
export function accessFor(a: Pick<Fattr, 'mode' | 'uid' | 'gid' | 'type'>, c: Caller, requested: number): number {
  const isDir = a.type === FileType.DIR;
  let granted = 0;
  if (c.uid === 0) {
    granted = isDir
      ? ACCESS.READ | ACCESS.LOOKUP | ACCESS.MODIFY | ACCESS.EXTEND | ACCESS.DELETE
      : ACCESS.READ | ACCESS.MODIFY | ACCESS.EXTEND | ((a.mode & 0o111) !== 0 ? ACCESS.EXECUTE : 0);
    return granted & requested;
  }
  const bits = permBits(a, c);
  if (bits & 4) granted |= ACCESS.READ;
  if (bits & 2) granted |= ACCESS.MODIFY | ACCESS.EXTEND | (isDir ? ACCESS.DELETE : 0);
  if (bits & 1) granted |= isDir ? ACCESS.LOOKUP : ACCESS.EXECUTE;
  return granted & requested;
}

/** May the caller do `want` (a mask of 4=r, 2=w, 1=x) to this object? Root may do all but execute a non-executable. */
export function mayDo(a: Pick<Fattr, 'mode' | 'uid' | 'gid' | 'type'>, c: Caller, want: number): boolean {
  if (c.uid === 0) return (want & 1) === 0 || a.type === FileType.DIR || (a.mode & 0o111) !== 0;
  return (permBits(a, c) & want) === want;
}

// ---------------------------------------------------------------------------------------------------------------
// File handles: version, export id, device and inode (so a handle survives a server restart)

const FH_VERSION = 1;
export const FH_LENGTH = 24;

export interface HandleKey {
  exportId: number;
  dev: bigint;
  ino: bigint;
}

export function encodeHandle(k: HandleKey): Buffer {
  const b = Buffer.alloc(FH_LENGTH);
  b.writeUInt8(FH_VERSION, 0);
  b.writeUInt32BE(k.exportId >>> 0, 4);
  b.writeBigUInt64BE(k.dev, 8);
  b.writeBigUInt64BE(k.ino, 16);
  return b;
}

export function decodeHandle(fh: Buffer): HandleKey | undefined {
  if (fh.length !== FH_LENGTH || fh.readUInt8(0) !== FH_VERSION) return undefined;
  return { exportId: fh.readUInt32BE(4), dev: fh.readBigUInt64BE(8), ino: fh.readBigUInt64BE(16) };
}

/** A stable 32-bit id for an export path (so handles of one export are refused by another). */
export function exportIdOf(path: string): number {
  return createHash('sha256').update(path).digest().readUInt32BE(0);
}

// ---------------------------------------------------------------------------------------------------------------
// READDIR cookies: stateless and stable across restarts and concurrent changes. '.' is 1, '..' is 2, every other
// entry gets a 62-bit hash of its name (+3); entries are served in cookie order and a resume returns the entries
// whose cookie is greater than the one given, so insertions and removals never repeat or skip a surviving entry.

export function cookieOf(name: string): bigint {
  if (name === '.') return 1n;
  if (name === '..') return 2n;
  const h = createHash('sha1').update(name).digest().readBigUInt64BE(0) & 0x3fffffffffffffffn;
  return h + 3n;
}

export function orderForReaddir<T extends { name: string }>(entries: readonly T[]): (T & { cookie: bigint })[] {
  return entries.map((e) => ({ ...e, cookie: cookieOf(e.name) })).sort((a, b) => (a.cookie < b.cookie ? -1 : a.cookie > b.cookie ? 1 : 0));
}

/** XDR size of a string or opaque with its length word. */
export function xdrOpaqueSize(byteLength: number): number {
  return 4 + byteLength + ((4 - (byteLength & 3)) & 3);
}

export const FATTR_SIZE = 84;
