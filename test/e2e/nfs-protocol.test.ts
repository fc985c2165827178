/**
 * The NFSv3/MOUNT server at the protocol level, in-process on 127.0.0.1 with a tiny RPC client: the corners a Linux
 * client rarely shows (program/version errors, exclusive-create retransmission, READDIR paging, handle staleness,
 * restarts without state, symlink escapes, permission refusals, garbage arguments).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { chown, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NfsServer } from '../../src/runcvm/nfs/server.js';
import { XdrReader, XdrWriter } from '../../src/runcvm/nfs/xdr.js';
import { AcceptStat, decodeReply, encodeCall, encodeRecord, RecordDecoder, type AuthSys, type RpcReply } from '../../src/runcvm/nfs/rpc.js';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import {
  ACCESS,
  CreateMode,
  decodeHandle,
  encodeHandle,
  FileType,
  MOUNT_PROGRAM,
  MountProc,
  MountStat,
  NFS_PROGRAM,
  NfsProc,
  NfsStat,
  readFattr,
  writeSattr,
  type Fattr,
  type Sattr,
} from '../../src/runcvm/nfs/proto.js';

const ROOT: AuthSys = { stamp: 1, machine: 'test', uid: 0, gid: 0, gids: [] };
const APP: AuthSys = { stamp: 1, machine: 'test', uid: 1000, gid: 1000, gids: [1000] };
/** the test's own connections: from 127.0.0.1, any source port */
const LOCAL = { allow: ['127.0.0.1'], reservedPortsOnly: false };

class Client {
  private xid = 1;
  private readonly waiting = new Map<number, (r: RpcReply) => void>();
  private readonly decoder = new RecordDecoder();
  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const rec of this.decoder.push(chunk)) {
        const reply = decodeReply(rec);
        this.waiting.get(reply.xid)?.(reply);
        this.waiting.delete(reply.xid);
      }
    });
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  call(prog: number, proc: number, args: Buffer = Buffer.alloc(0), auth: AuthSys = ROOT, vers = 3): Promise<RpcReply> {
    const xid = this.xid++;
    return new Promise((resolve) => {
      this.waiting.set(xid, resolve);
      this.socket.write(encodeRecord(encodeCall({ xid, prog, vers, proc, auth, args })));
    });
  }

  /** NFS call that must be accepted; returns the reader at the nfsstat3. */
  async nfs(proc: NfsProc, args: XdrWriter, auth: AuthSys = ROOT): Promise<XdrReader> {
    const r = await this.call(NFS_PROGRAM, proc, args.toBuffer(), auth);
    expect(r.acceptStat).toBe(AcceptStat.SUCCESS);
    return r.body;
  }

  close(): void {
    this.socket.destroy();
  }
}

const fhArg = (fh: Buffer) => new XdrWriter().opaque(fh);
const dirop = (fh: Buffer, name: string) => new XdrWriter().opaque(fh).string(name);
const skipPostOp = (r: XdrReader) => r.optional(readFattr);
const skipWcc = (r: XdrReader) => {
  r.optional((x) => (x.uhyper(), x.uint(), x.uint(), x.uint(), x.uint()));
  return skipPostOp(r);
};

let tmp = '';
let exp = '';
let server: NfsServer;
let port = 0;
let client: Client;
let rootFh: Buffer;

async function startServer(stateDir: string | undefined): Promise<void> {
  server = await NfsServer.create({ exports: [exp], ...(stateDir ? { stateDir } : {}) });
  port = (await server.listen('127.0.0.1', 0, LOCAL)).port;
  client = await Client.connect(port);
}

async function lookup(dir: Buffer, name: string, auth: AuthSys = ROOT): Promise<{ status: NfsStat; fh?: Buffer; attr?: Fattr }> {
  const r = await client.nfs(NfsProc.LOOKUP, dirop(dir, name), auth);
  const status = r.uint() as NfsStat;
  if (status !== NfsStat.OK) return { status };
  const fh = Buffer.from(r.opaque());
  const attr = r.optional(readFattr);
  return attr ? { status, fh, attr } : { status, fh };
}

async function getattr(fh: Buffer): Promise<{ status: NfsStat; attr?: Fattr }> {
  const r = await client.nfs(NfsProc.GETATTR, fhArg(fh));
  const status = r.uint() as NfsStat;
  return status === NfsStat.OK ? { status, attr: readFattr(r) } : { status };
}

async function create(dir: Buffer, name: string, how: CreateMode, attr: Partial<Sattr> | Buffer, auth: AuthSys = ROOT): Promise<{ status: NfsStat; fh?: Buffer; attr?: Fattr }> {
  const w = dirop(dir, name).uint(how);
  if (Buffer.isBuffer(attr)) w.fixed(attr);
  else writeSattr(w, attr);
  const r = await client.nfs(NfsProc.CREATE, w, auth);
  const status = r.uint() as NfsStat;
  if (status !== NfsStat.OK) return { status };
  const fh = r.optional((x) => Buffer.from(x.opaque()));
  const a = r.optional(readFattr);
  return { status, ...(fh ? { fh } : {}), ...(a ? { attr: a } : {}) };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nfs-proto-'));
  exp = join(tmp, 'export');
  await mkdir(join(exp, 'appdir'), { recursive: true });
  await chown(join(exp, 'appdir'), 1000, 1000);
  await writeFile(join(exp, 'root-file'), 'root\n', { mode: 0o644 });
  await startServer(join(tmp, 'state'));
  const r = await client.call(MOUNT_PROGRAM, MountProc.MNT, new XdrWriter().string(exp).toBuffer());
  expect(r.body.uint()).toBe(MountStat.OK);
  rootFh = Buffer.from(r.body.opaque());
});

afterAll(async () => {
  client?.close();
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});


describe('RPC programs', () => {
  it('NULL answers on NFS and MOUNT; NFSACL is unavailable; NFSv4 gets PROG_MISMATCH 3..3', async () => {
    expect((await client.call(NFS_PROGRAM, 0)).acceptStat).toBe(AcceptStat.SUCCESS);
    expect((await client.call(MOUNT_PROGRAM, 0)).acceptStat).toBe(AcceptStat.SUCCESS);
    expect((await client.call(100227, 0)).acceptStat).toBe(AcceptStat.PROG_UNAVAIL);
    const v4 = await client.call(NFS_PROGRAM, 0, Buffer.alloc(0), ROOT, 4);
    expect(v4).toMatchObject({ acceptStat: AcceptStat.PROG_MISMATCH, mismatch: { low: 3, high: 3 } });
    expect((await client.call(NFS_PROGRAM, 99)).acceptStat).toBe(AcceptStat.PROC_UNAVAIL);
  });

  it('garbage arguments get GARBAGE_ARGS (not a crash)', async () => {
    expect((await client.call(NFS_PROGRAM, NfsProc.GETATTR, Buffer.from([0, 0, 1, 0]))).acceptStat).toBe(AcceptStat.GARBAGE_ARGS);
    expect((await client.call(NFS_PROGRAM, NfsProc.NULL)).acceptStat).toBe(AcceptStat.SUCCESS);
  });
});

describe('MOUNT', () => {
  it('EXPORT lists the export; MNT refuses paths outside it and accepts a subfolder', async () => {
    const ex = (await client.call(MOUNT_PROGRAM, MountProc.EXPORT)).body;
    expect(ex.bool()).toBe(true);
    expect(ex.string()).toBe(exp);
    expect(ex.bool()).toBe(false); // no groups
    expect(ex.bool()).toBe(false); // end of list
    expect((await client.call(MOUNT_PROGRAM, MountProc.MNT, new XdrWriter().string('/etc').toBuffer())).body.uint()).toBe(MountStat.NOENT);
    expect((await client.call(MOUNT_PROGRAM, MountProc.MNT, new XdrWriter().string(`${exp}/../`).toBuffer())).body.uint()).toBe(MountStat.NOENT);
    const sub = (await client.call(MOUNT_PROGRAM, MountProc.MNT, new XdrWriter().string(`${exp}/appdir`).toBuffer())).body;
    expect(sub.uint()).toBe(MountStat.OK);
    expect(sub.opaque().length).toBeGreaterThan(0);
    expect(sub.array((x) => x.uint())).toEqual([1]);
  });
});

describe('files', () => {
  it('CREATE as uid 1000 gives the file to the caller with the requested mode; WRITE/READ/COMMIT round-trip', async () => {
    const appdir = await lookup(rootFh, 'appdir');
    const c = await create(appdir.fh!, 'a.txt', CreateMode.UNCHECKED, { mode: 0o640 }, APP);
    expect(c.status).toBe(NfsStat.OK);
    const st = await stat(join(exp, 'appdir', 'a.txt'));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([1000, 1000, 0o640]);

    const data = Buffer.from('hello nfs\n');
    const w = await client.nfs(NfsProc.WRITE, fhArg(c.fh!).uhyper(0).uint(data.length).uint(0).opaque(data), APP);
    expect(w.uint()).toBe(NfsStat.OK);
    skipWcc(w);
    expect(w.uint()).toBe(data.length);
    expect(w.uint()).toBe(0); // UNSTABLE
    const verf = Buffer.from(w.fixed(8));
    const cm = await client.nfs(NfsProc.COMMIT, fhArg(c.fh!).uhyper(0).uint(0), APP);
    expect(cm.uint()).toBe(NfsStat.OK);
    skipWcc(cm);
    expect(Buffer.from(cm.fixed(8))).toEqual(verf);
    expect(await readFile(join(exp, 'appdir', 'a.txt'), 'utf8')).toBe('hello nfs\n');

    const rd = await client.nfs(NfsProc.READ, fhArg(c.fh!).uhyper(6).uint(100), APP);
    expect(rd.uint()).toBe(NfsStat.OK);
    skipPostOp(rd);
    expect(rd.uint()).toBe(4);
    expect(rd.bool()).toBe(true);
    expect(rd.opaque().toString()).toBe('nfs\n');
  });

  it('GUARDED refuses an existing name; EXCLUSIVE is idempotent for its verifier only', async () => {
    expect((await create(rootFh, 'root-file', CreateMode.GUARDED, {})).status).toBe(NfsStat.EXIST);
    const verf = Buffer.from('verifier');
    const first = await create(rootFh, 'excl', CreateMode.EXCLUSIVE, verf);
    const again = await create(rootFh, 'excl', CreateMode.EXCLUSIVE, verf);
    expect(first.status).toBe(NfsStat.OK);
    expect(again.status).toBe(NfsStat.OK);
    expect(again.fh).toEqual(first.fh);
    expect((await create(rootFh, 'excl', CreateMode.EXCLUSIVE, Buffer.from('other-vf'))).status).toBe(NfsStat.EXIST);
  });

  it('permissions: uid 1000 may not write a root 0644 file, chmod it, or create in a root 0755 folder; ACCESS says so', async () => {
    const f = await lookup(rootFh, 'root-file');
    const w = await client.nfs(NfsProc.WRITE, fhArg(f.fh!).uhyper(0).uint(1).uint(2).opaque(Buffer.from('x')), APP);
    expect(w.uint()).toBe(NfsStat.ACCES);
    const s = new XdrWriter().opaque(f.fh!);
    writeSattr(s, { mode: 0o777 });
    s.bool(false);
    expect((await client.nfs(NfsProc.SETATTR, s, APP)).uint()).toBe(NfsStat.PERM);
    expect((await create(rootFh, 'nope', CreateMode.UNCHECKED, {}, APP)).status).toBe(NfsStat.ACCES);
    const a = await client.nfs(NfsProc.ACCESS, fhArg(f.fh!).uint(0x3f), APP);
    expect(a.uint()).toBe(NfsStat.OK);
    skipPostOp(a);
    expect(a.uint()).toBe(ACCESS.READ);
    expect(await readFile(join(exp, 'root-file'), 'utf8')).toBe('root\n');
  });
});

describe('directories', () => {
  it('READDIR pages through 120 entries with a small count: every name exactly once, . and .. included', async () => {
    const d = join(exp, 'many');
    await mkdir(d);
    const names = Array.from({ length: 120 }, (_, i) => `entry-${i}`);
    for (const n of names) await writeFile(join(d, n), n);
    const dir = await lookup(rootFh, 'many');
    const seen: string[] = [];
    let cookie = 0n;
    for (let page = 0; page < 100; page++) {
      const r = await client.nfs(NfsProc.READDIR, fhArg(dir.fh!).uhyper(cookie).fixed(Buffer.alloc(8)).uint(600));
      expect(r.uint()).toBe(NfsStat.OK);
      skipPostOp(r);
      r.fixed(8);
      while (r.bool()) {
        r.uhyper();
        seen.push(r.string());
        cookie = r.uhyper();
      }
      if (r.bool()) break;
    }
    expect(seen.length).toBe(122);
    expect(new Set(seen)).toEqual(new Set(['.', '..', ...names]));
  });

  it('READDIRPLUS carries attributes and handles that GETATTR accepts', async () => {
    const dir = await lookup(rootFh, 'appdir');
    const r = await client.nfs(NfsProc.READDIRPLUS, fhArg(dir.fh!).uhyper(0).fixed(Buffer.alloc(8)).uint(8192).uint(65536));
    expect(r.uint()).toBe(NfsStat.OK);
    skipPostOp(r);
    r.fixed(8);
    const entries: { name: string; attr?: Fattr; fh?: Buffer }[] = [];
    while (r.bool()) {
      r.uhyper();
      const name = r.string();
      r.uhyper();
      const attr = r.optional(readFattr);
      const fh = r.optional((x) => Buffer.from(x.opaque()));
      entries.push({ name, ...(attr ? { attr } : {}), ...(fh ? { fh } : {}) });
    }
    expect(r.bool()).toBe(true);
    const a = entries.find((e) => e.name === 'a.txt');
    expect(a?.attr?.type).toBe(FileType.REG);
    expect((await getattr(a!.fh!)).attr?.size).toBe(10n);
  });

  it('a renamed folder keeps its children’s handles valid; a removed file’s handle is STALE; junk is BADHANDLE', async () => {
    await mkdir(join(exp, 'd1/inner'), { recursive: true });
    await writeFile(join(exp, 'd1/inner/f'), 'f');
    const d1 = await lookup(rootFh, 'd1');
    const inner = await lookup(d1.fh!, 'inner');
    const f = await lookup(inner.fh!, 'f');
    const mv = await client.nfs(NfsProc.RENAME, dirop(rootFh, 'd1').opaque(rootFh).string('d2'));
    expect(mv.uint()).toBe(NfsStat.OK);
    expect((await getattr(f.fh!)).status).toBe(NfsStat.OK);
    expect((await lookup(inner.fh!, 'f')).status).toBe(NfsStat.OK);
    const rmv = await client.nfs(NfsProc.REMOVE, dirop(inner.fh!, 'f'));
    expect(rmv.uint()).toBe(NfsStat.OK);
    expect((await getattr(f.fh!)).status).toBe(NfsStat.STALE);
    expect((await getattr(Buffer.from('not a handle'))).status).toBe(NfsStat.BADHANDLE);
  });

  it('symlinks: READLINK returns the target; LOOKUP through a symlink is NOTDIR; a folder swapped for a symlink to /etc goes STALE', async () => {
    const s = dirop(rootFh, 'esc');
    writeSattr(s, {});
    s.string('/etc');
    expect((await client.nfs(NfsProc.SYMLINK, s)).uint()).toBe(NfsStat.OK);
    const esc = await lookup(rootFh, 'esc');
    expect(esc.attr?.type).toBe(FileType.LNK);
    const rl = await client.nfs(NfsProc.READLINK, fhArg(esc.fh!));
    expect(rl.uint()).toBe(NfsStat.OK);
    skipPostOp(rl);
    expect(rl.string()).toBe('/etc');
    expect((await lookup(esc.fh!, 'passwd')).status).toBe(NfsStat.NOTDIR);

    await mkdir(join(exp, 'swap'));
    await writeFile(join(exp, 'swap', 'hostname'), 'mine');
    const swap = await lookup(rootFh, 'swap');
    const child = await lookup(swap.fh!, 'hostname');
    await rename(join(exp, 'swap'), join(tmp, 'moved-out'));
    await symlink('/etc', join(exp, 'swap'));
    expect((await getattr(child.fh!)).status).toBe(NfsStat.STALE);
    const rd = await client.nfs(NfsProc.READ, fhArg(child.fh!).uhyper(0).uint(100));
    expect(rd.uint()).toBe(NfsStat.STALE);
  });
});

describe('restarts', () => {
  it('handles survive a restart with the state file, and without it (found by searching the export)', async () => {
    await mkdir(join(exp, 'deep/er/est'), { recursive: true });
    await writeFile(join(exp, 'deep/er/est/file'), 'payload');
    let dir = rootFh;
    for (const n of ['deep', 'er', 'est']) dir = (await lookup(dir, n)).fh!;
    const file = (await lookup(dir, 'file')).fh!;

    for (const stateDir of [join(tmp, 'state'), undefined]) {
      client.close();
      await server.close();
      await startServer(stateDir);
      const a = await getattr(file);
      expect(a.status).toBe(NfsStat.OK);
      expect(a.attr?.size).toBe(7n);
      const rd = await client.nfs(NfsProc.READ, fhArg(file).uhyper(0).uint(100));
      expect(rd.uint()).toBe(NfsStat.OK);
      skipPostOp(rd);
      rd.uint();
      rd.bool();
      expect(rd.opaque().toString()).toBe('payload');
    }
  });

  it('FSINFO advertises 1 MiB transfers; FSSTAT and PATHCONF answer', async () => {
    const fi = await client.nfs(NfsProc.FSINFO, fhArg(rootFh));
    expect(fi.uint()).toBe(NfsStat.OK);
    skipPostOp(fi);
    expect([fi.uint(), fi.uint()]).toEqual([1 << 20, 1 << 20]);
    const fs = await client.nfs(NfsProc.FSSTAT, fhArg(rootFh));
    expect(fs.uint()).toBe(NfsStat.OK);
    skipPostOp(fs);
    expect(fs.uhyper()).toBeGreaterThan(0n);
    const pc = await client.nfs(NfsProc.PATHCONF, fhArg(rootFh));
    expect(pc.uint()).toBe(NfsStat.OK);
    skipPostOp(pc);
    pc.uint();
    expect(pc.uint()).toBe(255);
  });
});

describe('several exports', () => {
  it('EXPORT lists both, each mounts, handles stay within their export (cross-export RENAME is XDEV)', async () => {
    const a = join(tmp, 'multi-a');
    const b = join(tmp, 'multi-b');
    await mkdir(a);
    await mkdir(b);
    await writeFile(join(a, 'fa'), 'a');
    const two = await NfsServer.create({ exports: [a, b] });
    const { port: p2 } = await two.listen('127.0.0.1', 0, LOCAL);
    const c = await Client.connect(p2);
    try {
      const ex = (await c.call(MOUNT_PROGRAM, MountProc.EXPORT)).body;
      const listed: string[] = [];
      while (ex.bool()) {
        listed.push(ex.string());
        ex.bool();
      }
      expect(listed).toEqual([a, b]);
      const mnt = async (path: string) => {
        const r = (await c.call(MOUNT_PROGRAM, MountProc.MNT, new XdrWriter().string(path).toBuffer())).body;
        expect(r.uint()).toBe(MountStat.OK);
        return Buffer.from(r.opaque());
      };
      const ra = await mnt(a);
      const rb = await mnt(b);
      expect(ra).not.toEqual(rb);
      const mv = await c.call(NFS_PROGRAM, NfsProc.RENAME, dirop(ra, 'fa').opaque(rb).string('fb').toBuffer());
      expect(mv.body.uint()).toBe(NfsStat.XDEV);
      expect(await readFile(join(a, 'fa'), 'utf8')).toBe('a');
    } finally {
      c.close();
      await two.close();
    }
  });

  it('refuses to start on a missing or relative export, naming it', async () => {
    await expect(NfsServer.create({ exports: [join(tmp, 'missing')] })).rejects.toThrow(/missing/);
    await expect(NfsServer.create({ exports: ['relative/dir'] })).rejects.toThrow(/not an absolute path/);
  });
});

describe('who may connect (transport.ts)', () => {
  /** An NFS NULL call from the given local address and port: answered, or the connection closed unanswered. */
  function nullCall(port: number, localAddress: string, localPort?: number): Promise<'answered' | 'closed'> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, localAddress, ...(localPort ? { localPort } : {}) }, () => {
        s.write(encodeRecord(encodeCall({ xid: 7, prog: NFS_PROGRAM, vers: 3, proc: NfsProc.NULL, auth: ROOT })));
      });
      const decoder = new RecordDecoder();
      s.on('data', (chunk: Buffer) => {
        if (decoder.push(chunk).length > 0) {
          s.destroy();
          resolve('answered');
        }
      });
      s.on('close', () => resolve('closed'));
      s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve('closed') : reject(err)));
    });
  }

  it('a peer from another address is disconnected unanswered; the allowed one is served', async () => {
    const s = await NfsServer.create({ exports: [exp] });
    try {
      const { port: p } = await s.listen('127.0.0.1', 0, { allow: ['127.0.0.2'], reservedPortsOnly: false });
      expect(await nullCall(p, '127.0.0.1')).toBe('closed');
      expect(await nullCall(p, '127.0.0.2')).toBe('answered');
    } finally {
      await s.close();
    }
  });

  it('with reservedPortsOnly (the launcher, nfs-serve without --insecure) only a source port below 1024 is served', async () => {
    const s = await NfsServer.create({ exports: [exp] });
    try {
      const { port: p } = await s.listen('127.0.0.1', 0, { allow: ['127.0.0.1'], reservedPortsOnly: true });
      expect(await nullCall(p, '127.0.0.1')).toBe('closed'); // an ephemeral port: what an unprivileged process gets
      // a reserved port (this test runs as root, as the guest kernel's NFS client does)
      let answered: string | undefined;
      for (let reserved = 700 + (process.pid % 200); !answered && reserved < 1024; reserved++) {
        answered = await nullCall(p, '127.0.0.1', reserved).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'EADDRINUSE') return undefined;
          throw err;
        });
      }
      expect(answered).toBe('answered');
    } finally {
      await s.close();
    }
  });
});

describe('containment under a racing client (containment.ts)', () => {
  it('a folder swapped for a symlink to outside the export while requests run: nothing outside is created, removed or looked up', async () => {
    const outside = join(tmp, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret'), 'not yours');
    const ROUNDS = 150;
    const victims = Array.from({ length: ROUNDS }, (_, i) => `victim-${i}`);
    for (const v of victims) await writeFile(join(outside, v), 'v');
    await mkdir(join(exp, 'race'));
    await symlink(outside, join(exp, 'race-link'));
    const race = (await lookup(rootFh, 'race')).fh!;

    const swapper = join(tmp, 'swap');
    await run('gcc', ['-O2', '-o', swapper, projectPath('test', 'fixtures', 'nfs', 'swap.c')], { timeoutMs: 60_000 });
    const child = spawn(swapper, [join(exp, 'race'), join(exp, 'race-link')], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    let lookedUp = 0;
    try {
      for (let i = 0; i < ROUNDS; i++) {
        const mk = dirop(race, `m${i}`);
        writeSattr(mk, {});
        const sl = dirop(race, `s${i}`);
        writeSattr(sl, {});
        sl.string('x');
        const [, , , , found] = await Promise.all([
          create(race, `f${i}`, CreateMode.UNCHECKED, {}),
          client.nfs(NfsProc.MKDIR, mk),
          client.nfs(NfsProc.SYMLINK, sl),
          client.nfs(NfsProc.REMOVE, dirop(race, `victim-${i}`)),
          lookup(race, 'secret'),
        ]);
        if (found.status === NfsStat.OK) lookedUp++;
      }
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect((await readdir(outside)).sort()).toEqual(['secret', ...victims].sort());
    expect(lookedUp).toBe(0);
  });
});

describe('forged handles (export.ts)', () => {
  it('answered STALE in bounded work: at most one walk of the export for 60 unknown handles', async () => {
    await mkdir(join(exp, 'bulk'));
    for (let i = 0; i < 1500; i++) await writeFile(join(exp, 'bulk', `e${i}`), '');
    const root = decodeHandle(rootFh)!;
    const before = server.searchStats();
    for (let i = 0; i < 60; i++) {
      const forged = encodeHandle({ exportId: root.exportId, dev: root.dev, ino: 10n ** 12n + BigInt(i) });
      expect((await getattr(forged)).status).toBe(NfsStat.STALE);
    }
    const after = server.searchStats();
    expect(after.walks - before.walks).toBeLessThanOrEqual(1);
    expect(after.entries - before.entries).toBeLessThan(5000);
  });
});
