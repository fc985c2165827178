/**
 * A small QMP client (QEMU's JSON control protocol on a unix socket) for VM templates (issue 17): one command at a
 * time, each answered by `return` or `error`; asynchronous events are ignored. The pure sequences (which commands a
 * restore and a save send) live here too, so `runcvm plan` notes and the unit tests use the very same lists.
 */
import { connect, type Socket } from 'node:net';

export interface QmpCommand {
  execute: string;
  arguments?: Record<string, unknown>;
}

/**
 * A restore reads the device state from QEMU's fd 3, the state file opened read-only and inherited at spawn (`fd:3`;
 * incoming migration takes a numeric fd as is). `exec:` would need /bin/sh, which the launcher's root does not have.
 */
export const STATE_FD = 3;

/** Restore (after `-incoming defer`): RAM stays in the template's memory file, the device state comes from the fd. */
export function restoreCommands(): QmpCommand[] {
  return [
    { execute: 'qmp_capabilities' },
    { execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: 'x-ignore-shared', state: true }] } },
    { execute: 'migrate-incoming', arguments: { uri: `fd:${STATE_FD}` } },
  ];
}

/**
 * Save (template build): stopped first, so the saved guest is exactly the parked one; RAM stays in the shared file;
 * the device state goes to a unix socket the builder listens on and copies into the state file (outgoing `fd:`
 * takes only a descriptor passed with SCM_RIGHTS, which node:net cannot send).
 */
export function saveCommands(socket: string): QmpCommand[] {
  return [
    { execute: 'qmp_capabilities' },
    { execute: 'stop' },
    { execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: 'x-ignore-shared', state: true }] } },
    { execute: 'migrate', arguments: { uri: `unix:${socket}` } },
  ];
}

/** One line for `runcvm plan` per command, in order. */
export function describeCommand(c: QmpCommand): string {
  return c.arguments ? `${c.execute} ${JSON.stringify(c.arguments)}` : c.execute;
}

export class QmpError extends Error {}

export class Qmp {
  private buf = '';
  private waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  private greeted: Promise<void>;
  private closedWith: Error | undefined;

  private constructor(private readonly sock: Socket) {
    let greet!: () => void;
    let greetFail!: (e: Error) => void;
    this.greeted = new Promise<void>((res, rej) => ((greet = res), (greetFail = rej)));
    let sawGreeting = false;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('QMP' in msg && !sawGreeting) {
          sawGreeting = true;
          greet();
        } else if ('return' in msg || 'error' in msg) {
          const w = this.waiting;
          this.waiting = undefined;
          if (!w) continue;
          if ('error' in msg) {
            const e = msg.error as { class?: string; desc?: string };
            w.reject(new QmpError(`${e.class ?? 'Error'}: ${e.desc ?? 'unknown'}`));
          } else {
            w.resolve(msg.return);
          }
        }
        // events ('event' in msg) are not needed: state is polled
      }
    });
    const end = (err?: Error) => {
      this.closedWith ??= err ?? new QmpError('QMP connection closed');
      greetFail(this.closedWith);
      this.waiting?.reject(this.closedWith);
      this.waiting = undefined;
    };
    sock.on('error', end);
    sock.on('close', () => end());
  }

  /** Connects (retrying while QEMU has not created the socket yet, up to `timeoutMs`) and waits for the greeting. */
  static async connect(path: string, timeoutMs: number): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const q = new Qmp(sock);
        await q.greeted;
        return q;
      } catch (err) {
        if (Date.now() > deadline) throw new QmpError(`no QMP on ${path} within ${timeoutMs} ms: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Sends one command and resolves with its `return` (rejects with its `error`, or when the connection ends). */
  execute(c: QmpCommand): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.waiting) return Promise.reject(new QmpError('QMP: one command at a time'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.sock.write(JSON.stringify(c) + '\n');
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface MigrateStatus {
  status: string;
  error?: string;
}

/** Polls `query-migrate` until `completed` (resolves), `failed`/`cancelled` or the deadline (throws). */
export async function waitMigration(q: Qmp, timeoutMs: number, pollMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'none';
  for (;;) {
    const r = (await q.execute({ execute: 'query-migrate' })) as { status?: string; 'error-desc'?: string };
    last = r.status ?? 'none';
    if (last === 'completed') return;
    if (last === 'failed' || last === 'cancelled') throw new QmpError(`migration ${last}${r['error-desc'] ? `: ${r['error-desc']}` : ''}`);
    if (Date.now() > deadline) throw new QmpError(`migration still '${last}' after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, pollMs));
  }
}
