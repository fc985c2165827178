/**
 * GuestChannel: the launcher's side of everything the guest sends and receives, whatever the hypervisor. It listens
 * where the hypervisor plan says (before the hypervisor starts, so nothing is lost) for
 *   - the framed io channel of the guest init (agent/codec.ts): the workload's stdout, stderr, exit status, READY and
 *     log lines in; stdin, end of stdin, signals and window sizes out (queued until the guest connects);
 *   - the serial console (absent when it is the hypervisor's stdout): raw bytes in, and stdin for a break shell out;
 *   - the exec agent's port, multiplexing every `runcvm-runtime exec` (agent/mux.ts).
 * The EXIT frame is acknowledged at once (the guest powers off only after the ACK: nothing is lost at the end).
 */
import { rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../core/log/index.js';
import { Channel, decodeExit, encodeData, encodeFrame, encodeSignal, encodeWinsize, FrameDecoder, FrameType } from '../agent/codec.js';
import { EXEC_PATHS } from '../agent/exec.js';
import { startExecMux, type ExecMux } from '../agent/mux.js';
import type { HypervisorPlan } from '../hypervisor/types.js';

export interface GuestEvents {
  output(stream: 'stdout' | 'stderr', data: Buffer): void;
  /** the workload ended (already acknowledged) */
  exit(status: { code: number; signal: number }): void;
  /** the guest init is up (after any break shell): stdin now belongs to the workload */
  ready(): void;
  log(text: string): void;
  /** serial console bytes */
  console(data: Buffer): void;
  /** the io channel is connected */
  connected(): void;
  /** the console connected (only when it has a socket of its own) */
  consoleConnected(): void;
  /** template restore: the guest's first frame after RESUME arrived (runcvm-init is up; held frames were sent) */
  resumed?(): void;
}

async function listen(path: string): Promise<Server> {
  await rm(path, { force: true });
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

/** Resolves when the first connection has closed (or failed). */
function firstConnection(server: Server, use: (sock: Socket) => void): Promise<void> {
  return new Promise((resolve) => {
    server.once('connection', (sock: Socket) => {
      use(sock);
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });
  });
}

export class GuestChannel {
  private io: Socket | undefined;
  private consoleSock: Socket | undefined;
  private readonly pending: Buffer[] = [];
  /**
   * A VM restored from a template (issue 17): everything but RESUME waits until the guest's runcvm-init talks. The
   * initramfs's runcvm-resume reads exactly the RESUME frame and closes the port; bytes sent before runcvm-init opens
   * it again would be dropped by the guest's driver at that close.
   */
  private holding = false;
  private resumeFrame: Buffer | undefined;
  private servers: Server[] = [];
  private done: Promise<void>[] = [];
  private mux: ExecMux | undefined;

  private constructor(private readonly events: GuestEvents) {}

  static async open(where: HypervisorPlan['listen'], events: GuestEvents, log: Logger): Promise<GuestChannel> {
    const ch = new GuestChannel(events);
    try {
      const io = await listen(where.io);
      ch.servers.push(io);
      ch.done.push(firstConnection(io, (sock) => ch.attachIo(sock)));
      if (where.console) {
        const con = await listen(where.console);
        ch.servers.push(con);
        ch.done.push(firstConnection(con, (sock) => ch.attachConsole(sock)));
      }
      // exec (owner: exec, agent/mux.ts): the agent's port + the exec clients' socket
      if (where.agent) ch.mux = await startExecMux({ portSocket: where.agent, clientSocket: EXEC_PATHS.clientSocket, log });
    } catch (err) {
      await ch.close();
      throw err;
    }
    return ch;
  }

  get connected(): boolean {
    return this.io !== undefined;
  }

  private attachIo(sock: Socket): void {
    this.io = sock;
    if (this.resumeFrame) sock.write(this.resumeFrame);
    this.resumeFrame = undefined;
    if (!this.holding) for (const b of this.pending.splice(0)) sock.write(b);
    const dec = new FrameDecoder();
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = dec.push(chunk);
      } catch (err) {
        // an oversized frame: the guest is broken or hostile; closing the channel ends the container as a lost guest
        this.events.log(`io channel: ${(err as Error).message}`);
        sock.destroy();
        return;
      }
      if (frames.length > 0 && this.holding) this.release();
      for (const f of frames) {
        if (f.type === FrameType.DATA) {
          if (f.channel === Channel.stdout) this.events.output('stdout', f.payload);
          else if (f.channel === Channel.stderr) this.events.output('stderr', f.payload);
        } else if (f.type === FrameType.EXIT) {
          sock.write(encodeFrame(FrameType.ACK, 0));
          this.events.exit(decodeExit(f.payload));
        } else if (f.type === FrameType.READY) {
          this.events.ready();
        } else if (f.type === FrameType.LOG) {
          this.events.log(f.payload.toString('utf8'));
        }
      }
    });
    this.events.connected();
  }

  private attachConsole(sock: Socket): void {
    this.consoleSock = sock;
    sock.on('data', (d: Buffer) => this.events.console(d));
    this.events.consoleConnected();
  }

  private send(buf: Buffer): void {
    if (this.io && !this.io.destroyed && !this.holding) this.io.write(buf);
    else this.pending.push(buf);
  }

  /** template restore: hold every frame from now until the guest's first frame after `resume` */
  hold(): void {
    this.holding = true;
  }

  /** template restore: the RESUME frame goes first, ahead of anything held */
  resume(frame: Buffer): void {
    if (this.io && !this.io.destroyed) this.io.write(frame);
    else this.resumeFrame = frame;
  }

  private release(): void {
    this.holding = false;
    if (this.io && !this.io.destroyed) for (const b of this.pending.splice(0)) this.io.write(b);
    this.events.resumed?.();
  }

  stdin(data: Buffer): void {
    for (const fr of encodeData(Channel.stdin, data)) this.send(fr);
  }

  endStdin(): void {
    this.send(encodeFrame(FrameType.EOF, Channel.stdin));
  }

  signal(signo: number): void {
    this.send(encodeSignal(signo));
  }

  winsize(rows: number, cols: number): void {
    this.send(encodeWinsize(rows, cols));
  }

  /** bytes for a break shell on the serial console (dropped while it is not connected) */
  toConsole(data: Buffer): void {
    this.consoleSock?.write(data);
  }

  /** After the hypervisor exited: wait (at most `ms`) for the last bytes of the io channel and the console. */
  async drain(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.done), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    if (timer) clearTimeout(timer);
  }

  async close(): Promise<void> {
    for (const s of this.servers) s.close();
    this.servers = [];
    await this.mux?.close();
    this.mux = undefined;
  }
}
