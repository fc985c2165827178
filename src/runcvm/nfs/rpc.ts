/**
 * ONC RPC v2 (RFC 5531) over TCP: record marking (fragments with a last-fragment bit), call headers with AUTH_SYS
 * credentials, and reply encoding. Pure: the server feeds socket chunks to a RecordDecoder and writes what
 * encodeRecord returns.
 */
import { XdrError, XdrReader, XdrWriter } from './xdr.js';

export const RPC_VERSION = 2;
export const MSG_CALL = 0;
export const MSG_REPLY = 1;

export const AUTH_NONE = 0;
export const AUTH_SYS = 1;

export enum AcceptStat {
  SUCCESS = 0,
  PROG_UNAVAIL = 1,
  PROG_MISMATCH = 2,
  PROC_UNAVAIL = 3,
  GARBAGE_ARGS = 4,
  SYSTEM_ERR = 5,
}

export enum AuthStat {
  AUTH_OK = 0,
  AUTH_BADCRED = 1,
  AUTH_REJECTEDCRED = 2,
  AUTH_BADVERF = 3,
  AUTH_REJECTEDVERF = 4,
  AUTH_TOOWEAK = 5,
}

const LAST_FRAGMENT = 0x80000000;

/** Frame one RPC message as a single last fragment. */
export function encodeRecord(message: Buffer): Buffer {
  if (message.length > 0x7fffffff) throw new XdrError(`RPC record of ${message.length} bytes is too large`);
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE((LAST_FRAGMENT | message.length) >>> 0, 0);
  return Buffer.concat([header, message]);
}

/**
 * Reassembles records from a TCP byte stream: push() each chunk, get back the complete records (fragments joined).
 * A record larger than maxRecord throws (the connection should be closed: the peer is broken or hostile).
 */
export class RecordDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private fragments: Buffer[] = [];
  private recordBytes = 0;

  constructor(private readonly maxRecord = 8 * 1024 * 1024) {}

  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.pendingBytes < 4) break;
      const head = this.peek(4);
      const word = head.readUInt32BE(0);
      const length = word & 0x7fffffff;
      const last = (word & LAST_FRAGMENT) !== 0;
      if (this.recordBytes + length > this.maxRecord) {
        throw new XdrError(`RPC record exceeds ${this.maxRecord} bytes`);
      }
      if (this.pendingBytes < 4 + length) break;
      this.take(4);
      const fragment = this.take(length);
      this.fragments.push(fragment);
      this.recordBytes += length;
      if (last) {
        out.push(this.fragments.length === 1 ? (this.fragments[0] as Buffer) : Buffer.concat(this.fragments));
        this.fragments = [];
        this.recordBytes = 0;
      }
    }
    return out;
  }

  /** Bytes buffered but not yet part of a complete record. */
  get buffered(): number {
    return this.pendingBytes + this.recordBytes;
  }

  private peek(n: number): Buffer {
    const first = this.pending[0] as Buffer;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.pending).subarray(0, n);
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.pending[0] as Buffer;
    if (first.length >= n) {
      const v = first.subarray(0, n);
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
      this.pendingBytes -= n;
      return v;
    }
    const all = Buffer.concat(this.pending);
    const v = all.subarray(0, n);
    const restBuf = all.subarray(n);
    this.pending = restBuf.length ? [restBuf] : [];
    this.pendingBytes -= n;
    return v;
  }
}

export interface AuthSys {
  stamp: number;
  machine: string;
  uid: number;
  gid: number;
  gids: number[];
}

export interface OpaqueAuth {
  flavor: number;
  body: Buffer;
}

export interface RpcCall {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  cred: OpaqueAuth;
  verf: OpaqueAuth;
  /** decoded AUTH_SYS credentials (undefined for AUTH_NONE) */
  auth?: AuthSys;
  /** reader positioned at the procedure arguments */
  args: XdrReader;
}

function readOpaqueAuth(r: XdrReader): OpaqueAuth {
  const flavor = r.uint();
  const body = r.opaque(400);
  return { flavor, body };
}

export function decodeAuthSys(body: Buffer): AuthSys {
  const r = new XdrReader(body);
  const stamp = r.uint();
  const machine = r.string(255);
  const uid = r.uint();
  const gid = r.uint();
  const gids = r.array((x) => x.uint(), 16);
  return { stamp, machine, uid, gid, gids };
}

export function encodeAuthSys(a: AuthSys): Buffer {
  const w = new XdrWriter(64);
  w.uint(a.stamp).string(a.machine).uint(a.uid).uint(a.gid).array(a.gids, (x, g) => x.uint(g));
  return w.toBuffer();
}

export type CallDecode =
  | { ok: true; call: RpcCall }
  /** a reply is owed (xid known) but the call cannot be served */
  | { ok: false; xid: number; reply: Buffer }
  /** not even a call header: drop it */
  | { ok: false; xid: undefined; reply: undefined; reason: string };

/** Parse one record as an RPC call. Bad version or credentials yield the reply to send instead. */
export function decodeCall(record: Buffer): CallDecode {
  const r = new XdrReader(record);
  let xid: number;
  try {
    xid = r.uint();
    const mtype = r.uint();
    if (mtype !== MSG_CALL) return { ok: false, xid: undefined, reply: undefined, reason: `message type ${mtype} is not CALL` };
  } catch (err) {
    return { ok: false, xid: undefined, reply: undefined, reason: (err as Error).message };
  }
  try {
    const rpcvers = r.uint();
    if (rpcvers !== RPC_VERSION) return { ok: false, xid, reply: rpcMismatchReply(xid) };
    const prog = r.uint();
    const vers = r.uint();
    const proc = r.uint();
    const cred = readOpaqueAuth(r);
    const verf = readOpaqueAuth(r);
    let auth: AuthSys | undefined;
    if (cred.flavor === AUTH_SYS) {
      try {
        auth = decodeAuthSys(cred.body);
      } catch {
        return { ok: false, xid, reply: authErrorReply(xid, AuthStat.AUTH_BADCRED) };
      }
    } else if (cred.flavor !== AUTH_NONE) {
      return { ok: false, xid, reply: authErrorReply(xid, AuthStat.AUTH_REJECTEDCRED) };
    }
    const call: RpcCall = { xid, prog, vers, proc, cred, verf, args: r };
    if (auth) call.auth = auth;
    return { ok: true, call };
  } catch {
    return { ok: false, xid, reply: acceptedReply(xid, AcceptStat.GARBAGE_ARGS) };
  }
}

/** Encode a call (used by tests and by clients such as the readiness probe). */
export function encodeCall(c: { xid: number; prog: number; vers: number; proc: number; auth?: AuthSys; args?: Buffer }): Buffer {
  const w = new XdrWriter(128);
  w.uint(c.xid).uint(MSG_CALL).uint(RPC_VERSION).uint(c.prog).uint(c.vers).uint(c.proc);
  if (c.auth) w.uint(AUTH_SYS).opaque(encodeAuthSys(c.auth));
  else w.uint(AUTH_NONE).opaque(Buffer.alloc(0));
  w.uint(AUTH_NONE).opaque(Buffer.alloc(0));
  return c.args ? Buffer.concat([w.view(), c.args]) : w.toBuffer();
}

function replyHead(xid: number): XdrWriter {
  return new XdrWriter(128).uint(xid).uint(MSG_REPLY);
}

/** MSG_ACCEPTED with AUTH_NONE verifier: SUCCESS + results, or an error accept_stat. */
export function acceptedReply(xid: number, stat: AcceptStat, body?: Buffer, mismatch?: { low: number; high: number }): Buffer {
  const w = replyHead(xid).uint(0).uint(AUTH_NONE).opaque(Buffer.alloc(0)).uint(stat);
  if (stat === AcceptStat.PROG_MISMATCH) w.uint(mismatch?.low ?? 0).uint(mismatch?.high ?? 0);
  const head = w.view();
  return body && stat === AcceptStat.SUCCESS ? Buffer.concat([head, body]) : Buffer.from(head);
}

export function rpcMismatchReply(xid: number): Buffer {
  return replyHead(xid).uint(1).uint(0).uint(RPC_VERSION).uint(RPC_VERSION).toBuffer();
}

export function authErrorReply(xid: number, stat: AuthStat): Buffer {
  return replyHead(xid).uint(1).uint(1).uint(stat).toBuffer();
}

export interface RpcReply {
  xid: number;
  accepted: boolean;
  acceptStat?: AcceptStat;
  rejectStat?: number;
  authStat?: number;
  mismatch?: { low: number; high: number };
  body: XdrReader;
}

/** Parse a reply (tests and probes). */
export function decodeReply(record: Buffer): RpcReply {
  const r = new XdrReader(record);
  const xid = r.uint();
  const mtype = r.uint();
  if (mtype !== MSG_REPLY) throw new XdrError(`message type ${mtype} is not REPLY`);
  const stat = r.uint();
  if (stat === 0) {
    readOpaqueAuth(r);
    const acceptStat = r.uint() as AcceptStat;
    const reply: RpcReply = { xid, accepted: true, acceptStat, body: r };
    if (acceptStat === AcceptStat.PROG_MISMATCH) reply.mismatch = { low: r.uint(), high: r.uint() };
    return reply;
  }
  const rejectStat = r.uint();
  const reply: RpcReply = { xid, accepted: false, rejectStat, body: r };
  if (rejectStat === 0) reply.mismatch = { low: r.uint(), high: r.uint() };
  else reply.authStat = r.uint();
  return reply;
}
