/** FSSTAT, FSINFO and PATHCONF (RFC 1813 3.3.18-3.3.20): what the filesystem holds and what the server allows. */
import type { FsObject, FsStat } from '../fs.js';
import { type Fattr, FSF, readFh, writePostOpAttr } from '../proto.js';
import type { XdrWriter } from '../xdr.js';
import { attempt, encodeResult, type NfsContext, type PostOp, type Procedure, type Result, writePostOp } from './common.js';
import { MAX_IO } from './read.js';

/** A procedure on one object whose success body follows its post_op_attr. */
function onObject<T>(get: (ctx: NfsContext, o: FsObject) => Promise<T>, write: (w: XdrWriter, v: T) => void): Procedure<{ fh: Buffer }, Result<{ attr: Fattr; value: T }, PostOp>> {
  return {
    decode: (r) => ({ fh: readFh(r) }),
    async handle(ctx, a) {
      let obj: FsObject | undefined;
      return attempt(ctx, async () => {
        obj = await ctx.fs.resolve(a.fh);
        return { attr: obj.attr, value: await get(ctx, obj) };
      }, () => ({ attr: obj?.attr }));
    },
    encode: (w, res) =>
      encodeResult(w, res, (x, r) => {
        writePostOpAttr(x, r.attr);
        write(x, r.value);
      }, writePostOp),
  };
}

export const fsstat = onObject<FsStat>((ctx, o) => ctx.fs.statfs(o), (w, s) => {
  w.uhyper(s.blocks * s.bsize).uhyper(s.bfree * s.bsize).uhyper(s.bavail * s.bsize);
  w.uhyper(s.files).uhyper(s.ffree).uhyper(s.ffree).uint(0);
});

export const fsinfo = onObject<null>(async () => null, (w) => {
  w.uint(MAX_IO).uint(MAX_IO).uint(4096); // rtmax rtpref rtmult
  w.uint(MAX_IO).uint(MAX_IO).uint(4096); // wtmax wtpref wtmult
  w.uint(64 * 1024); // dtpref
  w.uhyper(0x7fffffffffffffffn); // maxfilesize
  w.uint(0).uint(1); // time_delta: 1 ns
  w.uint(FSF.LINK | FSF.SYMLINK | FSF.HOMOGENEOUS | FSF.CANSETTIME);
});

export const pathconf = onObject<null>(async () => null, (w) => {
  w.uint(65000).uint(255).bool(true).bool(true).bool(false).bool(true); // linkmax namemax no_trunc chown_restricted case_insensitive case_preserving
});
