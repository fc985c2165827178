/**
 * `runcvm nfs-serve --export DIR [--export DIR2 …] --listen ADDR:PORT [--allow ADDR[/PREFIX] …] [--insecure]
 *                   [--state DIR] [--verbose]`
 *
 * Serves the folders over NFSv3 with MOUNT v3 on the same TCP port (clients mount with
 * `-o vers=3,proto=tcp,port=PORT,mountport=PORT,mountproto=tcp,nolock,addr=ADDR`, no portmapper).
 * Only the --allow addresses may connect (loopback only when none is given), and only from a reserved source port
 * (< 1024, as knfsd's default `secure`) unless --insecure: AUTH_SYS identities are trusted, so whoever can connect
 * can act as any uid; keep the list to the one client the folders belong to.
 * Prints `runcvm nfs-serve: listening on ADDR:PORT` on stdout once ready; SIGTERM or SIGINT stop it (exit 0).
 * The file-handle map lives in --state DIR (default /run/runcvm/nfs as root, see defaultStateDir).
 */
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isToolError } from '../../core/errors.js';
import { runcvmErrors } from '../errors.js';
import { LOOPBACK_ONLY, NfsServer, parseListen } from './server.js';
import { peerMatcher, PeerPolicyError } from './transport.js';

/** nfs-serve's errors are in runcvm's one table (src/runcvm/errors.ts, the nfs-serve section). */
const nfsErrors = runcvmErrors;

export interface NfsServeArgs {
  exports: string[];
  listen: { host: string; port: number };
  listenText: string;
  /** who may connect: the --allow values, or loopback only */
  allow: string[];
  /** --insecure: accept unreserved source ports too */
  insecure: boolean;
  stateDir: string | undefined;
  verbose: boolean;
}

/** Pure argument parsing; throws NFS_USAGE. */
export function parseNfsServeArgs(argv: readonly string[]): NfsServeArgs {
  const exports: string[] = [];
  let listenText: string | undefined;
  let stateDir: string | undefined;
  let verbose = false;
  let insecure = false;
  const allow: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const [flag, inline] = arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw nfsErrors.fail('NFS_USAGE', { problem: `${flag} needs a value` });
      return v;
    };
    switch (flag) {
      case '--export':
        exports.push(value());
        break;
      case '--listen':
        listenText = value();
        break;
      case '--state':
        stateDir = value();
        break;
      case '--allow':
        allow.push(value());
        break;
      case '--insecure':
        insecure = true;
        break;
      case '--verbose':
      case '-v':
        verbose = true;
        break;
      default:
        throw nfsErrors.fail('NFS_USAGE', { problem: `unknown argument "${arg}"` });
    }
  }
  if (exports.length === 0) throw nfsErrors.fail('NFS_USAGE', { problem: 'no --export given' });
  if (!listenText) throw nfsErrors.fail('NFS_USAGE', { problem: 'no --listen ADDR:PORT given' });
  let listen: { host: string; port: number };
  try {
    listen = parseListen(listenText);
  } catch (err) {
    throw nfsErrors.fail('NFS_USAGE', { problem: (err as Error).message });
  }
  try {
    peerMatcher(allow);
  } catch (err) {
    if (err instanceof PeerPolicyError) throw nfsErrors.fail('NFS_USAGE', { problem: `--allow ${err.message}` });
    throw err;
  }
  return { exports, listen, listenText, allow: allow.length ? allow : [...LOOPBACK_ONLY], insecure, stateDir, verbose };
}

/** Default state folder: /run/runcvm/nfs for root, else $XDG_RUNTIME_DIR (or the temp dir)/runcvm-nfs-<uid>. Pure. */
export function defaultStateDir(uid: number, env: Record<string, string | undefined>, temp: string): string {
  if (uid === 0) return '/run/runcvm/nfs';
  return join(env.XDG_RUNTIME_DIR || temp, `runcvm-nfs-${uid}`);
}

export async function nfsServeMain(argv: string[]): Promise<number> {
  const say = (line: string) => process.stderr.write(`runcvm nfs-serve: ${line}\n`);
  let args: NfsServeArgs;
  let server: NfsServer;
  try {
    args = parseNfsServeArgs(argv);
    const stateDir = args.stateDir ?? defaultStateDir(process.getuid?.() ?? 0, process.env, tmpdir());
    try {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw nfsErrors.fail('NFS_STATE', { dir: stateDir, problem: (err as Error).message }, err);
    }
    const options = { exports: args.exports, stateDir, log: args.verbose ? say : undefined };
    try {
      server = await NfsServer.create(options);
    } catch (err) {
      const path = args.exports.find((p) => (err as Error).message.includes(p)) ?? args.exports.join(', ');
      throw nfsErrors.fail('NFS_EXPORT', { path, problem: (err as Error).message }, err);
    }
    try {
      const bound = await server.listen(args.listen.host, args.listen.port, { allow: args.allow, reservedPortsOnly: !args.insecure });
      const host = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
      process.stdout.write(`runcvm nfs-serve: listening on ${host}:${bound.port}\n`);
    } catch (err) {
      await server.close();
      throw nfsErrors.fail('NFS_LISTEN', { listen: args.listenText, problem: (err as Error).message }, err);
    }
  } catch (err) {
    if (isToolError(err)) {
      process.stderr.write(`${err.render()}\n`);
      return err.exitCode;
    }
    throw err;
  }
  return new Promise<number>((resolveExit) => {
    const stop = (signal: string) => {
      if (args.verbose) say(`${signal}: stopping`);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      void server.close().then(() => resolveExit(0));
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
}
