/** MKNOD (RFC 1813 3.3.11): not supported (devices, sockets and FIFOs are not made over NFS here). */
import { type FsObject } from '../fs.js';
import { NfsError, NfsStat, readDirOp, wccFrom } from '../proto.js';
import { attempt, attrOf, encodeResult, type Procedure, type Result, type Wcc, writeWccOf } from './common.js';

export const mknod: Procedure<{ dir: Buffer }, Result<object, Wcc>> = {
  decode: (r) => ({ dir: readDirOp(r).dir }),
  async handle(ctx, a) {
    let dir: FsObject | undefined;
    return attempt(ctx, async () => {
      dir = await ctx.fs.resolve(a.dir);
      throw new NfsError(NfsStat.NOTSUPP);
    }, async () => ({ before: wccFrom(dir?.attr), after: await attrOf(ctx.fs, dir) }));
  },
  encode: (w, res) => encodeResult(w, res, () => undefined, writeWccOf),
};
