/** GETATTR (RFC 1813 3.3.1): the attributes of an object. */
import { type Fattr, readFh, writeFattr } from '../proto.js';
import { attempt, encodeResult, type Procedure, type Result } from './common.js';

type Res = Result<{ attr: Fattr }, object>;

export const getattr: Procedure<{ fh: Buffer }, Res> = {
  decode: (r) => ({ fh: readFh(r) }),
  handle: (ctx, a) => attempt(ctx, async () => ({ attr: (await ctx.fs.resolve(a.fh)).attr }), () => ({})),
  encode: (w, res) => encodeResult(w, res, (x, r) => writeFattr(x, r.attr), () => undefined),
};
