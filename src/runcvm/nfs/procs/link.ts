/** LINK (RFC 1813 3.3.15): a hard link to a non-folder, within one export. */
import type { FsObject } from '../fs.js';
import { checkName, type Fattr, NfsError, NfsStat, readDirOp, readFh, wccFrom, writePostOpAttr } from '../proto.js';
import type { XdrWriter } from '../xdr.js';
import { attempt, attrOf, encodeResult, isDir, type Procedure, requireDirAccess, type Result, type Wcc, writeWccOf } from './common.js';

interface Res {
  attr: Fattr | undefined;
  dir: Wcc;
}

const writeRes = (w: XdrWriter, r: Res) => {
  writePostOpAttr(w, r.attr);
  writeWccOf(w, r.dir);
};

export const link: Procedure<{ fh: Buffer; dir: Buffer; name: string }, Result<Res, Res>> = {
  decode: (r) => ({ fh: readFh(r), ...readDirOp(r) }),
  async handle(ctx, { fh, dir: dfh, name }) {
    const { fs } = ctx;
    let file: FsObject | undefined;
    let dir: FsObject | undefined;
    return attempt(ctx, async () => {
      file = await fs.resolve(fh);
      dir = await fs.resolve(dfh);
      if (file.exportId !== dir.exportId) throw new NfsError(NfsStat.XDEV);
      if (isDir(file)) throw new NfsError(NfsStat.ISDIR);
      const bad = checkName(name);
      if (bad !== NfsStat.OK) throw new NfsError(bad === NfsStat.INVAL && (name === '.' || name === '..') ? NfsStat.EXIST : bad);
      requireDirAccess(dir, ctx.caller, 3);
      await fs.link(file, dir, name);
      return { attr: await fs.attr(file), dir: { before: wccFrom(dir.attr), after: await fs.attr(dir) } };
    }, async () => ({ attr: await attrOf(fs, file), dir: { before: wccFrom(dir?.attr), after: await attrOf(fs, dir) } }));
  },
  encode: (w, res) => encodeResult(w, res, writeRes, writeRes),
};
