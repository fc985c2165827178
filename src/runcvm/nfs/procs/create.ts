/**
 * CREATE (RFC 1813 3.3.8): UNCHECKED (create or open, truncating when asked), GUARDED (refuses an existing name) and
 * EXCLUSIVE (the verifier kept in the new file's times, so a retransmitted call finds its own file). makeIn() is
 * the part MKDIR, SYMLINK and MKNOD share: the folder's checks, the new object's handle and attributes, the wcc data.
 */
import type { FsObject } from '../fs.js';
import { checkName, CreateMode, type Fattr, FileType, mayDo, NfsError, NfsStat, readDirOp, readSattr, type Sattr, wccFrom, writePostOpAttr, writePostOpFh } from '../proto.js';
import type { XdrWriter } from '../xdr.js';
import { adopt, attempt, attrOf, encodeResult, type NfsContext, requireDirAccess, type Result, type Wcc, writeWccOf, type Procedure } from './common.js';

export interface Made extends Wcc {
  fh: Buffer;
  attr: Fattr | undefined;
}

/** Resolve the folder, check the name and the caller's right to add to it, make the object, answer as CREATE does. */
export async function makeIn(ctx: NfsContext, dirFh: Buffer, name: string, make: (dir: FsObject) => Promise<FsObject>): Promise<Result<Made, Wcc>> {
  let dir: FsObject | undefined;
  return attempt(ctx, async () => {
    dir = await ctx.fs.resolve(dirFh);
    const bad = checkName(name);
    if (bad !== NfsStat.OK) throw new NfsError(bad === NfsStat.INVAL && (name === '.' || name === '..') ? NfsStat.EXIST : bad);
    requireDirAccess(dir, ctx.caller, 3);
    const o = await make(dir);
    return { fh: o.handle, attr: await ctx.fs.attr(o), before: wccFrom(dir.attr), after: await ctx.fs.attr(dir) };
  }, async () => ({ before: wccFrom(dir?.attr), after: await attrOf(ctx.fs, dir) }));
}

export function encodeMade(w: XdrWriter, res: Result<Made, Wcc>): void {
  encodeResult(w, res, (x, r) => {
    writePostOpFh(x, r.fh);
    writePostOpAttr(x, r.attr);
    writeWccOf(x, r);
  }, writeWccOf);
}

type How = { mode: CreateMode.UNCHECKED | CreateMode.GUARDED; sattr: Sattr } | { mode: CreateMode.EXCLUSIVE; verifier: Buffer };

export const create: Procedure<{ dir: Buffer; name: string; how: How }, Result<Made, Wcc>> = {
  decode(r) {
    const { dir, name } = readDirOp(r);
    const mode = r.uint() as CreateMode;
    const how: How = mode === CreateMode.EXCLUSIVE ? { mode, verifier: Buffer.from(r.fixed(8)) } : { mode: mode === CreateMode.GUARDED ? CreateMode.GUARDED : CreateMode.UNCHECKED, sattr: readSattr(r) };
    return { dir, name, how };
  },
  handle: (ctx, { dir, name, how }) =>
    makeIn(ctx, dir, name, async (d) => {
      const { fs, caller } = ctx;
      if (how.mode === CreateMode.EXCLUSIVE) {
        const vAtime = how.verifier.readUInt32BE(0);
        const vMtime = how.verifier.readUInt32BE(4);
        try {
          const { obj } = await fs.openFile(d, name, true);
          await adopt(fs, obj, d, caller, undefined, 0o600);
          await fs.utimes(obj, vAtime, vMtime);
          return obj;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          // a retransmitted exclusive create finds its own verifier in the times
          const o = await fs.child(d, name);
          if (!(o && o.attr.type === FileType.REG && o.attr.atime.seconds === vAtime && o.attr.mtime.seconds === vMtime)) throw err;
          return o;
        }
      }
      const s = how.sattr;
      const existing = await fs.child(d, name);
      if (existing && how.mode === CreateMode.GUARDED) throw new NfsError(NfsStat.EXIST);
      if (existing && s.size !== undefined && caller.uid !== existing.attr.uid && !mayDo(existing.attr, caller, 2)) throw new NfsError(NfsStat.ACCES);
      const { obj, created } = await fs.openFile(d, name, how.mode === CreateMode.GUARDED);
      if (created) await adopt(fs, obj, d, caller, s, 0o644);
      else if (s.size !== undefined) await fs.truncate(obj, s.size);
      return obj;
    }),
  encode: encodeMade,
};
