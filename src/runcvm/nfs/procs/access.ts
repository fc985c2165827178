/** ACCESS (RFC 1813 3.3.4): which of the requested rights the caller has, from the mode bits. */
import type { FsObject } from '../fs.js';
import { accessFor, type Fattr, readFh, writePostOpAttr } from '../proto.js';
import { attempt, encodeResult, type PostOp, type Procedure, type Result, writePostOp } from './common.js';

export const access: Procedure<{ fh: Buffer; requested: number }, Result<{ attr: Fattr; granted: number }, PostOp>> = {
  decode: (r) => ({ fh: readFh(r), requested: r.uint() }),
  async handle(ctx, a) {
    let obj: FsObject | undefined;
    return attempt(ctx, async () => {
      obj = await ctx.fs.resolve(a.fh);
      return { attr: obj.attr, granted: accessFor(obj.attr, ctx.caller, a.requested) };
    }, () => ({ attr: obj?.attr }));
  },
  encode: (w, res) =>
    encodeResult(w, res, (x, r) => {
      writePostOpAttr(x, r.attr);
      x.uint(r.granted);
    }, writePostOp),
};
