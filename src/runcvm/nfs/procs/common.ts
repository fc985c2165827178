/**
 * The shape every NFS procedure has (go-nfs style: one per file, listed in index.ts): `decode` the arguments
 * (an XdrError becomes GARBAGE_ARGS), `handle` them against the filesystem (NfsFs) into a result value, `encode`
 * the result. Failures inside `handle` become the procedure's status plus its failure body (`attempt`).
 */
import type { FsObject, NfsFs } from '../fs.js';
import { type Caller, type Fattr, FileType, mayDo, NfsError, NfsStat, type Sattr, statusOf, type WccAttr, writePostOpAttr, writeWcc } from '../proto.js';
import type { XdrReader, XdrWriter } from '../xdr.js';

export interface NfsContext {
  fs: NfsFs;
  caller: Caller;
  /** WRITE/COMMIT verifier: changes with each server instance, so clients resend uncommitted writes */
  writeVerifier: Buffer;
  log(line: string): void;
}

export interface Procedure<A, R> {
  decode(r: XdrReader): A;
  handle(ctx: NfsContext, args: A): Promise<R>;
  encode(w: XdrWriter, result: R): void;
}

/** A procedure with its types erased, as the dispatch table holds it. */
export type Runner = (ctx: NfsContext, args: XdrReader, out: XdrWriter) => Promise<void>;

export function runner<A, R>(p: Procedure<A, R>): Runner {
  return async (ctx, r, w) => p.encode(w, await p.handle(ctx, p.decode(r)));
}

export type Failed = Exclude<NfsStat, NfsStat.OK>;
export type Result<Ok, Fail> = ({ status: NfsStat.OK } & Ok) | ({ status: Failed } & Fail);

/** Run body; on failure, the status of the error and what fail() gives (read after the failure, e.g. wcc data). */
export async function attempt<Ok extends object, Fail extends object>(ctx: NfsContext, body: () => Promise<Ok>, fail: () => Fail | Promise<Fail>): Promise<Result<Ok, Fail>> {
  try {
    return { status: NfsStat.OK, ...(await body()) } as Result<Ok, Fail>;
  } catch (err) {
    const status = statusOf(err);
    if (status === NfsStat.IO && !(err instanceof NfsError)) ctx.log(`I/O error: ${(err as Error).message}`);
    return { status: status as Failed, ...(await fail()) } as Result<Ok, Fail>;
  }
}

/** Write the status, then the body for it. */
export function encodeResult<Ok, Fail>(w: XdrWriter, res: Result<Ok, Fail>, ok: (w: XdrWriter, r: Ok) => void, fail: (w: XdrWriter, r: Fail) => void): void {
  w.uint(res.status);
  if (res.status === NfsStat.OK) ok(w, res as Ok);
  else fail(w, res as Fail);
}

/** post_op_attr only (the failure body of most procedures) */
export interface PostOp {
  attr: Fattr | undefined;
}
export const writePostOp = (w: XdrWriter, r: PostOp): void => writePostOpAttr(w, r.attr);

/** wcc_data: the attributes before and after */
export interface Wcc {
  before: WccAttr | undefined;
  after: Fattr | undefined;
}
export const writeWccOf = (w: XdrWriter, r: Wcc): void => writeWcc(w, r.before, r.after);

/** Fresh attributes of an object resolved (undefined when it never was, or is gone). */
export async function attrOf(fs: NfsFs, o: FsObject | undefined): Promise<Fattr | undefined> {
  return o ? fs.attr(o) : undefined;
}

export const isDir = (o: FsObject): boolean => o.attr.type === FileType.DIR;

/** A folder the caller may search (1), or modify (3 = write + search). */
export function requireDirAccess(dir: FsObject, caller: Caller, want: number): void {
  if (!isDir(dir)) throw new NfsError(NfsStat.NOTDIR);
  if (!mayDo(dir.attr, caller, want)) throw new NfsError(NfsStat.ACCES);
}

/**
 * Owner of a new object: the caller, with the folder's group when it is setgid. A uid/gid the client asks for in
 * sattr3 is honoured for root, and for others only when it is their own uid / one of their groups. Pure.
 */
export function ownerForNew(dir: Pick<Fattr, 'mode' | 'gid'>, caller: Caller, s: Pick<Sattr, 'uid' | 'gid'> | undefined): { uid: number; gid: number } {
  const inherited = (dir.mode & 0o2000) !== 0 ? dir.gid : caller.gid;
  const root = caller.uid === 0;
  const uid = s?.uid !== undefined && (root || s.uid === caller.uid) ? s.uid : caller.uid;
  const gid = s?.gid !== undefined && (root || s.gid === caller.gid || caller.gids.includes(s.gid)) ? s.gid : inherited;
  return { uid, gid };
}

/** Give a new object to its creator (ownerForNew), then its mode (the requested one, else defaultMode). */
export async function adopt(fs: NfsFs, o: FsObject, dir: FsObject, caller: Caller, s: Sattr | undefined, defaultMode: number | undefined): Promise<void> {
  const { uid, gid } = ownerForNew(dir.attr, caller, s);
  await fs.chown(o, uid, gid);
  const mode = s?.mode ?? defaultMode;
  if (mode !== undefined && o.attr.type !== FileType.LNK) await fs.chmod(o, mode);
}

/** In a sticky folder only the owner of the entry, of the folder, or root may remove or rename it. */
export function requireStickyOwner(dir: FsObject, entry: FsObject, caller: Caller): void {
  if ((dir.attr.mode & 0o1000) !== 0 && caller.uid !== 0 && caller.uid !== entry.attr.uid && caller.uid !== dir.attr.uid) throw new NfsError(NfsStat.ACCES);
}
