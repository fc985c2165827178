/** COMMIT (RFC 1813 3.3.21): UNSTABLE writes to stable storage; the verifier tells the client the server kept them. */
import type { FsObject } from '../fs.js';
import { FileType, readFh, wccFrom } from '../proto.js';
import { attempt, attrOf, encodeResult, type Procedure, type Result, type Wcc, writeWccOf } from './common.js';

export const commit: Procedure<{ fh: Buffer }, Result<Wcc & { verifier: Buffer }, Wcc>> = {
  decode(r) {
    const fh = readFh(r);
    r.uhyper(); // offset and count: the whole file is synced
    r.uint();
    return { fh };
  },
  async handle(ctx, a) {
    let obj: FsObject | undefined;
    return attempt(ctx, async () => {
      obj = await ctx.fs.resolve(a.fh);
      if (obj.attr.type === FileType.REG) await ctx.fs.commit(obj);
      return { before: wccFrom(obj.attr), after: await ctx.fs.attr(obj), verifier: ctx.writeVerifier };
    }, async () => ({ before: wccFrom(obj?.attr), after: await attrOf(ctx.fs, obj) }));
  },
  encode: (w, res) =>
    encodeResult(w, res, (x, r) => {
      writeWccOf(x, r);
      x.fixed(r.verifier);
    }, writeWccOf),
};
