/**
 * The exec client: what runc actually execs in the launcher container for `runcvm-runtime exec` (see rewrite.ts).
 * Reads (and removes) its request file, connects to the launcher's exec socket, sends OPEN, then relays stdin →
 * guest, guest stdout → stdout and stderr → stderr (or a tty: raw mode here, the guest's pty does the line
 * discipline once; window size changes follow), forwards the signals it receives to the command in the guest, and
 * exits with the command's exit code (128+N when a signal N killed it).
 *
 * Bundled by esbuild into /.runcvm/guest/lib/runcvm/exec-client.mjs (scripts/assets/30-runtime.sh). Small on
 * purpose: node:net and node:fs only, so its start-up is Node's own.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { runInherit } from '../../core/exec/index.js';
import { Channel, decodeExit, encodeData, encodeFrame, encodeSignal, encodeWinsize, FrameDecoder, FrameType } from '../agent/codec.js';
import { EXEC_PATHS, encodeOpen, exitCodeOf, requestFileName, type ExecRequest } from '../agent/exec.js';

/** Exit status when the exec itself (not the command) fails, as runc's own failures. */
export const CLIENT_FAILURE = 255;

const FORWARDED: Record<string, number> = { SIGTERM: 15, SIGINT: 2, SIGHUP: 1, SIGQUIT: 3, SIGUSR1: 10, SIGUSR2: 12, SIGALRM: 14, SIGCONT: 18 };

function fail(message: string, fix: string): number {
  process.stderr.write(`runcvm: error: ${message}\nruncvm: fix: ${fix}\n`);
  return CLIENT_FAILURE;
}

export function readRequest(stateDir: string, requestId: string): ExecRequest {
  const path = join(stateDir, requestFileName(requestId));
  const text = readFileSync(path, 'utf8');
  try {
    unlinkSync(path);
  } catch {
    /* already gone: harmless */
  }
  return JSON.parse(text) as ExecRequest;
}

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) resolve();
    else stream.write('', () => resolve());
  });
}

export async function runClient(argv: readonly string[], stateDir: string = EXEC_PATHS.stateDir, socketPath: string = EXEC_PATHS.clientSocket): Promise<number> {
  const requestId = argv[0];
  if (!requestId) return fail('the exec client was started without a request id', 'it is started by `runcvm-runtime exec`; do not run it by hand');
  let req: ExecRequest;
  try {
    req = readRequest(stateDir, requestId);
  } catch (err) {
    return fail(`cannot read the exec request ${requestId}: ${(err as Error).message}`, 'the request file is written by `runcvm-runtime exec` into the container state dir; run the exec again');
  }

  const tty = req.terminal && process.stdin.isTTY === true;
  if (tty) {
    // cfmakeraw on the exec's own tty (Node's raw mode keeps ONLCR, which would double every \r)
    await runInherit(EXEC_PATHS.busybox, ['stty', 'raw', '-echo']);
    if (process.stdout.isTTY && process.stdout.rows && process.stdout.columns) {
      req = { ...req, rows: process.stdout.rows, cols: process.stdout.columns };
    }
  }

  const sock: Socket = connect(socketPath);
  const result = await new Promise<number>((resolve) => {
    let exit: number | undefined;
    let connected = false;
    const dec = new FrameDecoder();
    sock.on('connect', () => {
      connected = true;
      sock.write(encodeOpen(req));
      if (tty && process.stdout.isTTY) {
        process.stdout.on('resize', () => {
          if (process.stdout.rows && process.stdout.columns) sock.write(encodeWinsize(process.stdout.rows, process.stdout.columns));
        });
      }
      process.stdin.on('data', (d: Buffer) => {
        for (const fr of encodeData(Channel.stdin, d)) sock.write(fr);
      });
      const eof = () => {
        if (!sock.destroyed) sock.write(encodeFrame(FrameType.EOF, Channel.stdin));
      };
      process.stdin.on('end', eof);
      process.stdin.on('error', eof);
      for (const [name, num] of Object.entries(FORWARDED)) {
        process.on(name as NodeJS.Signals, () => {
          if (!sock.destroyed) sock.write(encodeSignal(num));
        });
      }
    });
    sock.on('data', (chunk: Buffer) => {
      for (const f of dec.push(chunk)) {
        if (f.type === FrameType.DATA) {
          if (f.channel === Channel.stdout) process.stdout.write(f.payload);
          else if (f.channel === Channel.stderr) process.stderr.write(f.payload);
        } else if (f.type === FrameType.EXIT) {
          exit = exitCodeOf(decodeExit(f.payload));
        }
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        resolve(
          fail(
            `cannot reach the VM's exec agent (${socketPath}: ${err.code ?? err.message})`,
            'the container is not running a VM any more (it is stopping or has stopped), or its launcher is older than this runtime; start the container again',
          ),
        );
      }
    });
    sock.on('close', () => {
      if (exit !== undefined) resolve(exit);
      else if (connected) resolve(fail('the VM went away before the command finished (the container stopped)', 'check the container with `ctr task ls` / `docker ps -a`; its logs say why it stopped'));
    });
  });
  process.stdin.pause();
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  return result;
}
