/**
 * A user-space NFSv3 server (with MOUNT v3 on the same TCP port, so clients need no portmapper):
 *
 *   const server = await NfsServer.create({ exports: ['/srv/vol'], stateDir: '/run/runcvm/nfs' });
 *   const { port } = await server.listen('169.254.1.254', 2049, { allow: ['10.0.0.5'], reservedPortsOnly: true });
 *   ...  // guest: mount -t nfs -o <contract NFS_MOUNT_OPTIONS> 169.254.1.254:/srv/vol /data
 *   await server.close();
 *
 * The parts, as go-nfs splits them: transport.ts (TCP, records, which peers may connect), rpc.ts/xdr.ts (codecs),
 * mount.ts (the MOUNT program), procs/ (one NFS procedure per file: decode → handle → encode, a dispatch table),
 * fs.ts (the filesystem interface the procedures use) with host-fs.ts over the exports, containment.ts (every path
 * one name inside a held directory), export.ts (root descriptor, handle map, bounded search), files.ts (the
 * open-file cache). This file composes them.
 *
 * Semantics (docs/dev/nfs-server.md): AUTH_SYS identities are trusted as-is (no root squash: the only peer is the
 * container's own VM, from a reserved port, i.e. its root); new files belong to the caller; permissions come from
 * mode bits (owners may always read/write their files, like knfsd); writes are UNSTABLE until COMMIT unless the
 * client asks for a stable write. Handles are (export id, device, inode) with a persistent map (handles.ts).
 */
import { randomBytes } from 'node:crypto';
import { isAbsolute, normalize } from 'node:path';
import { NfsExport } from './export.js';
import { HostFs } from './host-fs.js';
import { MOUNT_PROCEDURES } from './mount.js';
import { ACCESS, type Caller, MOUNT_PROGRAM, MOUNT_V3, NFS_PROGRAM, NFS_V3, NOBODY } from './proto.js';
import { MAX_IO, NFS_PROCEDURES } from './procs/index.js';
import { AcceptStat, acceptedReply, decodeCall, type RpcCall } from './rpc.js';
import { listenRpc, type PeerPolicy, type RpcTransport } from './transport.js';
import { XdrError, XdrWriter } from './xdr.js';

export { MAX_IO };
export { ownerForNew } from './procs/common.js';
export { LOOPBACK_ONLY, type PeerPolicy } from './transport.js';

export interface NfsServerOptions {
  /** host folders to export; each is mounted by clients under its absolute path */
  exports: string[];
  /** folder for the handle maps (one file per export); undefined keeps them in memory */
  stateDir?: string;
  /** diagnostics (one line each) */
  log?: (line: string) => void;
}

export class NfsServer {
  private transport: RpcTransport | undefined;
  /** WRITE/COMMIT verifier: changes with each server instance, so clients resend uncommitted writes */
  readonly writeVerifier = randomBytes(8);
  private readonly log: (line: string) => void;

  private constructor(
    private readonly fs: HostFs,
    log: (line: string) => void,
  ) {
    this.log = log;
  }

  static async create(options: NfsServerOptions): Promise<NfsServer> {
    if (options.exports.length === 0) throw new Error('nothing to export: give at least one folder');
    const exports: NfsExport[] = [];
    try {
      for (const given of options.exports) {
        if (!isAbsolute(given)) throw new Error(`export ${given} is not an absolute path`);
        const path = normalize(given).replace(/\/+$/, '') || '/';
        const e = await NfsExport.open(path, options.stateDir).catch((err: NodeJS.ErrnoException) => {
          throw new Error(err.code === 'ENOTDIR' ? `export ${path} is not a directory` : `export ${path}: ${err.message}`);
        });
        exports.push(e);
        if (exports.some((x) => x !== e && x.id === e.id)) throw new Error(`export ${path} is given twice`);
      }
    } catch (err) {
      for (const e of exports) await e.close();
      throw err;
    }
    const log = options.log ?? (() => undefined);
    return new NfsServer(new HostFs(exports, log), log);
  }

  /** Start listening for the peers the policy admits; resolves with the bound address (port 0 picks a free port). */
  async listen(host: string, port: number, policy: PeerPolicy): Promise<{ address: string; port: number }> {
    this.transport = await listenRpc(host, port, {
      policy,
      maxRecord: MAX_IO + 64 * 1024,
      handle: (record) => this.handleRecord(record),
      log: this.log,
    });
    const { address, port: bound } = this.transport;
    this.log(`listening on ${address}:${bound} for ${policy.allow.join(', ')}${policy.reservedPortsOnly ? ' (reserved ports only)' : ''}; exports: ${this.fs.exportList.map((e) => e.path).join(', ')}`);
    return { address, port: bound };
  }

  async close(): Promise<void> {
    await this.transport?.close();
    await this.fs.close();
  }

  /** Walks of an export made to find handles the map did not know, and the entries they looked at (all exports). */
  searchStats(): { walks: number; entries: number } {
    return this.fs.exportList.reduce((t, e) => ({ walks: t.walks + e.stats.walks, entries: t.entries + e.stats.entries }), { walks: 0, entries: 0 });
  }

  /** One RPC record in, one reply out (undefined: nothing to answer). Never throws. */
  async handleRecord(record: Buffer): Promise<Buffer | undefined> {
    const decoded = decodeCall(record);
    if (!decoded.ok) return decoded.reply;
    const call = decoded.call;
    try {
      const body = await this.dispatch(call);
      if (typeof body === 'number') return acceptedReply(call.xid, body, undefined, { low: 3, high: 3 });
      return acceptedReply(call.xid, AcceptStat.SUCCESS, body);
    } catch (err) {
      if (err instanceof XdrError) return acceptedReply(call.xid, AcceptStat.GARBAGE_ARGS);
      this.log(`prog ${call.prog} proc ${call.proc}: internal error: ${(err as Error).stack ?? String(err)}`);
      return acceptedReply(call.xid, AcceptStat.SYSTEM_ERR);
    }
  }

  private async dispatch(call: RpcCall): Promise<Buffer | AcceptStat> {
    const program =
      call.prog === NFS_PROGRAM ? { vers: NFS_V3, table: NFS_PROCEDURES } : call.prog === MOUNT_PROGRAM ? { vers: MOUNT_V3, table: MOUNT_PROCEDURES } : undefined;
    if (!program) return AcceptStat.PROG_UNAVAIL;
    if (call.vers !== program.vers) return AcceptStat.PROG_MISMATCH;
    const w = new XdrWriter(512);
    const session = this.fs.session();
    try {
      if (call.prog === NFS_PROGRAM) {
        const run = NFS_PROCEDURES.get(call.proc);
        if (!run) return AcceptStat.PROC_UNAVAIL;
        const caller: Caller = call.auth ? { uid: call.auth.uid, gid: call.auth.gid, gids: call.auth.gids } : NOBODY;
        await run({ fs: session, caller, writeVerifier: this.writeVerifier, log: this.log }, call.args, w);
        // every handle in the reply is in the state file before the client can hold it
        await this.fs.flush();
      } else {
        const run = MOUNT_PROCEDURES.get(call.proc);
        if (!run) return AcceptStat.PROC_UNAVAIL;
        const who = `${call.auth?.machine ?? '?'} (uid ${call.auth?.uid ?? '-'})`;
        await run({ fs: session, who, log: this.log, flush: () => this.fs.flush() }, call.args, w);
      }
    } finally {
      await session.close();
    }
    return w.toBuffer();
  }
}

/** Validate `ADDR:PORT` (IPv4 or [IPv6]) for --listen. Pure. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`--listen ${value}: expected ADDR:PORT (e.g. 169.254.1.254:2049 or 127.0.0.1:0)`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export const ACCESS_ALL = ACCESS.READ | ACCESS.LOOKUP | ACCESS.MODIFY | ACCESS.EXTEND | ACCESS.DELETE | ACCESS.EXECUTE;
