/** MKDIR (RFC 1813 3.3.9): a folder owned by the caller, mode as asked (0755 by default). */
import { readDirOp, readSattr, type Sattr } from '../proto.js';
import { adopt, type Procedure, type Result, type Wcc } from './common.js';
import { encodeMade, type Made, makeIn } from './create.js';

export const mkdir: Procedure<{ dir: Buffer; name: string; sattr: Sattr }, Result<Made, Wcc>> = {
  decode: (r) => ({ ...readDirOp(r), sattr: readSattr(r) }),
  handle: (ctx, { dir, name, sattr }) =>
    makeIn(ctx, dir, name, async (d) => {
      const o = await ctx.fs.mkdir(d, name);
      await adopt(ctx.fs, o, d, ctx.caller, sattr, 0o755);
      return o;
    }),
  encode: encodeMade,
};
