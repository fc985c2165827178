/** SETATTR (RFC 1813 3.3.2): size, owner, mode and times, with the ctime guard. */
import type { FsObject } from '../fs.js';
import { FileType, mayDo, NfsError, NfsStat, type NfsTime, readFh, readSattr, readTime, type Sattr, wccFrom } from '../proto.js';
import { attempt, attrOf, encodeResult, type Procedure, type Result, type Wcc, writeWccOf } from './common.js';

interface Args {
  fh: Buffer;
  s: Sattr;
  guard: NfsTime | undefined;
}

export const setattr: Procedure<Args, Result<Wcc, Wcc>> = {
  decode: (r) => ({ fh: readFh(r), s: readSattr(r), guard: r.optional(readTime) }),
  async handle(ctx, { fh, s, guard }) {
    const { fs, caller } = ctx;
    let obj: FsObject | undefined;
    return attempt(ctx, async () => {
      obj = await fs.resolve(fh);
      const a = obj.attr;
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

      if (s.size !== undefined) await fs.truncate(obj, s.size);
      if (s.uid !== undefined || s.gid !== undefined) await fs.chown(obj, s.uid ?? a.uid, s.gid ?? a.gid);
      if (s.mode !== undefined && a.type !== FileType.LNK) await fs.chmod(obj, s.mode);
      if (anyTime) {
        const now = Date.now() / 1000;
        const pick = (t: Sattr['atime'], cur: NfsTime) => (t.how === 'dont' ? cur.seconds + cur.nseconds / 1e9 : t.how === 'server' ? now : t.time.seconds + t.time.nseconds / 1e9);
        await fs.utimes(obj, pick(s.atime, a.atime), pick(s.mtime, a.mtime));
      }
      return { before: wccFrom(a), after: await fs.attr(obj) };
    }, async () => ({ before: wccFrom(obj?.attr), after: await attrOf(fs, obj) }));
  },
  encode: (w, res) => encodeResult(w, res, writeWccOf, writeWccOf),
};
