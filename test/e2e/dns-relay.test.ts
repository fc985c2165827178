/**
 * The launcher's DNS relay (src/runcvm/network/dns-relay.ts) with real sockets on 127.0.0.1: a fake upstream
 * resolver (UDP and TCP, on ports the kernel picks) stands in for dockerd's 127.0.0.11. What the relay must do:
 * pass queries and answers through unchanged both ways, over UDP (to the asking port) and TCP (framed messages,
 * half-close), relay only for its allowed sources, and free everything on close().
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsRelay, type DnsRelay } from '../../src/runcvm/network/dns-relay.js';
import type { DnsRelayPlan } from '../../src/runcvm/network/plan.js';
import type { NetLog } from '../../src/runcvm/network/apply.js';

/** The fake resolver's answer: the query with a marker appended (so the test sees it went through upstream). */
const answerFor = (query: Buffer) => Buffer.concat([query, Buffer.from('|answered')]);

interface Upstream {
  port: number;
  udpQueries: number;
  tcpConnections: Set<Socket>;
  close(): Promise<void>;
}

/** UDP and TCP on the same port number (TCP first, then UDP on its port: both free on 127.0.0.1 in practice). */
async function fakeUpstream(): Promise<Upstream> {
  const tcpConnections = new Set<Socket>();
  const tcp: Server = createServer({ allowHalfOpen: true }, (s) => {
    tcpConnections.add(s);
    s.on('close', () => tcpConnections.delete(s));
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = answerFor(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        const len = Buffer.alloc(2);
        len.writeUInt16BE(msg.length);
        s.write(Buffer.concat([len, msg]));
      }
    });
    s.on('end', () => s.end());
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const port = (tcp.address() as { port: number }).port;
  const udp: UdpSocket = createSocket('udp4');
  const up: Upstream = {
    port,
    udpQueries: 0,
    tcpConnections,
    close: async () => {
      for (const s of tcpConnections) s.destroy();
      await Promise.all([new Promise<void>((r) => tcp.close(() => r())), new Promise<void>((r) => udp.close(() => r()))]);
    },
  };
  udp.on('message', (q, from) => {
    up.udpQueries++;
    udp.send(answerFor(q), from.port, from.address);
  });
  udp.bind(port, '127.0.0.1');
  await once(udp, 'listening');
  return up;
}

function recordingLog() {
  const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
  const waiters: { match: RegExp; resolve: () => void }[] = [];
  const push = (msg: string, fields?: Record<string, unknown>) => {
    lines.push(fields ? { msg, fields } : { msg });
    for (const w of waiters.filter((x) => x.match.test(msg))) w.resolve();
  };
  const log: NetLog = { info: push, debug: push, warn: push };
  const next = (match: RegExp) => new Promise<void>((resolve) => waiters.push({ match, resolve }));
  return { log, lines, next };
}

async function udpAsk(port: number, query: Buffer): Promise<Buffer> {
  const s = createSocket('udp4');
  try {
    s.send(query, port, '127.0.0.1');
    const [msg] = (await once(s, 'message')) as [Buffer];
    return msg;
  } finally {
    s.close();
  }
}

/** Sends framed messages, half-closes, and returns everything received until the relay closed the connection. */
async function tcpAsk(port: number, messages: Buffer[]): Promise<Buffer> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  for (const m of messages) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(m.length);
    s.write(Buffer.concat([len, m]));
  }
  s.end();
  await once(s, 'close');
  return Buffer.concat(chunks);
}

const framed = (m: Buffer) => {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(m.length);
  return Buffer.concat([len, m]);
};

describe('launcher DNS relay (UDP and TCP, real sockets on 127.0.0.1)', () => {
  let up: Upstream;
  let relay: DnsRelay | undefined;
  const rec = recordingLog();
  const plan = (): DnsRelayPlan => ({ listen: '127.0.0.1', port: 0, upstream: '127.0.0.1', upstreamPort: up.port, allowedSources: ['127.0.0.1'] });

  beforeAll(async () => {
    up = await fakeUpstream();
    relay = await startDnsRelay(plan(), rec.log);
  });
  afterAll(async () => {
    await relay?.close();
    await up?.close();
  });

  it('UDP: the query goes upstream unchanged and the answer comes back to the asking port', async () => {
    const query = Buffer.from([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x66, 0x6f, 0x6f, 0, 0, 1, 0, 1]);
    const before = up.udpQueries;
    expect(await udpAsk(relay!.udpPort, query)).toEqual(answerFor(query));
    expect(up.udpQueries).toBe(before + 1);
    // a large answer (EDNS-sized) passes whole
    const big = Buffer.alloc(3000, 7);
    expect(await udpAsk(relay!.udpPort, big)).toEqual(answerFor(big));
  });

  it('TCP: framed messages pass both ways, two on one connection; the half-close ends it once answered', async () => {
    const a = Buffer.from('first-query');
    const b = Buffer.from('second-query');
    const got = await tcpAsk(relay!.tcpPort, [a, b]);
    expect(got).toEqual(Buffer.concat([framed(answerFor(a)), framed(answerFor(b))]));
  });

  it('relays nothing for a source that is not the VM: UDP dropped, TCP closed without a byte', async () => {
    const strict = await startDnsRelay({ ...plan(), allowedSources: ['10.88.0.2'] }, rec.log);
    try {
      const before = up.udpQueries;
      const dropped = rec.next(/query from outside the VM dropped/);
      const s = createSocket('udp4');
      s.send(Buffer.from('sneaky'), strict.udpPort, '127.0.0.1');
      await dropped;
      s.close();
      expect(up.udpQueries).toBe(before);
      expect(await tcpAsk(strict.tcpPort, [Buffer.from('sneaky')])).toEqual(Buffer.alloc(0));
      expect(rec.lines.some((l) => l.msg === 'dns relay: connection refused' && l.fields?.['from'] === '127.0.0.1')).toBe(true);
    } finally {
      await strict.close();
    }
  });

  it('close() frees both ports and ends open connections (the launcher ends with the container)', async () => {
    const r = await startDnsRelay(plan(), rec.log);
    const open = connect({ port: r.tcpPort, host: '127.0.0.1' });
    await once(open, 'connect');
    // the relay connected upstream for it
    for (let i = 0; i < 100 && up.tcpConnections.size === 0; i++) await new Promise((res) => setTimeout(res, 20));
    expect(up.tcpConnections.size).toBe(1);
    const closed = once(open, 'close');
    await r.close();
    await closed;
    // both ports can be bound again at once
    const udp = createSocket('udp4');
    udp.bind(r.udpPort, '127.0.0.1');
    await once(udp, 'listening');
    await new Promise<void>((res) => udp.close(() => res()));
    const tcp = createServer().listen(r.tcpPort, '127.0.0.1');
    await once(tcp, 'listening');
    await new Promise<void>((res) => tcp.close(() => res()));
  });

  it('a port already taken: startDnsRelay rejects (the launcher then warns and runs without the relay)', async () => {
    await expect(startDnsRelay({ ...plan(), port: relay!.tcpPort }, rec.log)).rejects.toThrow(/EADDRINUSE/);
  });
});
