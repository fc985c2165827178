/**
 * The NFS server's transport: ONC RPC records over TCP, from the peers the server answers and no others.
 *
 * Who may connect (PeerPolicy): the addresses in `allow` (single addresses or CIDR prefixes; the launcher passes the
 * VM's own addresses, `runcvm nfs-serve` its --allow list, loopback by default), and, with `reservedPortsOnly`, only
 * from a source port below 1024, as knfsd's default `secure` export option: inside the VM only root (or a process
 * root gave CAP_NET_BIND_SERVICE) can bind such a port, so an unprivileged guest process cannot speak AUTH_SYS to
 * the server with a uid of its choice. Anyone else is disconnected before a byte is read.
 */
import { BlockList, createServer, isIP, type Server, type Socket } from 'node:net';
import { encodeRecord, RecordDecoder } from './rpc.js';

export interface PeerPolicy {
  /** addresses and prefixes allowed to connect ("169.254.1.1", "10.0.0.0/8", "::1") */
  allow: readonly string[];
  /** refuse source ports ≥ 1024 (knfsd's `secure`) */
  reservedPortsOnly: boolean;
}

/** Loopback only: what `runcvm nfs-serve` answers when no --allow is given. */
export const LOOPBACK_ONLY: readonly string[] = ['127.0.0.0/8', '::1'];

export class PeerPolicyError extends Error {}

/** Parse the allow list into a matcher; throws PeerPolicyError naming a bad entry. Pure. */
export function peerMatcher(allow: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of allow) {
    const [addr = '', prefix, extra] = entry.split('/');
    const family = isIP(addr);
    const bits = prefix === undefined ? undefined : Number(prefix);
    const max = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== undefined && !(Number.isInteger(bits) && bits >= 0 && bits <= max && /^\d+$/.test(prefix ?? '')))) {
      throw new PeerPolicyError(`"${entry}" is not an IP address or ADDRESS/PREFIX`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, bits, type);
  }
  return (address: string) => {
    // an IPv4 peer of a dual-stack socket arrives as ::ffff:a.b.c.d
    const v4 = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const family = isIP(v4);
    return family !== 0 && list.check(v4, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/** Whether the policy admits this peer; the reason when it does not. Pure. */
export function admit(policy: { allowed: (address: string) => boolean; reservedPortsOnly: boolean }, address: string | undefined, port: number | undefined): string | undefined {
  if (!address || !policy.allowed(address)) return `address ${address ?? '?'} is not allowed`;
  if (policy.reservedPortsOnly && !(port !== undefined && port < 1024)) return `source port ${port ?? '?'} is not a reserved port (< 1024)`;
  return undefined;
}

export interface RpcTransportOptions {
  policy: PeerPolicy;
  /** largest RPC record accepted (a larger one closes the connection) */
  maxRecord: number;
  /** one record in, one reply out (undefined: nothing to send); never throws */
  handle: (record: Buffer, peer: string) => Promise<Buffer | undefined>;
  log: (line: string) => void;
}

export interface RpcTransport {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listen on host:port (0 picks a free port); resolves once bound. Throws PeerPolicyError for a bad allow list. */
export function listenRpc(host: string, port: number, options: RpcTransportOptions): Promise<RpcTransport> {
  const allowed = peerMatcher(options.policy.allow);
  const { reservedPortsOnly } = options.policy;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const refused = admit({ allowed, reservedPortsOnly }, socket.remoteAddress, socket.remotePort);
    if (refused) {
      options.log(`refused connection from ${peer}: ${refused}`);
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.setNoDelay(true);
    const decoder = new RecordDecoder(options.maxRecord);
    options.log(`connection from ${peer}`);
    socket.on('data', (chunk: Buffer) => {
      let records: Buffer[];
      try {
        records = decoder.push(chunk);
      } catch (err) {
        options.log(`closing ${peer}: ${(err as Error).message}`);
        socket.destroy();
        return;
      }
      for (const record of records) {
        void options.handle(record, peer).then((reply) => {
          if (reply && !socket.destroyed) socket.write(encodeRecord(reply));
        });
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      options.log(`connection from ${peer} closed`);
    });
  });
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      const a = server.address();
      if (a === null || typeof a === 'string') return reject(new Error('listening socket has no TCP address'));
      resolveListen({
        address: a.address,
        port: a.port,
        close: () => {
          const closed = new Promise<void>((r) => server.close(() => r()));
          for (const s of sockets) s.destroy();
          return closed;
        },
      });
    });
  });
}
