/** READLINK (RFC 1813 3.3.5): a symlink's target, as stored (never resolved by the server). */
import type { FsObject } from '../fs.js';
import { type Fattr, FileType, NfsError, NfsStat, readFh, writePostOpAttr } from '../proto.js';
import { attempt, encodeResult, type PostOp, type Procedure, type Result, writePostOp } from './common.js';

export const readlink: Procedure<{ fh: Buffer }, Result<{ attr: Fattr; target: Buffer }, PostOp>> = {
  decode: (r) => ({ fh: readFh(r) }),
  async handle(ctx, a) {
    let obj: FsObject | undefined;
    return attempt(ctx, async () => {
      obj = await ctx.fs.resolve(a.fh);
      if (obj.attr.type !== FileType.LNK) throw new NfsError(NfsStat.INVAL);
      return { attr: obj.attr, target: await ctx.fs.readlink(obj) };
    }, () => ({ attr: obj?.attr }));
  },
  encode: (w, res) =>
    encodeResult(w, res, (x, r) => {
      writePostOpAttr(x, r.attr);
      x.opaque(r.target);
    }, writePostOp),
};
