/** SYMLINK (RFC 1813 3.3.10): a symlink owned by the caller; its target is text the server never follows. */
import { MAX_PATH, readDirOp, readSattr, type Sattr } from '../proto.js';
import { adopt, type Procedure, type Result, type Wcc } from './common.js';
import { encodeMade, type Made, makeIn } from './create.js';

export const symlink: Procedure<{ dir: Buffer; name: string; sattr: Sattr; target: string }, Result<Made, Wcc>> = {
  decode: (r) => ({ ...readDirOp(r), sattr: readSattr(r), target: r.string(MAX_PATH) }),
  handle: (ctx, { dir, name, sattr, target }) =>
    makeIn(ctx, dir, name, async (d) => {
      const o = await ctx.fs.symlink(d, name, target);
      await adopt(ctx.fs, o, d, ctx.caller, sattr, undefined);
      return o;
    }),
  encode: encodeMade,
};
