/** REMOVE and RMDIR (RFC 1813 3.3.12, 3.3.13): a name in a folder (sticky folders: only the owners). */
import type { FsObject } from '../fs.js';
import { checkName, NfsError, NfsStat, readDirOp, wccFrom } from '../proto.js';
import { attempt, attrOf, encodeResult, isDir, type Procedure, requireDirAccess, requireStickyOwner, type Result, type Wcc, writeWccOf } from './common.js';

function removeProc(rmdir: boolean): Procedure<{ dir: Buffer; name: string }, Result<Wcc, Wcc>> {
  return {
    decode: readDirOp,
    async handle(ctx, { dir: dfh, name }) {
      let dir: FsObject | undefined;
      return attempt(ctx, async () => {
        dir = await ctx.fs.resolve(dfh);
        if (name === '.' || name === '..') throw new NfsError(rmdir ? NfsStat.INVAL : NfsStat.ACCES);
        const bad = checkName(name);
        if (bad !== NfsStat.OK) throw new NfsError(bad === NfsStat.INVAL ? NfsStat.NOENT : bad);
        requireDirAccess(dir, ctx.caller, 3);
        const entry = await ctx.fs.child(dir, name);
        if (!entry) throw new NfsError(NfsStat.NOENT);
        requireStickyOwner(dir, entry, ctx.caller);
        if (rmdir && !isDir(entry)) throw new NfsError(NfsStat.NOTDIR);
        if (!rmdir && isDir(entry)) throw new NfsError(NfsStat.ISDIR);
        await ctx.fs.remove(dir, name, rmdir);
        return { before: wccFrom(dir.attr), after: await ctx.fs.attr(dir) };
      }, async () => ({ before: wccFrom(dir?.attr), after: await attrOf(ctx.fs, dir) }));
    },
    encode: (w, res) => encodeResult(w, res, writeWccOf, writeWccOf),
  };
}

export const remove = removeProc(false);
export const rmdir = removeProc(true);
