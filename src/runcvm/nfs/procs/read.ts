/** READ (RFC 1813 3.3.6): up to MAX_IO bytes of a regular file; owners may always read their own files (knfsd). */
import type { FsObject } from '../fs.js';
import { type Fattr, FileType, mayDo, NfsError, NfsStat, readFh, writePostOpAttr } from '../proto.js';
import { attempt, encodeResult, type PostOp, type Procedure, type Result, writePostOp } from './common.js';

/** the largest READ and WRITE (FSINFO advertises it) */
export const MAX_IO = 1024 * 1024;

interface Args {
  fh: Buffer;
  offset: bigint;
  count: number;
}

export const read: Procedure<Args, Result<{ attr: Fattr; data: Buffer; eof: boolean }, PostOp>> = {
  decode: (r) => ({ fh: readFh(r), offset: r.uhyper(), count: Math.min(r.uint(), MAX_IO) }),
  async handle(ctx, { fh, offset, count }) {
    let obj: FsObject | undefined;
    return attempt(ctx, async () => {
      obj = await ctx.fs.resolve(fh);
      const a = obj.attr;
      if (a.type === FileType.DIR) throw new NfsError(NfsStat.ISDIR);
      if (a.type !== FileType.REG) throw new NfsError(NfsStat.INVAL);
      if (ctx.caller.uid !== a.uid && !mayDo(a, ctx.caller, 4)) throw new NfsError(NfsStat.ACCES);
      const data = count > 0 && offset < a.size ? await ctx.fs.read(obj, offset, count) : Buffer.alloc(0);
      const after = (await ctx.fs.attr(obj)) ?? a;
      return { attr: after, data, eof: offset + BigInt(data.length) >= after.size };
    }, () => ({ attr: obj?.attr }));
  },
  encode: (w, res) =>
    encodeResult(w, res, (x, r) => {
      writePostOpAttr(x, r.attr);
      x.uint(r.data.length).bool(r.eof).opaque(r.data);
    }, writePostOp),
};
