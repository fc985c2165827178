/** RENAME (RFC 1813 3.3.14): within one export; a folder never into itself; sticky folders: only the owners. */
import type { FsObject } from '../fs.js';
import { checkName, type DirOp, NfsError, NfsStat, readDirOp, wccFrom } from '../proto.js';
import type { XdrWriter } from '../xdr.js';
import { attempt, attrOf, encodeResult, isDir, type Procedure, requireDirAccess, requireStickyOwner, type Result, type Wcc, writeWccOf } from './common.js';

interface Both {
  from: Wcc;
  to: Wcc;
}

const writeBoth = (w: XdrWriter, r: Both) => {
  writeWccOf(w, r.from);
  writeWccOf(w, r.to);
};

export const rename: Procedure<{ from: DirOp; to: DirOp }, Result<Both, Both>> = {
  decode: (r) => ({ from: readDirOp(r), to: readDirOp(r) }),
  async handle(ctx, { from, to }) {
    const { fs, caller } = ctx;
    let fromDir: FsObject | undefined;
    let toDir: FsObject | undefined;
    return attempt(ctx, async () => {
      fromDir = await fs.resolve(from.dir);
      toDir = await fs.resolve(to.dir);
      if (fromDir.exportId !== toDir.exportId) throw new NfsError(NfsStat.XDEV);
      for (const n of [from.name, to.name]) {
        if (n === '.' || n === '..') throw new NfsError(NfsStat.INVAL);
        const bad = checkName(n);
        if (bad !== NfsStat.OK) throw new NfsError(bad);
      }
      requireDirAccess(fromDir, caller, 3);
      requireDirAccess(toDir, caller, 3);
      const src = await fs.child(fromDir, from.name);
      if (!src) throw new NfsError(NfsStat.NOENT);
      requireStickyOwner(fromDir, src, caller);
      const dstRel = toDir.rel === '' ? to.name : `${toDir.rel}/${to.name}`;
      if (isDir(src) && dstRel !== src.rel && dstRel.startsWith(`${src.rel}/`)) throw new NfsError(NfsStat.INVAL);
      await fs.rename(fromDir, from.name, toDir, to.name);
      return {
        from: { before: wccFrom(fromDir.attr), after: await fs.attr(fromDir) },
        to: { before: wccFrom(toDir.attr), after: await fs.attr(toDir) },
      };
    }, async () => ({
      from: { before: wccFrom(fromDir?.attr), after: await attrOf(fs, fromDir) },
      to: { before: wccFrom(toDir?.attr), after: await attrOf(fs, toDir) },
    }));
  },
  encode: (w, res) => encodeResult(w, res, writeBoth, writeBoth),
};
