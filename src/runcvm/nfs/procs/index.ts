/** The NFSv3 dispatch table: procedure number → its decode/handle/encode (one file each, as go-nfs does). */
import { NfsProc } from '../proto.js';
import { access } from './access.js';
import { commit } from './commit.js';
import { type Procedure, type Runner, runner } from './common.js';
import { create } from './create.js';
import { fsinfo, fsstat, pathconf } from './fs-info.js';
import { getattr } from './getattr.js';
import { link } from './link.js';
import { lookup } from './lookup.js';
import { mkdir } from './mkdir.js';
import { mknod } from './mknod.js';
import { read } from './read.js';
import { readdir, readdirplus } from './readdir.js';
import { readlink } from './readlink.js';
import { remove, rmdir } from './remove.js';
import { rename } from './rename.js';
import { setattr } from './setattr.js';
import { symlink } from './symlink.js';
import { write } from './write.js';

const nullProc: Procedure<null, null> = { decode: () => null, handle: async () => null, encode: () => undefined };

export const NFS_PROCEDURES: ReadonlyMap<number, Runner> = new Map<NfsProc, Runner>([
  [NfsProc.NULL, runner(nullProc)],
  [NfsProc.GETATTR, runner(getattr)],
  [NfsProc.SETATTR, runner(setattr)],
  [NfsProc.LOOKUP, runner(lookup)],
  [NfsProc.ACCESS, runner(access)],
  [NfsProc.READLINK, runner(readlink)],
  [NfsProc.READ, runner(read)],
  [NfsProc.WRITE, runner(write)],
  [NfsProc.CREATE, runner(create)],
  [NfsProc.MKDIR, runner(mkdir)],
  [NfsProc.SYMLINK, runner(symlink)],
  [NfsProc.MKNOD, runner(mknod)],
  [NfsProc.REMOVE, runner(remove)],
  [NfsProc.RMDIR, runner(rmdir)],
  [NfsProc.RENAME, runner(rename)],
  [NfsProc.LINK, runner(link)],
  [NfsProc.READDIR, runner(readdir)],
  [NfsProc.READDIRPLUS, runner(readdirplus)],
  [NfsProc.FSSTAT, runner(fsstat)],
  [NfsProc.FSINFO, runner(fsinfo)],
  [NfsProc.PATHCONF, runner(pathconf)],
  [NfsProc.COMMIT, runner(commit)],
]);

export type { NfsContext } from './common.js';
export { MAX_IO } from './read.js';
export { ownerForNew } from './common.js';
