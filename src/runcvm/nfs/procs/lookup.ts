/** LOOKUP (RFC 1813 3.3.3): a name in a folder, never through a symlink; `..` stays inside the export. */
import type { FsObject } from '../fs.js';
import { checkName, type Fattr, NfsError, NfsStat, readDirOp, writePostOpAttr } from '../proto.js';
import { attempt, encodeResult, type PostOp, type Procedure, requireDirAccess, type Result, writePostOp } from './common.js';

interface Ok {
  fh: Buffer;
  attr: Fattr;
  dirAttr: Fattr;
}

export const lookup: Procedure<{ dir: Buffer; name: string }, Result<Ok, PostOp>> = {
  decode: readDirOp,
  async handle(ctx, { dir: dfh, name }) {
    let dir: FsObject | undefined;
    return attempt(ctx, async () => {
      dir = await ctx.fs.resolve(dfh);
      requireDirAccess(dir, ctx.caller, 1);
      if (name !== '.' && name !== '' && name !== '..') {
        const bad = checkName(name);
        if (bad !== NfsStat.OK) throw new NfsError(bad === NfsStat.INVAL ? NfsStat.NOENT : bad);
      }
      const o = await ctx.fs.lookup(dir, name);
      return { fh: o.handle, attr: o.attr, dirAttr: dir.attr };
    }, () => ({ attr: dir?.attr }));
  },
  encode: (w, res) =>
    encodeResult(w, res, (x, r) => {
      x.opaque(r.fh);
      writePostOpAttr(x, r.attr);
      writePostOpAttr(x, r.dirAttr);
    }, writePostOp),
};
