/** WRITE (RFC 1813 3.3.7): UNSTABLE writes go to the page cache (COMMIT syncs them); stable ones are synced now. */
import type { FsObject } from '../fs.js';
import { FileType, mayDo, NfsError, NfsStat, readFh, StableHow, wccFrom } from '../proto.js';
import { attempt, attrOf, encodeResult, type Procedure, type Result, type Wcc, writeWccOf } from './common.js';
import { MAX_IO } from './read.js';

interface Args {
  fh: Buffer;
  offset: bigint;
  count: number;
  stable: StableHow;
  data: Buffer;
}

interface Ok extends Wcc {
  count: number;
  committed: StableHow;
  verifier: Buffer;
}

export const write: Procedure<Args, Result<Ok, Wcc>> = {
  decode: (r) => ({ fh: readFh(r), offset: r.uhyper(), count: r.uint(), stable: r.uint() as StableHow, data: r.opaque(MAX_IO) }),
  async handle(ctx, { fh, offset, count, stable, data }) {
    let obj: FsObject | undefined;
    return attempt(ctx, async () => {
      obj = await ctx.fs.resolve(fh);
      const a = obj.attr;
      if (a.type === FileType.DIR) throw new NfsError(NfsStat.ISDIR);
      if (a.type !== FileType.REG) throw new NfsError(NfsStat.INVAL);
      if (ctx.caller.uid !== a.uid && !mayDo(a, ctx.caller, 2)) throw new NfsError(NfsStat.ACCES);
      const n = Math.min(count, data.length);
      await ctx.fs.write(obj, offset, data.subarray(0, n), stable !== StableHow.UNSTABLE);
      const committed = stable === StableHow.UNSTABLE ? StableHow.UNSTABLE : StableHow.FILE_SYNC;
      return { before: wccFrom(a), after: await ctx.fs.attr(obj), count: n, committed, verifier: ctx.writeVerifier };
    }, async () => ({ before: wccFrom(obj?.attr), after: await attrOf(ctx.fs, obj) }));
  },
  encode: (w, res) =>
    encodeResult(w, res, (x, r) => {
      writeWccOf(x, r);
      x.uint(r.count).uint(r.committed).fixed(r.verifier);
    }, writeWccOf),
};
