/**
 * The launcher's half of the DNS relay for Docker's embedded DNS (the decision and the reasons: planDnsRelay in
 * plan.ts). It listens on the identity IP (169.254.1.254:53, UDP and TCP), which exists only on br-eth0 inside the
 * container's network namespace, and forwards each query unchanged to 127.0.0.11:53 in that namespace, where
 * dockerd's iptables rules lead it to dockerd's resolver exactly as for a runc container. Only queries from the VM's
 * own addresses are relayed. It lives as long as the network set-up (setup.ts closes it before the undo).
 *
 * UDP: one upstream socket per query (its reply, whatever its size, goes back to the asking address and port);
 * TCP: the bytes go through unchanged both ways (DNS over TCP frames each message with a 2-byte length, which both
 * ends already speak), half-closes included.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { NetLog } from './apply.js';
import { isRelaySource, type DnsRelayPlan } from './plan.js';

/** a query without an answer is forgotten after this long (a resolver retries on its own; nothing waits on it) */
const UDP_QUERY_LIFETIME_MS = 10_000;
/** queries in flight at once; more are dropped (the client retries), so a flood cannot exhaust the launcher */
const UDP_MAX_IN_FLIGHT = 256;
const TCP_MAX_CONNECTIONS = 64;

export interface DnsRelay {
  /** the bound ports (the plan's, or the kernel's pick when the plan says 0, as tests do) */
  readonly udpPort: number;
  readonly tcpPort: number;
  close(): Promise<void>;
}

export async function startDnsRelay(plan: DnsRelayPlan, log: NetLog): Promise<DnsRelay> {
  const udp = createSocket({ type: 'udp4' });
  const inFlight = new Set<{ socket: UdpSocket; timer: NodeJS.Timeout }>();
  const connections = new Set<Socket>();
  let closed = false;

  udp.on('message', (query: Buffer, from: RemoteInfo) => {
    if (closed) return;
    if (!isRelaySource(plan, from.address)) {
      log.debug('dns relay: query from outside the VM dropped', { from: from.address, protocol: 'udp' });
      return;
    }
    if (inFlight.size >= UDP_MAX_IN_FLIGHT) {
      log.debug('dns relay: too many queries in flight; dropped one', { from: from.address });
      return;
    }
    const upstream = createSocket({ type: 'udp4' });
    const entry = { socket: upstream, timer: setTimeout(() => done(), UDP_QUERY_LIFETIME_MS) };
    entry.timer.unref();
    inFlight.add(entry);
    const done = () => {
      if (!inFlight.delete(entry)) return;
      clearTimeout(entry.timer);
      upstream.close();
    };
    upstream.on('message', (answer: Buffer) => {
      if (!closed) udp.send(answer, from.port, from.address);
      done();
    });
    upstream.on('error', (err) => {
      log.debug('dns relay: upstream error', { protocol: 'udp', error: err.message });
      done();
    });
    upstream.send(query, plan.upstreamPort, plan.upstream);
  });
  // a send to an address that vanished (the VM stopped) must never end the launcher
  udp.on('error', (err) => log.debug('dns relay: socket error', { protocol: 'udp', error: err.message }));

  const tcp: Server = createServer({ allowHalfOpen: true }, (client) => {
    if (closed || !isRelaySource(plan, client.remoteAddress ?? '') || connections.size >= TCP_MAX_CONNECTIONS) {
      log.debug('dns relay: connection refused', { from: client.remoteAddress, protocol: 'tcp' });
      client.destroy();
      return;
    }
    const upstream = connect({ host: plan.upstream, port: plan.upstreamPort, allowHalfOpen: true });
    connections.add(client);
    connections.add(upstream);
    const fail = (err: Error) => {
      log.debug('dns relay: connection error', { protocol: 'tcp', error: err.message });
      client.destroy();
      upstream.destroy();
    };
    // pipe() half-closes the other side once one side finished sending; each socket closes when both of its
    // directions are done (end(), not destroy(): a destroy would drop an answer still being written)
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', fail);
    upstream.on('error', fail);
    client.on('close', () => {
      connections.delete(client);
      if (!upstream.destroyed) upstream.end();
    });
    upstream.on('close', () => {
      connections.delete(upstream);
      if (!client.destroyed) client.end();
    });
  });

  try {
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: plan.listen, port: plan.port, exclusive: true }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: plan.listen, port: plan.port, exclusive: true }, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    closed = true;
    try {
      udp.close();
    } catch {
      /* not bound */
    }
    tcp.close();
    throw err;
  }
  tcp.on('error', (err) => log.debug('dns relay: server error', { protocol: 'tcp', error: err.message }));

  const address = tcp.address();
  return {
    udpPort: udp.address().port,
    tcpPort: typeof address === 'object' && address ? address.port : plan.port,
    close: async () => {
      if (closed) return;
      closed = true;
      for (const e of inFlight) {
        clearTimeout(e.timer);
        e.socket.close();
      }
      inFlight.clear();
      for (const s of connections) s.destroy();
      connections.clear();
      await Promise.all([new Promise<void>((resolve) => udp.close(() => resolve())), new Promise<void>((resolve) => tcp.close(() => resolve()))]);
    },
  };
}
