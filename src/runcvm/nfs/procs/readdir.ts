/**
 * READDIR and READDIRPLUS (RFC 1813 3.3.16, 3.3.17). Cookies are stateless (proto.ts orderForReaddir: `.`=1,
 * `..`=2, every other entry a hash of its name), so the cookie verifier is ignored and paging survives inserts,
 * removals and restarts.
 */
import type { FsObject } from '../fs.js';
import { FATTR_SIZE, type Fattr, mayDo, NfsError, NfsStat, orderForReaddir, readFh, writePostOpAttr, writePostOpFh, xdrOpaqueSize } from '../proto.js';
import { XdrWriter } from '../xdr.js';
import { attempt, encodeResult, isDir, type PostOp, type Procedure, type Result, writePostOp } from './common.js';

interface Args {
  fh: Buffer;
  cookie: bigint;
  dircount: number;
  maxcount: number;
}

interface Ok {
  attr: Fattr;
  entries: Buffer;
  eof: boolean;
}

function readdirProc(plus: boolean): Procedure<Args, Result<Ok, PostOp>> {
  return {
    decode(r) {
      const fh = readFh(r);
      const cookie = r.uhyper();
      r.fixed(8); // cookieverf: our cookies are stateless, any verifier is accepted
      const dircount = r.uint();
      const maxcount = plus ? r.uint() : dircount;
      return { fh, cookie, dircount, maxcount };
    },
    async handle(ctx, { fh, cookie, dircount, maxcount }) {
      let dir: FsObject | undefined;
      return attempt(ctx, async () => {
        const d = (dir = await ctx.fs.resolve(fh));
        if (!isDir(d)) throw new NfsError(NfsStat.NOTDIR);
        if (!mayDo(d.attr, ctx.caller, 4)) throw new NfsError(NfsStat.ACCES);
        const names = await ctx.fs.readdir(d);
        const all = orderForReaddir([{ name: '.' }, { name: '..' }, ...names.map((name) => ({ name }))]);
        // header: status + post_op_attr + cookieverf; trailer: end of list + eof
        let size = 4 + 4 + FATTR_SIZE + 8 + 8;
        let dirBytes = 0;
        const body = new XdrWriter(Math.min(maxcount, 64 * 1024));
        let count = 0;
        let eof = true;
        for (const e of all.filter((x) => x.cookie > cookie)) {
          let o: FsObject | undefined;
          try {
            o = e.name === '.' ? d : e.name === '..' ? await ctx.fs.lookup(d, '..') : await ctx.fs.child(d, e.name);
          } catch {
            o = undefined;
          }
          if (!o) continue; // removed while listing
          const entryDir = 4 + 8 + xdrOpaqueSize(Buffer.byteLength(e.name)) + 8;
          const entrySize = entryDir + (plus ? 4 + FATTR_SIZE + 4 + xdrOpaqueSize(o.handle.length) : 0);
          if (size + entrySize > maxcount || (plus && dirBytes + entryDir > dircount && count > 0)) {
            eof = false;
            break;
          }
          size += entrySize;
          dirBytes += entryDir;
          count++;
          body.bool(true).uhyper(o.attr.fileid).string(e.name).uhyper(e.cookie);
          if (plus) {
            writePostOpAttr(body, o.attr);
            writePostOpFh(body, o.handle);
          }
        }
        if (count === 0 && !eof) throw new NfsError(NfsStat.TOOSMALL);
        return { attr: d.attr, entries: Buffer.from(body.view()), eof };
      }, () => ({ attr: dir?.attr }));
    },
    encode: (w, res) =>
      encodeResult(w, res, (x, r) => {
        writePostOpAttr(x, r.attr);
        x.fixed(Buffer.alloc(8));
        x.fixed(r.entries);
        x.bool(false).bool(r.eof);
      }, writePostOp),
  };
}

export const readdir = readdirProc(false);
export const readdirplus = readdirProc(true);
