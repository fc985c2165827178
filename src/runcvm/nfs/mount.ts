/** The MOUNT v3 program (RFC 1813 5.0), on the NFS port: EXPORT lists the exports, MNT hands out a folder's handle. */
import type { NfsFs } from './fs.js';
import { MAX_PATH, MountProc, MountStat, mountStatusOf, statusOf } from './proto.js';
import { AUTH_SYS } from './rpc.js';
import type { XdrReader, XdrWriter } from './xdr.js';

export interface MountContext {
  fs: NfsFs;
  /** for the log line (the client's AUTH_SYS machine name and uid) */
  who: string;
  log(line: string): void;
  /** persist handle-map changes before the reply carries the handle */
  flush(): Promise<void>;
}

type MountRunner = (ctx: MountContext, args: XdrReader, out: XdrWriter) => Promise<void>;

export const MOUNT_PROCEDURES: ReadonlyMap<number, MountRunner> = new Map<MountProc, MountRunner>([
  [MountProc.NULL, async () => undefined],
  [
    MountProc.MNT,
    async (ctx, r, w) => {
      const dirpath = r.string(MAX_PATH);
      try {
        const o = await ctx.fs.mount(dirpath);
        ctx.log(`MNT ${dirpath} from ${ctx.who}`);
        await ctx.flush();
        w.uint(MountStat.OK).opaque(o.handle).array([AUTH_SYS], (x, f) => x.uint(f));
      } catch (err) {
        const st = mountStatusOf(statusOf(err));
        ctx.log(`MNT ${dirpath}: refused (${MountStat[st]})`);
        w.uint(st);
      }
    },
  ],
  [MountProc.DUMP, async (_ctx, _r, w) => void w.bool(false)],
  [MountProc.UMNT, async (_ctx, r) => void r.string(MAX_PATH)],
  [MountProc.UMNTALL, async () => undefined],
  [
    MountProc.EXPORT,
    async (ctx, _r, w) => {
      for (const e of ctx.fs.exports()) w.bool(true).string(e.path).bool(false);
      w.bool(false);
    },
  ],
]);
