/**
 * A user-space NFSv3 server (with MOUNT v3 on the same TCP port, so clients need no portmapper):
 *
 *   const server = await NfsServer.create({ exports: ['/srv/vol'], stateDir: '/run/runcvm/nfs' });
 *   const { port } = await server.listen('169.254.1.254', 2049);
 *   ...  // guest: mount -t nfs -o vers=3,proto=tcp,port=2049,mountport=2049,mountproto=tcp,nolock,addr=169.254.1.254 \
 *        //        169.254.1.254:/srv/vol /data
 *   await server.close();
 *
 * Semantics: AUTH_SYS identities are trusted as-is (no root squash: the client is the container's own VM); new files
 * belong to the caller; permissions are checked from mode bits (owners may always read/write their files, like
 * knfsd); writes are UNSTABLE until COMMIT (fsync) unless the client asks for a stable write. Handles are
 * (export id, device, inode) with a persistent map (handles.ts), so a restarted server keeps serving old handles.
 */
import { constants as C } from 'node:fs';
import {
  chmod,
  link,
  lchown,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  realpath,
  rename,
  rmdir,
  statfs,
  symlink,
  truncate,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { HandleTable, joinRel, parentRel } from './handles.js';
import {
  ACCESS,
  accessFor,
  checkName,
  CreateMode,
  decodeHandle,
  encodeHandle,
  exportIdOf,
  FATTR_SIZE,
  type Caller,
  type Fattr,
  fattrFromStat,
  FileType,
  FSF,
  MAX_PATH,
  mayDo,
  MOUNT_PROGRAM,
  MOUNT_V3,
  MountProc,
  MountStat,
  mountStatusOf,
  NFS_PROGRAM,
  NFS_V3,
  NfsError,
  NfsProc,
  NfsStat,
  NOBODY,
  orderForReaddir,
  readDirOp,
  readFh,
  readSattr,
  readTime,
  type Sattr,
  StableHow,
  statusOf,
  type WccAttr,
  wccFrom,
  writeFattr,
  writePostOpAttr,
  writePostOpFh,
  writeWcc,
  xdrOpaqueSize,
} from './proto.js';
import { AcceptStat, acceptedReply, decodeCall, encodeRecord, RecordDecoder, type RpcCall } from './rpc.js';
import { XdrError, XdrWriter } from './xdr.js';

export const MAX_IO = 1024 * 1024;

export interface NfsServerOptions {
  /** host folders to export; each is mounted by clients under its absolute path */
  exports: string[];
  /** folder for the handle maps (one file per export); undefined keeps them in memory */
  stateDir?: string;
  /** diagnostics (one line each) */
  log?: (line: string) => void;
}

interface Export {
  /** the path clients mount (absolute, normalised) */
  path: string;
  /** its real path on the host */
  real: string;
  id: number;
  fsid: bigint;
  rootDev: bigint;
  rootIno: bigint;
  table: HandleTable;
}

interface Obj {
  exp: Export;
  rel: string;
  abs: string;
  st: BigIntStats;
  attr: Fattr;
  fh: Buffer;
}

interface OpenFile {
  fd: FileHandle;
  writable: boolean;
  lastUse: number;
  users: number;
}

const isDir = (o: Obj) => o.attr.type === FileType.DIR;

export class NfsServer {
  private readonly exports: Export[];
  private readonly byId = new Map<number, Export>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly files = new Map<string, OpenFile>();
  private sweeper: ReturnType<typeof setInterval> | undefined;
  /** WRITE/COMMIT verifier: changes with each server instance, so clients resend uncommitted writes */
  readonly writeVerifier = randomBytes(8);
  private readonly log: (line: string) => void;

  private constructor(exports: Export[], options: NfsServerOptions) {
    this.exports = exports;
    for (const e of exports) this.byId.set(e.id, e);
    this.log = options.log ?? (() => undefined);
  }

  static async create(options: NfsServerOptions): Promise<NfsServer> {
    if (options.exports.length === 0) throw new Error('nothing to export: give at least one folder');
    const exports: Export[] = [];
    for (const given of options.exports) {
      if (!isAbsolute(given)) throw new Error(`export ${given} is not an absolute path`);
      const path = normalize(given).replace(/\/+$/, '') || '/';
      const real = await realpath(path);
      const st = await lstat(real, { bigint: true });
      if (!st.isDirectory()) throw new Error(`export ${path} is not a directory`);
      const id = exportIdOf(path);
      if (exports.some((e) => e.id === id)) throw new Error(`export ${path} is given twice`);
      const stateFile = options.stateDir ? join(options.stateDir, `handles-${id.toString(16).padStart(8, '0')}.jsonl`) : undefined;
      const table = new HandleTable(real, stateFile);
      await table.load();
      exports.push({ path, real, id, fsid: st.dev, rootDev: st.dev, rootIno: st.ino, table });
    }
    return new NfsServer(exports, options);
  }

  /** Start listening; resolves with the bound address (port 0 picks a free port). */
  listen(host: string, port: number): Promise<{ address: string; port: number }> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    this.sweeper = setInterval(() => void this.closeIdleFiles(5000), 2000);
    this.sweeper.unref();
    return new Promise((resolveListen, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        const a = server.address();
        if (a === null || typeof a === 'string') return reject(new Error('listening socket has no TCP address'));
        this.log(`listening on ${a.address}:${a.port}; exports: ${this.exports.map((e) => e.path).join(', ')}`);
        resolveListen({ address: a.address, port: a.port });
      });
    });
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    const closed = this.server ? new Promise<void>((r) => this.server?.close(() => r())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    await closed;
    await this.closeIdleFiles(-1);
    for (const e of this.exports) await e.table.flush().catch(() => undefined);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Transport

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const decoder = new RecordDecoder(MAX_IO + 64 * 1024);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.log(`connection from ${peer}`);
    socket.on('data', (chunk: Buffer) => {
      let records: Buffer[];
      try {
        records = decoder.push(chunk);
      } catch (err) {
        this.log(`closing ${peer}: ${(err as Error).message}`);
        socket.destroy();
        return;
      }
      for (const record of records) {
        void this.handleRecord(record).then((reply) => {
          if (reply && !socket.destroyed) socket.write(encodeRecord(reply));
        });
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.log(`connection from ${peer} closed`);
    });
  }

  /** One RPC record in, one reply out (undefined: nothing to answer). Never throws. */
  async handleRecord(record: Buffer): Promise<Buffer | undefined> {
    const decoded = decodeCall(record);
    if (!decoded.ok) return decoded.reply;
    const call = decoded.call;
    try {
      const body = await this.dispatch(call);
      if (typeof body === 'number') return acceptedReply(call.xid, body, undefined, { low: 3, high: 3 });
      return acceptedReply(call.xid, AcceptStat.SUCCESS, body);
    } catch (err) {
      if (err instanceof XdrError) return acceptedReply(call.xid, AcceptStat.GARBAGE_ARGS);
      this.log(`prog ${call.prog} proc ${call.proc}: internal error: ${(err as Error).stack ?? String(err)}`);
      return acceptedReply(call.xid, AcceptStat.SYSTEM_ERR);
    }
  }

  private async dispatch(call: RpcCall): Promise<Buffer | AcceptStat> {
    if (call.prog === NFS_PROGRAM) {
      if (call.vers !== NFS_V3) return AcceptStat.PROG_MISMATCH;
      return this.nfs(call);
    }
    if (call.prog === MOUNT_PROGRAM) {
      if (call.vers !== MOUNT_V3) return AcceptStat.PROG_MISMATCH;
      return this.mount(call);
    }
    return AcceptStat.PROG_UNAVAIL;
  }

  // ------------------------------------------------------------------------------------------------------------
  // MOUNT v3

  private async mount(call: RpcCall): Promise<Buffer | AcceptStat> {
    const w = new XdrWriter();
    switch (call.proc as MountProc) {
      case MountProc.NULL:
        return w.toBuffer();
      case MountProc.MNT: {
        const dirpath = call.args.string(MAX_PATH);
        try {
          const o = await this.mountPoint(dirpath);
          this.log(`MNT ${dirpath} from ${call.auth?.machine ?? '?'} (uid ${call.auth?.uid ?? '-'})`);
          await o.exp.table.flush();
          w.uint(MountStat.OK).opaque(o.fh).array([1], (x, f) => x.uint(f)); // AUTH_SYS
        } catch (err) {
          const st = mountStatusOf(statusOf(err));
          this.log(`MNT ${dirpath}: refused (${MountStat[st]})`);
          w.uint(st);
        }
        return w.toBuffer();
      }
      case MountProc.DUMP:
        return w.bool(false).toBuffer();
      case MountProc.UMNT:
        call.args.string(MAX_PATH);
        return w.toBuffer();
      case MountProc.UMNTALL:
        return w.toBuffer();
      case MountProc.EXPORT:
        for (const e of this.exports) w.bool(true).string(e.path).bool(false);
        return w.bool(false).toBuffer();
      default:
        return AcceptStat.PROC_UNAVAIL;
    }
  }

  private async mountPoint(dirpath: string): Promise<Obj> {
    const want = normalize(dirpath).replace(/\/+$/, '') || '/';
    for (const e of this.exports) {
      for (const base of [e.path, e.real]) {
        if (want !== base && !want.startsWith(base === '/' ? '/' : `${base}/`)) continue;
        const rel = want === base ? '' : want.slice(base === '/' ? 1 : base.length + 1);
        if (rel.split('/').some((c) => c === '..' || c === '.')) throw new NfsError(NfsStat.INVAL);
        const o = await this.objAt(e, rel);
        if (!isDir(o)) throw new NfsError(NfsStat.NOTDIR);
        return o;
      }
    }
    throw new NfsError(NfsStat.NOENT);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Objects

  private handleOf(e: Export, st: BigIntStats): Buffer {
    return encodeHandle({ exportId: e.id, dev: st.dev, ino: st.ino });
  }

  private async statAt(abs: string): Promise<BigIntStats> {
    return lstat(abs, { bigint: true });
  }

  private async objAt(e: Export, rel: string, check = true): Promise<Obj> {
    const abs = rel === '' ? e.real : join(e.real, rel);
    if (check && rel !== '') await this.assertInside(e, abs);
    const st = await this.statAt(abs);
    if (rel !== '') e.table.remember(st.dev, st.ino, rel);
    return { exp: e, rel, abs, st, attr: fattrFromStat(st, e.fsid), fh: this.handleOf(e, st) };
  }

  /** The parent folder of abs must resolve inside the export: no escaping through a symlinked path component. */
  private async assertInside(e: Export, abs: string): Promise<void> {
    const parent = await realpath(dirname(abs));
    if (parent !== e.real && !parent.startsWith(e.real === '/' ? '/' : `${e.real}/`)) throw new NfsError(NfsStat.STALE);
  }

  /** File handle → object, verifying the path still holds that inode (else search; else STALE). */
  private async resolve(fh: Buffer): Promise<Obj> {
    const key = decodeHandle(fh);
    if (!key) throw new NfsError(NfsStat.BADHANDLE);
    const e = this.byId.get(key.exportId);
    if (!e) throw new NfsError(NfsStat.STALE);
    if (key.dev === e.rootDev && key.ino === e.rootIno) return this.objAt(e, '');
    const known = e.table.lookup(key.dev, key.ino);
    if (known !== undefined) {
      try {
        const o = await this.objAt(e, known);
        if (o.st.dev === key.dev && o.st.ino === key.ino) return o;
      } catch {
        /* moved or removed behind our back: search below */
      }
    }
    const found = await e.table.search(key.dev, key.ino);
    if (found === undefined) {
      e.table.forget(key.dev, key.ino);
      throw new NfsError(NfsStat.STALE);
    }
    this.log(`handle ${key.dev}:${key.ino} was not in the map: found ${found} by searching ${e.path}`);
    const o = await this.objAt(e, found);
    if (o.st.dev !== key.dev || o.st.ino !== key.ino) throw new NfsError(NfsStat.STALE);
    return o;
  }

  private async attrOf(o: Obj): Promise<Fattr | undefined> {
    try {
      return fattrFromStat(await this.statAt(o.abs), o.exp.fsid);
    } catch {
      return undefined;
    }
  }

  private child(dir: Obj, name: string): { rel: string; abs: string } {
    const rel = joinRel(dir.rel, name);
    return { rel, abs: join(dir.exp.real, rel) };
  }

  private requireDirAccess(dir: Obj, caller: Caller, want: number): void {
    if (!isDir(dir)) throw new NfsError(NfsStat.NOTDIR);
    if (!mayDo(dir.attr, caller, want)) throw new NfsError(NfsStat.ACCES);
  }

  /** Give a new object to its creator: owner = caller, group = caller's (or the folder's when it is setgid). */
  private async adopt(abs: string, dir: Obj, caller: Caller, s: Sattr | undefined, defaultMode: number | undefined): Promise<void> {
    const { uid, gid } = ownerForNew(dir.attr, caller, s);
    await lchown(abs, uid, gid);
    const mode = s?.mode ?? defaultMode;
    if (mode !== undefined) await chmod(abs, mode);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Open files (READ/WRITE/COMMIT reuse descriptors; idle ones are closed)

  private async withFile<T>(o: Obj, writable: boolean, fn: (fd: FileHandle) => Promise<T>): Promise<T> {
    const key = `${o.st.dev}:${o.st.ino}`;
    let f = this.files.get(key);
    if (f && writable && !f.writable) {
      if (f.users === 0) {
        this.files.delete(key);
        await f.fd.close().catch(() => undefined);
      }
      f = undefined;
    }
    if (f && f.users === 0 && (await f.fd.stat({ bigint: true }).catch(() => undefined))?.nlink === 0n) {
      // the cached descriptor is of a deleted file whose inode number was reused: never write through it
      this.files.delete(key);
      await f.fd.close().catch(() => undefined);
      f = undefined;
    }
    let temporary = false;
    if (!f) {
      const fd = await open(o.abs, (writable ? C.O_RDWR : C.O_RDONLY) | C.O_NOFOLLOW);
      const st = await fd.stat({ bigint: true });
      if (st.ino !== o.st.ino || st.dev !== o.st.dev) {
        await fd.close();
        throw new NfsError(NfsStat.STALE);
      }
      f = { fd, writable, lastUse: Date.now(), users: 0 };
      if (this.files.has(key)) temporary = true;
      else this.files.set(key, f);
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
  private async evict(dev: bigint, ino: bigint): Promise<void> {
    const key = `${dev}:${ino}`;
    const f = this.files.get(key);
    if (f && f.users === 0) {
      this.files.delete(key);
      await f.fd.close().catch(() => undefined);
    }
  }

  private async closeIdleFiles(idleMs: number): Promise<void> {
    const now = Date.now();
    for (const [key, f] of this.files) {
      if (f.users === 0 && (idleMs < 0 || now - f.lastUse > idleMs)) {
        this.files.delete(key);
        await f.fd.close().catch(() => undefined);
      }
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // NFS v3

  private async nfs(call: RpcCall): Promise<Buffer | AcceptStat> {
    const caller: Caller = call.auth ? { uid: call.auth.uid, gid: call.auth.gid, gids: call.auth.gids } : NOBODY;
    const r = call.args;
    const w = new XdrWriter(512);
    const touched = new Set<Export>();
    const proc = call.proc as NfsProc;
    switch (proc) {
      case NfsProc.NULL:
        return w.toBuffer();
      case NfsProc.GETATTR:
        await this.op(w, async () => {
          const o = await this.resolve(readFh(r));
          w.uint(NfsStat.OK);
          writeFattr(w, o.attr);
        }, () => undefined);
        break;
      case NfsProc.SETATTR:
        await this.setattr(r, w, caller);
        break;
      case NfsProc.LOOKUP:
        await this.lookup(r, w, caller, touched);
        break;
      case NfsProc.ACCESS: {
        const fh = readFh(r);
        const requested = r.uint();
        let obj: Obj | undefined;
        await this.op(w, async () => {
          obj = await this.resolve(fh);
          const granted = accessFor(obj.attr, caller, requested);
          w.uint(NfsStat.OK);
          writePostOpAttr(w, obj.attr);
          w.uint(granted);
        }, () => writePostOpAttr(w, obj?.attr));
        break;
      }
      case NfsProc.READLINK: {
        const fh = readFh(r);
        let obj: Obj | undefined;
        await this.op(w, async () => {
          obj = await this.resolve(fh);
          if (obj.attr.type !== FileType.LNK) throw new NfsError(NfsStat.INVAL);
          const target = await readlink(obj.abs, { encoding: 'buffer' });
          w.uint(NfsStat.OK);
          writePostOpAttr(w, obj.attr);
          w.opaque(target);
        }, () => writePostOpAttr(w, obj?.attr));
        break;
      }
      case NfsProc.READ:
        await this.read(r, w, caller);
        break;
      case NfsProc.WRITE:
        await this.write(r, w, caller);
        break;
      case NfsProc.CREATE:
      case NfsProc.MKDIR:
      case NfsProc.SYMLINK:
      case NfsProc.MKNOD:
        await this.create(proc, r, w, caller, touched);
        break;
      case NfsProc.REMOVE:
      case NfsProc.RMDIR:
        await this.remove(proc, r, w, caller, touched);
        break;
      case NfsProc.RENAME:
        await this.rename(r, w, caller, touched);
        break;
      case NfsProc.LINK:
        await this.link(r, w, caller, touched);
        break;
      case NfsProc.READDIR:
      case NfsProc.READDIRPLUS:
        await this.readdir(proc === NfsProc.READDIRPLUS, r, w, caller, touched);
        break;
      case NfsProc.FSSTAT: {
        const fh = readFh(r);
        let obj: Obj | undefined;
        await this.op(w, async () => {
          obj = await this.resolve(fh);
          const s = await statfs(obj.abs, { bigint: true });
          w.uint(NfsStat.OK);
          writePostOpAttr(w, obj.attr);
          w.uhyper(s.blocks * s.bsize).uhyper(s.bfree * s.bsize).uhyper(s.bavail * s.bsize);
          w.uhyper(s.files).uhyper(s.ffree).uhyper(s.ffree).uint(0);
        }, () => writePostOpAttr(w, obj?.attr));
        break;
      }
      case NfsProc.FSINFO: {
        const fh = readFh(r);
        let obj: Obj | undefined;
        await this.op(w, async () => {
          obj = await this.resolve(fh);
          w.uint(NfsStat.OK);
          writePostOpAttr(w, obj.attr);
          w.uint(MAX_IO).uint(MAX_IO).uint(4096); // rtmax rtpref rtmult
          w.uint(MAX_IO).uint(MAX_IO).uint(4096); // wtmax wtpref wtmult
          w.uint(64 * 1024); // dtpref
          w.uhyper(0x7fffffffffffffffn); // maxfilesize
          w.uint(0).uint(1); // time_delta: 1 ns
          w.uint(FSF.LINK | FSF.SYMLINK | FSF.HOMOGENEOUS | FSF.CANSETTIME);
        }, () => writePostOpAttr(w, obj?.attr));
        break;
      }
      case NfsProc.PATHCONF: {
        const fh = readFh(r);
        let obj: Obj | undefined;
        await this.op(w, async () => {
          obj = await this.resolve(fh);
          w.uint(NfsStat.OK);
          writePostOpAttr(w, obj.attr);
          w.uint(65000).uint(255).bool(true).bool(true).bool(false).bool(true);
        }, () => writePostOpAttr(w, obj?.attr));
        break;
      }
      case NfsProc.COMMIT: {
        const fh = readFh(r);
        r.uhyper();
        r.uint();
        let obj: Obj | undefined;
        let before: WccAttr | undefined;
        await this.op(w, async () => {
          obj = await this.resolve(fh);
          before = wccFrom(obj.attr);
          if (obj.attr.type === FileType.REG) await this.withFile(obj, false, (fd) => fd.sync());
          w.uint(NfsStat.OK);
          writeWcc(w, before, await this.attrOf(obj));
          w.fixed(this.writeVerifier);
        }, async () => writeWcc(w, before, obj ? await this.attrOf(obj) : undefined));
        break;
      }
      default:
        return AcceptStat.PROC_UNAVAIL;
    }
    for (const e of touched) await e.table.flush();
    return w.toBuffer();
  }

  /**
   * Run one procedure body; on failure, rewind and write the status followed by the procedure's failure body.
   * Argument decoding errors (XdrError) propagate to become GARBAGE_ARGS.
   */
  private async op(w: XdrWriter, body: () => Promise<void>, onError: () => void | Promise<void>): Promise<void> {
    const mark = w.length;
    try {
      await body();
    } catch (err) {
      if (err instanceof XdrError) throw err;
      const status = statusOf(err);
      if (status === NfsStat.IO && !(err instanceof NfsError)) this.log(`I/O error: ${(err as Error).message}`);
      w.truncate(mark);
      w.uint(status);
      await onError();
    }
  }

  private async setattr(r: RpcCall['args'], w: XdrWriter, caller: Caller): Promise<void> {
    const fh = readFh(r);
    const s = readSattr(r);
    const guard = r.optional(readTime);
    let obj: Obj | undefined;
    let before: WccAttr | undefined;
    await this.op(w, async () => {
      obj = await this.resolve(fh);
      const a = obj.attr;
      before = wccFrom(a);
      if (guard && (guard.seconds !== a.ctime.seconds || guard.nseconds !== a.ctime.nseconds)) throw new NfsError(NfsStat.NOT_SYNC);
      const owner = caller.uid === 0 || caller.uid === a.uid;
      if (s.uid !== undefined || s.gid !== undefined) {
        const uidChange = s.uid !== undefined && s.uid !== a.uid;
        const gidOk = s.gid === undefined || s.gid === a.gid || (caller.uid === a.uid && (caller.gid === s.gid || caller.gids.includes(s.gid)));
        if (caller.uid !== 0 && (uidChange || !gidOk)) throw new NfsError(NfsStat.PERM);
      }
      if (s.mode !== undefined && !owner) throw new NfsError(NfsStat.PERM);
      if (s.size !== undefined) {
        if (a.type === FileType.DIR) throw new NfsError(NfsStat.ISDIR);
        if (a.type !== FileType.REG) throw new NfsError(NfsStat.INVAL);
        if (!owner && !mayDo(a, caller, 2)) throw new NfsError(NfsStat.ACCES);
      }
      const clientTime = s.atime.how === 'client' || s.mtime.how === 'client';
      const anyTime = s.atime.how !== 'dont' || s.mtime.how !== 'dont';
      if (anyTime && !owner && (clientTime || !mayDo(a, caller, 2))) throw new NfsError(NfsStat.PERM);

      if (s.size !== undefined) await truncate(obj.abs, Number(s.size));
      if (s.uid !== undefined || s.gid !== undefined) await lchown(obj.abs, s.uid ?? a.uid, s.gid ?? a.gid);
      if (s.mode !== undefined && a.type !== FileType.LNK) await chmod(obj.abs, s.mode);
      if (anyTime) {
        const now = Date.now() / 1000;
        const pick = (t: Sattr['atime'], cur: { seconds: number; nseconds: number }) =>
          t.how === 'dont' ? cur.seconds + cur.nseconds / 1e9 : t.how === 'server' ? now : t.time.seconds + t.time.nseconds / 1e9;
        await lutimes(obj.abs, pick(s.atime, a.atime), pick(s.mtime, a.mtime));
      }
      w.uint(NfsStat.OK);
      writeWcc(w, before, await this.attrOf(obj));
    }, async () => writeWcc(w, before, obj ? await this.attrOf(obj) : undefined));
  }

  private async lookup(r: RpcCall['args'], w: XdrWriter, caller: Caller, touched: Set<Export>): Promise<void> {
    const { dir: dfh, name } = readDirOp(r);
    let dir: Obj | undefined;
    await this.op(w, async () => {
      dir = await this.resolve(dfh);
      this.requireDirAccess(dir, caller, 1);
      let o: Obj;
      if (name === '.' || name === '') o = dir;
      else if (name === '..') o = await this.objAt(dir.exp, parentRel(dir.rel));
      else {
        const bad = checkName(name);
        if (bad !== NfsStat.OK) throw new NfsError(bad === NfsStat.INVAL ? NfsStat.NOENT : bad);
        o = await this.objAt(dir.exp, this.child(dir, name).rel, false);
      }
      touched.add(dir.exp);
      w.uint(NfsStat.OK).opaque(o.fh);
      writePostOpAttr(w, o.attr);
      writePostOpAttr(w, dir.attr);
    }, () => writePostOpAttr(w, dir?.attr));
  }

  private async read(r: RpcCall['args'], w: XdrWriter, caller: Caller): Promise<void> {
    const fh = readFh(r);
    const offset = r.uhyper();
    const count = Math.min(r.uint(), MAX_IO);
    let obj: Obj | undefined;
    await this.op(w, async () => {
      obj = await this.resolve(fh);
      const o = obj;
      if (o.attr.type === FileType.DIR) throw new NfsError(NfsStat.ISDIR);
      if (o.attr.type !== FileType.REG) throw new NfsError(NfsStat.INVAL);
      if (caller.uid !== o.attr.uid && !mayDo(o.attr, caller, 4)) throw new NfsError(NfsStat.ACCES);
      const buf = Buffer.allocUnsafe(count);
      let got = 0;
      if (count > 0 && offset < o.attr.size) {
        got = await this.withFile(o, false, async (fd) => {
          let n = 0;
          while (n < count) {
            const { bytesRead } = await fd.read(buf, n, count - n, Number(offset) + n);
            if (bytesRead === 0) break;
            n += bytesRead;
          }
          return n;
        });
      }
      const after = (await this.attrOf(o)) ?? o.attr;
      const eof = offset + BigInt(got) >= after.size;
      w.uint(NfsStat.OK);
      writePostOpAttr(w, after);
      w.uint(got).bool(eof).opaque(buf.subarray(0, got));
    }, () => writePostOpAttr(w, obj?.attr));
  }

  private async write(r: RpcCall['args'], w: XdrWriter, caller: Caller): Promise<void> {
    const fh = readFh(r);
    const offset = r.uhyper();
    const count = r.uint();
    const stable = r.uint() as StableHow;
    const data = r.opaque(MAX_IO);
    let obj: Obj | undefined;
    let before: WccAttr | undefined;
    await this.op(w, async () => {
      obj = await this.resolve(fh);
      const o = obj;
      before = wccFrom(o.attr);
      if (o.attr.type === FileType.DIR) throw new NfsError(NfsStat.ISDIR);
      if (o.attr.type !== FileType.REG) throw new NfsError(NfsStat.INVAL);
      if (caller.uid !== o.attr.uid && !mayDo(o.attr, caller, 2)) throw new NfsError(NfsStat.ACCES);
      const n = Math.min(count, data.length);
      await this.withFile(o, true, async (fd) => {
        let done = 0;
        while (done < n) {
          const { bytesWritten } = await fd.write(data, done, n - done, Number(offset) + done);
          done += bytesWritten;
        }
        if (stable !== StableHow.UNSTABLE) await fd.datasync();
      });
      w.uint(NfsStat.OK);
      writeWcc(w, before, await this.attrOf(o));
      w.uint(n).uint(stable === StableHow.UNSTABLE ? StableHow.UNSTABLE : StableHow.FILE_SYNC).fixed(this.writeVerifier);
    }, async () => writeWcc(w, before, obj ? await this.attrOf(obj) : undefined));
  }

  private async create(proc: NfsProc, r: RpcCall['args'], w: XdrWriter, caller: Caller, touched: Set<Export>): Promise<void> {
    const { dir: dfh, name } = readDirOp(r);
    let how = CreateMode.UNCHECKED;
    let sattr: Sattr | undefined;
    let verifier: Buffer | undefined;
    let target = '';
    if (proc === NfsProc.CREATE) {
      how = r.uint() as CreateMode;
      if (how === CreateMode.EXCLUSIVE) verifier = Buffer.from(r.fixed(8));
      else sattr = readSattr(r);
    } else if (proc === NfsProc.MKDIR) {
      sattr = readSattr(r);
    } else if (proc === NfsProc.SYMLINK) {
      sattr = readSattr(r);
      target = r.string(MAX_PATH);
    }
    let dir: Obj | undefined;
    let before: WccAttr | undefined;
    await this.op(w, async () => {
      dir = await this.resolve(dfh);
      before = wccFrom(dir.attr);
      if (proc === NfsProc.MKNOD) throw new NfsError(NfsStat.NOTSUPP);
      const bad = checkName(name);
      if (bad !== NfsStat.OK) throw new NfsError(bad === NfsStat.INVAL && (name === '.' || name === '..') ? NfsStat.EXIST : bad);
      this.requireDirAccess(dir, caller, 3);
      const { rel, abs } = this.child(dir, name);
      if (proc === NfsProc.MKDIR) {
        await mkdir(abs, 0o700);
        await this.adopt(abs, dir, caller, sattr, 0o755);
      } else if (proc === NfsProc.SYMLINK) {
        await symlink(target, abs);
        const { uid, gid } = ownerForNew(dir.attr, caller, sattr);
        await lchown(abs, uid, gid);
      } else if (how === CreateMode.EXCLUSIVE && verifier) {
        const vAtime = verifier.readUInt32BE(0);
        const vMtime = verifier.readUInt32BE(4);
        try {
          const fd = await open(abs, C.O_CREAT | C.O_EXCL | C.O_WRONLY | C.O_NOFOLLOW, 0o600);
          await fd.close();
          await this.adopt(abs, dir, caller, undefined, 0o600);
          await lutimes(abs, vAtime, vMtime);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          const st = await this.statAt(abs);
          // a retransmitted exclusive create finds its own verifier in the times
          if (!(st.isFile() && st.atimeNs / 1_000_000_000n === BigInt(vAtime) && st.mtimeNs / 1_000_000_000n === BigInt(vMtime))) throw err;
        }
      } else {
        const flags = C.O_CREAT | C.O_WRONLY | C.O_NOFOLLOW | (how === CreateMode.GUARDED ? C.O_EXCL : 0);
        let existed = false;
        try {
          await this.statAt(abs);
          existed = true;
        } catch {
          /* new file */
        }
        if (existed && how === CreateMode.GUARDED) throw new NfsError(NfsStat.EXIST);
        if (existed && sattr?.size !== undefined) {
          const cur = fattrFromStat(await this.statAt(abs), dir.exp.fsid);
          if (caller.uid !== cur.uid && !mayDo(cur, caller, 2)) throw new NfsError(NfsStat.ACCES);
        }
        const fd = await open(abs, flags, 0o600);
        await fd.close();
        if (!existed) await this.adopt(abs, dir, caller, sattr, 0o644);
        else if (sattr?.size !== undefined) await truncate(abs, Number(sattr.size));
      }
      const o = await this.objAt(dir.exp, rel, false);
      touched.add(dir.exp);
      w.uint(NfsStat.OK);
      writePostOpFh(w, o.fh);
      writePostOpAttr(w, o.attr);
      writeWcc(w, before, await this.attrOf(dir));
    }, async () => writeWcc(w, before, dir ? await this.attrOf(dir) : undefined));
  }

  private async remove(proc: NfsProc, r: RpcCall['args'], w: XdrWriter, caller: Caller, touched: Set<Export>): Promise<void> {
    const { dir: dfh, name } = readDirOp(r);
    let dir: Obj | undefined;
    let before: WccAttr | undefined;
    await this.op(w, async () => {
      dir = await this.resolve(dfh);
      before = wccFrom(dir.attr);
      if (name === '.' || name === '..') throw new NfsError(proc === NfsProc.RMDIR ? NfsStat.INVAL : NfsStat.ACCES);
      const bad = checkName(name);
      if (bad !== NfsStat.OK) throw new NfsError(bad === NfsStat.INVAL ? NfsStat.NOENT : bad);
      this.requireDirAccess(dir, caller, 3);
      const { abs } = this.child(dir, name);
      const st = await this.statAt(abs);
      if ((dir.attr.mode & 0o1000) !== 0 && caller.uid !== 0 && caller.uid !== Number(st.uid) && caller.uid !== dir.attr.uid) {
        throw new NfsError(NfsStat.ACCES); // sticky folder: only the owner of the entry or of the folder
      }
      if (proc === NfsProc.RMDIR) {
        if (!st.isDirectory()) throw new NfsError(NfsStat.NOTDIR);
        await rmdir(abs);
      } else {
        if (st.isDirectory()) throw new NfsError(NfsStat.ISDIR);
        await unlink(abs);
      }
      if (st.isDirectory() || st.nlink <= 1n) {
        dir.exp.table.forget(st.dev, st.ino);
        await this.evict(st.dev, st.ino);
      }
      touched.add(dir.exp);
      w.uint(NfsStat.OK);
      writeWcc(w, before, await this.attrOf(dir));
    }, async () => writeWcc(w, before, dir ? await this.attrOf(dir) : undefined));
  }

  private async rename(r: RpcCall['args'], w: XdrWriter, caller: Caller, touched: Set<Export>): Promise<void> {
    const from = readDirOp(r);
    const to = readDirOp(r);
    let fromDir: Obj | undefined;
    let toDir: Obj | undefined;
    let fromBefore: WccAttr | undefined;
    let toBefore: WccAttr | undefined;
    await this.op(w, async () => {
      fromDir = await this.resolve(from.dir);
      fromBefore = wccFrom(fromDir.attr);
      toDir = await this.resolve(to.dir);
      toBefore = wccFrom(toDir.attr);
      if (fromDir.exp !== toDir.exp) throw new NfsError(NfsStat.XDEV);
      for (const n of [from.name, to.name]) {
        if (n === '.' || n === '..') throw new NfsError(NfsStat.INVAL);
        const bad = checkName(n);
        if (bad !== NfsStat.OK) throw new NfsError(bad);
      }
      this.requireDirAccess(fromDir, caller, 3);
      this.requireDirAccess(toDir, caller, 3);
      const src = this.child(fromDir, from.name);
      const dst = this.child(toDir, to.name);
      const srcSt = await this.statAt(src.abs);
      if ((fromDir.attr.mode & 0o1000) !== 0 && caller.uid !== 0 && caller.uid !== Number(srcSt.uid) && caller.uid !== fromDir.attr.uid) {
        throw new NfsError(NfsStat.ACCES);
      }
      if (srcSt.isDirectory() && (dst.rel === src.rel || dst.rel.startsWith(`${src.rel}/`))) {
        if (dst.rel !== src.rel) throw new NfsError(NfsStat.INVAL);
      }
      let replaced: BigIntStats | undefined;
      try {
        replaced = await this.statAt(dst.abs);
      } catch {
        /* nothing at the destination */
      }
      await rename(src.abs, dst.abs);
      if (replaced && (replaced.ino !== srcSt.ino || replaced.dev !== srcSt.dev) && (replaced.isDirectory() || replaced.nlink <= 1n)) {
        fromDir.exp.table.forget(replaced.dev, replaced.ino);
        await this.evict(replaced.dev, replaced.ino);
      }
      fromDir.exp.table.renamed(src.rel, dst.rel);
      fromDir.exp.table.remember(srcSt.dev, srcSt.ino, dst.rel);
      touched.add(fromDir.exp);
      w.uint(NfsStat.OK);
      writeWcc(w, fromBefore, await this.attrOf(fromDir));
      writeWcc(w, toBefore, await this.attrOf(toDir));
    }, async () => {
      writeWcc(w, fromBefore, fromDir ? await this.attrOf(fromDir) : undefined);
      writeWcc(w, toBefore, toDir ? await this.attrOf(toDir) : undefined);
    });
  }

  private async link(r: RpcCall['args'], w: XdrWriter, caller: Caller, touched: Set<Export>): Promise<void> {
    const fh = readFh(r);
    const { dir: dfh, name } = readDirOp(r);
    let file: Obj | undefined;
    let dir: Obj | undefined;
    let before: WccAttr | undefined;
    await this.op(w, async () => {
      file = await this.resolve(fh);
      dir = await this.resolve(dfh);
      before = wccFrom(dir.attr);
      if (file.exp !== dir.exp) throw new NfsError(NfsStat.XDEV);
      if (isDir(file)) throw new NfsError(NfsStat.ISDIR);
      const bad = checkName(name);
      if (bad !== NfsStat.OK) throw new NfsError(bad === NfsStat.INVAL && (name === '.' || name === '..') ? NfsStat.EXIST : bad);
      this.requireDirAccess(dir, caller, 3);
      await link(file.abs, this.child(dir, name).abs);
      touched.add(dir.exp);
      w.uint(NfsStat.OK);
      writePostOpAttr(w, await this.attrOf(file));
      writeWcc(w, before, await this.attrOf(dir));
    }, async () => {
      writePostOpAttr(w, file ? await this.attrOf(file) : undefined);
      writeWcc(w, before, dir ? await this.attrOf(dir) : undefined);
    });
  }

  private async readdir(plus: boolean, r: RpcCall['args'], w: XdrWriter, caller: Caller, touched: Set<Export>): Promise<void> {
    const fh = readFh(r);
    const cookie = r.uhyper();
    r.fixed(8); // cookieverf: our cookies are stateless, any verifier is accepted
    const dircount = r.uint();
    const maxcount = plus ? r.uint() : dircount;
    let dir: Obj | undefined;
    await this.op(w, async () => {
      dir = await this.resolve(fh);
      const d = dir;
      if (!isDir(d)) throw new NfsError(NfsStat.NOTDIR);
      if (!mayDo(d.attr, caller, 4)) throw new NfsError(NfsStat.ACCES);
      const names = await readdir(d.abs);
      const all = orderForReaddir([{ name: '.' }, { name: '..' }, ...names.map((name) => ({ name }))]);
      const todo = all.filter((e) => e.cookie > cookie);
      // header: status + post_op_attr + cookieverf; trailer: end of list + eof
      let size = 4 + 4 + FATTR_SIZE + 8 + 8;
      let dirBytes = 0;
      const body = new XdrWriter(Math.min(maxcount, 64 * 1024));
      let count = 0;
      let eof = true;
      for (const e of todo) {
        let o: Obj | undefined;
        try {
          if (e.name === '.') o = d;
          else if (e.name === '..') o = await this.objAt(d.exp, parentRel(d.rel), false);
          else o = await this.objAt(d.exp, joinRel(d.rel, e.name), false);
        } catch {
          continue; // removed while listing
        }
        const nameLen = Buffer.byteLength(e.name);
        const entryDir = 4 + 8 + xdrOpaqueSize(nameLen) + 8;
        const entrySize = entryDir + (plus ? 4 + FATTR_SIZE + 4 + xdrOpaqueSize(o.fh.length) : 0);
        if (size + entrySize > maxcount || (plus && dirBytes + entryDir > dircount && count > 0)) {
          eof = false;
          break;
        }
        size += entrySize;
        dirBytes += entryDir;
        count++;
        body.bool(true).uhyper(o.attr.fileid).string(e.name).uhyper(e.cookie);
        if (plus) {
          writePostOpAttr(body, o.attr);
          writePostOpFh(body, o.fh);
        }
      }
      if (count === 0 && !eof) throw new NfsError(NfsStat.TOOSMALL);
      touched.add(d.exp);
      w.uint(NfsStat.OK);
      writePostOpAttr(w, d.attr);
      w.fixed(Buffer.alloc(8));
      w.fixed(body.view());
      w.bool(false).bool(eof);
    }, () => writePostOpAttr(w, dir?.attr));
  }
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

/** Validate `ADDR:PORT` (IPv4 or [IPv6]) for --listen. Pure. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`--listen ${value}: expected ADDR:PORT (e.g. 169.254.1.254:2049 or 127.0.0.1:0)`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export const ACCESS_ALL = ACCESS.READ | ACCESS.LOOKUP | ACCESS.MODIFY | ACCESS.EXTEND | ACCESS.DELETE | ACCESS.EXECUTE;
