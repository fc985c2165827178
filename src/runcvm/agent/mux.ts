/**
 * ExecMux (runs in the launcher): routes the frames of every exec client (one unix-socket connection each, session 0)
 * over the single agent port to the guest agent, giving each connection its own session id, and routes the
 * agent's frames back by session. Frames for the port are queued until the agent says READY (an exec started while
 * the VM boots just waits). A client that disconnects before its EXIT gets a CLOSE sent for it (the agent kills the
 * command). Output is never dropped while the client is connected: Node buffers what the client has not read yet.
 *
 * The routing core (ExecRouter) is pure over a tiny transport interface so it is unit-tested without sockets.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rm } from 'node:fs/promises';
import { encodeFrame, FrameDecoder, FrameType, type Frame } from './codec.js';
import { encodeClose, ExecFrameType } from './exec.js';

export interface Peer {
  write(buf: Buffer): void;
  end(): void;
}

export interface RouterLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
}

const CLIENT_TO_GUEST = new Set<number>([ExecFrameType.OPEN, FrameType.DATA, FrameType.EOF, FrameType.SIGNAL, FrameType.WINSIZE]);
const GUEST_TO_CLIENT = new Set<number>([FrameType.DATA, FrameType.EOF, FrameType.EXIT]);

export class ExecRouter {
  private readonly clients = new Map<number, Peer>();
  private nextSession = 1;
  private port: Peer | undefined;
  private ready = false;
  private readonly queue: Buffer[] = [];

  /** onReady: called on each READY of the agent (startExecMux opens the clients' socket on the first) */
  constructor(
    private readonly log: RouterLog = { debug: () => {} },
    private readonly onReady: () => void = () => {},
  ) {}

  /** number of execs in flight */
  get active(): number {
    return this.clients.size;
  }

  /** A new client connection; returns its session id. */
  addClient(peer: Peer): number {
    if (this.clients.size >= 0xfffe) throw new Error('too many execs at once (65534)');
    let s = this.nextSession;
    while (this.clients.has(s)) s = s >= 0xffff ? 1 : s + 1;
    this.nextSession = s >= 0xffff ? 1 : s + 1;
    this.clients.set(s, peer);
    this.log.debug('exec client connected', { session: s });
    return s;
  }

  /** A frame from a client: stamped with its session and sent (or queued) to the agent. */
  fromClient(session: number, f: Frame): void {
    if (!this.clients.has(session) || !CLIENT_TO_GUEST.has(f.type)) return;
    this.toPort(encodeFrame(f.type, f.channel, f.payload, session));
  }

  /** The client's connection ended. Before its EXIT: the command in the guest is killed. */
  clientGone(session: number): void {
    if (!this.clients.delete(session)) return;
    this.log.debug('exec client went away before the command ended', { session });
    this.toPort(encodeClose(session));
  }

  attachPort(peer: Peer): void {
    this.port = peer;
  }

  /** A frame from the agent. */
  fromPort(f: Frame): void {
    if (f.type === FrameType.READY) {
      this.ready = true;
      this.log.debug('guest agent ready', { queued: this.queue.length });
      for (const b of this.queue.splice(0)) this.port?.write(b);
      this.onReady();
      return;
    }
    if (!GUEST_TO_CLIENT.has(f.type)) return;
    const peer = this.clients.get(f.session);
    if (!peer) return;
    peer.write(encodeFrame(f.type, f.channel, f.payload, 0));
    if (f.type === FrameType.EXIT) {
      this.clients.delete(f.session);
      peer.end();
    }
  }

  /** The VM is gone: every client is told by its connection closing (the client reports it). */
  portGone(): void {
    this.port = undefined;
    this.ready = false;
    for (const peer of this.clients.values()) peer.end();
    this.clients.clear();
  }

  private toPort(buf: Buffer): void {
    if (this.port && this.ready) this.port.write(buf);
    else this.queue.push(buf);
  }
}

export interface ExecMux {
  close(): Promise<void>;
}

async function listenUnix(path: string, onConnection: (s: Socket) => void): Promise<Server> {
  await rm(path, { force: true });
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

/**
 * Listen for QEMU's agent-port chardev (portSocket; must be called before QEMU starts) and, once the agent in the
 * guest says READY, for exec clients (clientSocket): its existence tells `runcvm-runtime exec` (exec-prep.c, exec/
 * main.ts waitForExecSocket) that the VM can run a command now, so `exec -d` returns when the command is started, as
 * under runc, not while the VM still boots (runc's `exec [tty consolesize]` allows 5 s for the whole command).
 * close() stops both and ends every client.
 */
export async function startExecMux(opts: { portSocket: string; clientSocket: string; log?: RouterLog }): Promise<ExecMux> {
  let clientServer: Server | undefined;
  let closed = false;
  const openClients = async () => {
    if (clientServer || closed) return;
    const srv = await listenUnix(opts.clientSocket, onClient);
    if (closed) srv.close();
    else clientServer = srv;
  };
  const router = new ExecRouter(opts.log, () => {
    openClients().catch((err: Error) => opts.log?.debug(`exec socket ${opts.clientSocket}: ${err.message}`));
  });
  const sockets = new Set<Socket>();
  const portServer = await listenUnix(opts.portSocket, (sock) => {
    sockets.add(sock);
    router.attachPort({ write: (b) => sock.write(b), end: () => sock.end() });
    const dec = new FrameDecoder();
    sock.on('data', (chunk: Buffer) => {
      try {
        for (const f of dec.push(chunk)) router.fromPort(f);
      } catch (err) {
        // an oversized frame from the guest: this port is no longer trusted (its exec sessions end)
        opts.log?.debug(`exec agent port: ${(err as Error).message}`);
        sock.destroy();
      }
    });
    const gone = () => {
      sockets.delete(sock);
      router.portGone();
    };
    sock.on('close', gone);
    sock.on('error', () => sock.destroy());
  });
  function onClient(sock: Socket): void {
    sockets.add(sock);
    let session: number;
    try {
      session = router.addClient({ write: (b) => sock.write(b), end: () => sock.end() });
    } catch {
      sock.destroy();
      return;
    }
    const dec = new FrameDecoder();
    sock.on('data', (chunk: Buffer) => {
      try {
        for (const f of dec.push(chunk)) router.fromClient(session, f);
      } catch {
        sock.destroy();
      }
    });
    sock.on('close', () => {
      sockets.delete(sock);
      router.clientGone(session);
    });
    sock.on('error', () => sock.destroy());
  }
  return {
    close: async () => {
      closed = true;
      for (const s of sockets) s.destroy();
      await Promise.all([portServer, ...(clientServer ? [clientServer] : [])].map((srv) => new Promise<void>((r) => srv.close(() => r()))));
      await rm(opts.clientSocket, { force: true });
    },
  };
}
