/**
 * NfsFs over the host's folders (the exports), every path relative to a descriptor (containment.ts). HostFs lives as
 * long as the server (exports, open-file cache); each request gets a HostSession, whose descriptors are closed when
 * the request is answered.
 */
import type { BigIntStats } from 'node:fs';
import { constants as C } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, open, readdir, readlink, rename, rmdir, statfs, symlink, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { normalize } from 'node:path';
import { at, fdPath, isComponent, openAt, sameObject, Scope, walk } from './containment.js';
import type { NfsExport } from './export.js';
import { OpenFiles } from './files.js';
import type { ExportInfo, FsObject, FsStat, NfsFs } from './fs.js';
import { joinRel, parentRel } from './handles.js';
import { decodeHandle, encodeHandle, type Fattr, fattrFromStat, FileType, NfsError, NfsStat } from './proto.js';

class HostObject implements FsObject {
  readonly handle: Buffer;
  readonly attr: Fattr;

  constructor(
    readonly exp: NfsExport,
    readonly rel: string,
    readonly st: BigIntStats,
    /** O_PATH descriptor of the object itself; opened on demand for objects listed by name */
    public fd: FileHandle | undefined,
    /** the directory holding it (undefined for an export's root) and its name there */
    readonly parent: FileHandle | undefined,
    readonly name: string,
  ) {
    this.handle = encodeHandle({ exportId: exp.id, dev: st.dev, ino: st.ino });
    this.attr = fattrFromStat(st, exp.fsid);
  }

  get exportId(): number {
    return this.exp.id;
  }
}

const mine = (o: FsObject): HostObject => {
  if (!(o instanceof HostObject)) throw new Error('not an object of this filesystem');
  return o;
};

const isDir = (o: HostObject) => o.attr.type === FileType.DIR;

export class HostFs {
  private readonly byId = new Map<number, NfsExport>();
  readonly files = new OpenFiles();

  constructor(
    readonly exportList: readonly NfsExport[],
    readonly log: (line: string) => void,
  ) {
    for (const e of exportList) this.byId.set(e.id, e);
  }

  exportById(id: number): NfsExport | undefined {
    return this.byId.get(id);
  }

  session(): HostSession {
    return new HostSession(this);
  }

  /** Persist the handle maps' changes (before a reply that carries new handles goes out). */
  async flush(): Promise<void> {
    for (const e of this.exportList) await e.table.flush();
  }

  async close(): Promise<void> {
    await this.files.close();
    for (const e of this.exportList) await e.close();
  }
}

export class HostSession implements NfsFs {
  private readonly scope = new Scope();

  constructor(private readonly host: HostFs) {}

  close(): Promise<void> {
    return this.scope.close();
  }

  exports(): readonly ExportInfo[] {
    return this.host.exportList.map((e) => ({ path: e.path }));
  }

  async mount(dirpath: string): Promise<FsObject> {
    const want = normalize(dirpath).replace(/\/+$/, '') || '/';
    for (const e of this.host.exportList) {
      for (const base of [e.path, e.real]) {
        if (want !== base && !want.startsWith(base === '/' ? '/' : `${base}/`)) continue;
        const rel = want === base ? '' : want.slice(base === '/' ? 1 : base.length + 1);
        if (rel !== '' && !rel.split('/').every(isComponent)) throw new NfsError(NfsStat.INVAL);
        const o = await this.open(e, rel).catch((err: unknown) => {
          throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? new NfsError(NfsStat.NOENT) : err;
        });
        if (!isDir(o)) throw new NfsError(NfsStat.NOTDIR);
        return o;
      }
    }
    throw new NfsError(NfsStat.NOENT);
  }

  /** The object at rel, walked from the export's root descriptor; remembered in the handle map. */
  private async open(e: NfsExport, rel: string): Promise<HostObject> {
    const w = await walk(this.scope, e.root, rel);
    if (rel !== '') e.table.remember(w.st.dev, w.st.ino, rel);
    return new HostObject(e, rel, w.st, w.fd, w.parent, w.name);
  }

  /** The object at rel if it still is (dev, ino); undefined otherwise. */
  private async openIfSame(e: NfsExport, rel: string, key: { dev: bigint; ino: bigint }): Promise<HostObject | undefined> {
    try {
      const w = await walk(this.scope, e.root, rel);
      return sameObject(w.st, key) ? new HostObject(e, rel, w.st, w.fd, w.parent, w.name) : undefined;
    } catch {
      return undefined; // moved or removed behind our back
    }
  }

  async resolve(fh: Buffer): Promise<FsObject> {
    const key = decodeHandle(fh);
    if (!key) throw new NfsError(NfsStat.BADHANDLE);
    const e = this.host.exportById(key.exportId);
    if (!e) throw new NfsError(NfsStat.STALE);
    if (key.dev === e.rootDev && key.ino === e.rootIno) return this.open(e, '');
    const known = e.table.lookup(key.dev, key.ino);
    const o = known !== undefined ? await this.openIfSame(e, known, key) : undefined;
    if (o) return o;
    const found = await e.search(key.dev, key.ino);
    const again = found !== undefined ? await this.openIfSame(e, found, key) : undefined;
    if (!again) {
      e.table.forget(key.dev, key.ino);
      throw new NfsError(NfsStat.STALE);
    }
    this.host.log(`handle ${key.dev}:${key.ino} was not in the map: found ${found} by searching ${e.path}`);
    e.table.remember(key.dev, key.ino, again.rel);
    return again;
  }

  /** The object's own O_PATH descriptor (opened by name in its folder, checked to be the same inode). */
  private async objectFd(o: HostObject): Promise<FileHandle> {
    if (o.fd) return o.fd;
    if (!o.parent) throw new NfsError(NfsStat.STALE);
    const fd = await openAt(this.scope, o.parent, o.name, false);
    if (!sameObject(await fd.stat({ bigint: true }), o.st)) throw new NfsError(NfsStat.STALE);
    o.fd = fd;
    return fd;
  }

  /** The descriptor of a folder, to work on names inside it. */
  private async dirFd(dir: HostObject): Promise<FileHandle> {
    if (!isDir(dir)) throw new NfsError(NfsStat.NOTDIR);
    return this.objectFd(dir);
  }

  async lookup(dirObj: FsObject, name: string): Promise<FsObject> {
    const dir = mine(dirObj);
    if (name === '.' || name === '') return dir;
    if (name === '..') return this.open(dir.exp, parentRel(dir.rel));
    const o = await this.child(dir, name);
    if (!o) throw new NfsError(NfsStat.NOENT);
    return o;
  }

  async child(dirObj: FsObject, name: string): Promise<FsObject | undefined> {
    const dir = mine(dirObj);
    const parent = await this.dirFd(dir);
    let st: BigIntStats;
    try {
      st = await lstat(at(parent, name), { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const rel = joinRel(dir.rel, name);
    dir.exp.table.remember(st.dev, st.ino, rel);
    return new HostObject(dir.exp, rel, st, undefined, parent, name);
  }

  async attr(obj: FsObject): Promise<Fattr | undefined> {
    const o = mine(obj);
    try {
      return fattrFromStat(await (await this.objectFd(o)).stat({ bigint: true }), o.exp.fsid);
    } catch {
      return undefined;
    }
  }

  async readlink(obj: FsObject): Promise<Buffer> {
    const o = mine(obj);
    if (!o.parent) throw new NfsError(NfsStat.INVAL);
    // a symlink's text is read by name (its O_PATH descriptor cannot be read); the name must still be this link
    const target = await readlink(at(o.parent, o.name), { encoding: 'buffer' });
    if (!sameObject(await lstat(at(o.parent, o.name), { bigint: true }), o.st)) throw new NfsError(NfsStat.STALE);
    return target;
  }

  private withFile<T>(o: HostObject, writable: boolean, fn: (fd: FileHandle) => Promise<T>): Promise<T> {
    return this.host.files.with(o.st, async () => fdPath(await this.objectFd(o)), writable, fn);
  }

  async read(obj: FsObject, offset: bigint, count: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(count);
    const got = await this.withFile(mine(obj), false, async (fd) => {
      let n = 0;
      while (n < count) {
        const { bytesRead } = await fd.read(buf, n, count - n, Number(offset) + n);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      return n;
    });
    return buf.subarray(0, got);
  }

  async write(obj: FsObject, offset: bigint, data: Buffer, sync: boolean): Promise<void> {
    await this.withFile(mine(obj), true, async (fd) => {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fd.write(data, done, data.length - done, Number(offset) + done);
        done += bytesWritten;
      }
      if (sync) await fd.datasync();
    });
  }

  async commit(obj: FsObject): Promise<void> {
    await this.withFile(mine(obj), false, (fd) => fd.sync());
  }

  async truncate(obj: FsObject, size: bigint): Promise<void> {
    await this.withFile(mine(obj), true, (fd) => fd.truncate(Number(size)));
  }

  // chown and utimes through the magic link act on the object itself, a symlink included (never on its target)
  async chown(obj: FsObject, uid: number, gid: number): Promise<void> {
    await chown(fdPath(await this.objectFd(mine(obj))), uid, gid);
  }

  async chmod(obj: FsObject, mode: number): Promise<void> {
    const o = mine(obj);
    if (o.attr.type === FileType.LNK) throw new NfsError(NfsStat.INVAL);
    await chmod(fdPath(await this.objectFd(o)), mode);
  }

  async utimes(obj: FsObject, atime: number, mtime: number): Promise<void> {
    await utimes(fdPath(await this.objectFd(mine(obj))), atime, mtime);
  }

  /** A created object: its own descriptor, checked against what the name now holds. */
  private async created(dir: HostObject, parent: FileHandle, name: string, fd: FileHandle): Promise<HostObject> {
    const st = await fd.stat({ bigint: true });
    const rel = joinRel(dir.rel, name);
    dir.exp.table.remember(st.dev, st.ino, rel);
    return new HostObject(dir.exp, rel, st, fd, parent, name);
  }

  async openFile(dirObj: FsObject, name: string, exclusive: boolean): Promise<{ obj: FsObject; created: boolean }> {
    const dir = mine(dirObj);
    const parent = await this.dirFd(dir);
    try {
      // O_EXCL: the descriptor is of the file this call created, whatever the name points to a moment later
      const fd = this.scope.track(await open(at(parent, name), C.O_CREAT | C.O_EXCL | C.O_WRONLY | C.O_NOFOLLOW, 0o600));
      return { obj: await this.created(dir, parent, name, fd), created: true };
    } catch (err) {
      if (exclusive || (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const fd = this.scope.track(await open(at(parent, name), C.O_WRONLY | C.O_NOFOLLOW));
    return { obj: await this.created(dir, parent, name, fd), created: false };
  }

  async mkdir(dirObj: FsObject, name: string): Promise<FsObject> {
    const dir = mine(dirObj);
    const parent = await this.dirFd(dir);
    await mkdir(at(parent, name), 0o700);
    // mkdir gives no descriptor: open what the name holds now, never through a symlink
    const fd = await openAt(this.scope, parent, name, true);
    return this.created(dir, parent, name, fd);
  }

  async symlink(dirObj: FsObject, name: string, target: string): Promise<FsObject> {
    const dir = mine(dirObj);
    const parent = await this.dirFd(dir);
    await symlink(target, at(parent, name));
    const fd = await openAt(this.scope, parent, name, false);
    const o = await this.created(dir, parent, name, fd);
    if (o.attr.type !== FileType.LNK) throw new NfsError(NfsStat.STALE); // replaced in between: not ours to adopt
    return o;
  }

  async remove(dirObj: FsObject, name: string, isDirectory: boolean): Promise<void> {
    const dir = mine(dirObj);
    const parent = await this.dirFd(dir);
    const path = at(parent, name);
    const st = await lstat(path, { bigint: true });
    if (isDirectory) await rmdir(path);
    else await unlink(path);
    if (st.isDirectory() || st.nlink <= 1n) {
      dir.exp.table.forget(st.dev, st.ino);
      await this.host.files.evict(st.dev, st.ino);
    }
  }

  async rename(fromObj: FsObject, fromName: string, toObj: FsObject, toName: string): Promise<void> {
    const fromDir = mine(fromObj);
    const toDir = mine(toObj);
    if (fromDir.exp !== toDir.exp) throw new NfsError(NfsStat.XDEV);
    const src = at(await this.dirFd(fromDir), fromName);
    const dst = at(await this.dirFd(toDir), toName);
    const srcSt = await lstat(src, { bigint: true });
    const replaced = await lstat(dst, { bigint: true }).catch(() => undefined);
    await rename(src, dst);
    const table = fromDir.exp.table;
    if (replaced && !sameObject(replaced, srcSt) && (replaced.isDirectory() || replaced.nlink <= 1n)) {
      table.forget(replaced.dev, replaced.ino);
      await this.host.files.evict(replaced.dev, replaced.ino);
    }
    const from = joinRel(fromDir.rel, fromName);
    const to = joinRel(toDir.rel, toName);
    table.renamed(from, to);
    table.remember(srcSt.dev, srcSt.ino, to);
  }

  async link(obj: FsObject, dirObj: FsObject, name: string): Promise<void> {
    const o = mine(obj);
    const dir = mine(dirObj);
    if (o.exp !== dir.exp) throw new NfsError(NfsStat.XDEV);
    if (!o.parent) throw new NfsError(NfsStat.ISDIR); // an export's root
    const dst = at(await this.dirFd(dir), name);
    // link(2) names the source by path (it does not follow it); the new name must then hold the handle's inode
    await link(at(o.parent, o.name), dst);
    if (!sameObject(await lstat(dst, { bigint: true }), o.st)) {
      await unlink(dst).catch(() => undefined);
      throw new NfsError(NfsStat.STALE);
    }
  }

  async readdir(dirObj: FsObject): Promise<string[]> {
    return readdir(fdPath(await this.dirFd(mine(dirObj))));
  }

  async statfs(obj: FsObject): Promise<FsStat> {
    const s = await statfs(fdPath(await this.objectFd(mine(obj))), { bigint: true });
    return { blocks: s.blocks, bsize: s.bsize, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
  }
}
