/**
 * runc's command line: global flags, then a verb, then verb flags and the container id. Both `--flag value` and
 * `--flag=value` forms. Pure; the sh dispatcher does the same skip for its fast path.
 */

/** runc global flags that take a value (the dispatcher skips these too). */
export const GLOBAL_VALUE_FLAGS = new Set(['--root', '--log', '--log-format', '--rootless', '--criu']);
export const GLOBAL_BOOL_FLAGS = new Set(['--debug', '--systemd-cgroup', '--help', '-h', '--version', '-v']);

const CREATE_VALUE_FLAGS = new Set(['--bundle', '-b', '--pid-file', '--console-socket', '--preserve-fds']);
const CREATE_BOOL_FLAGS = new Set(['--no-pivot', '--no-new-keyring', '--detach', '-d', '--keep', '--no-subreaper']);

export interface RuncInvocation {
  globals: string[];
  /** e.g. root from --root, log from --log */
  globalValues: Record<string, string>;
  verb?: string;
  verbArgs: string[];
}

export function splitRuncArgs(argv: readonly string[]): RuncInvocation {
  const globals: string[] = [];
  const globalValues: Record<string, string> = {};
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (!a.startsWith('-')) break;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (GLOBAL_VALUE_FLAGS.has(name)) {
      if (eq > 0) {
        globals.push(a);
        globalValues[name.slice(2)] = a.slice(eq + 1);
        i += 1;
      } else {
        globals.push(a, argv[i + 1] ?? '');
        globalValues[name.slice(2)] = argv[i + 1] ?? '';
        i += 2;
      }
      continue;
    }
    globals.push(a);
    i += 1;
  }
  const verb = argv[i];
  return verb === undefined ? { globals, globalValues, verbArgs: [] } : { globals, globalValues, verb, verbArgs: argv.slice(i + 1) };
}

export interface CreateArgs {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds: number;
  flags: string[];
}

export class ArgsError extends Error {}

/** Parse `create`/`run` arguments; `cwd` is the default bundle (runc's rule). */
export function parseCreateArgs(args: readonly string[], cwd: string): CreateArgs {
  let bundle = '';
  let pidFile: string | undefined;
  let consoleSocket: string | undefined;
  let preserveFds = 0;
  const flags: string[] = [];
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (CREATE_VALUE_FLAGS.has(name)) {
      let value: string;
      if (eq > 0) value = a.slice(eq + 1);
      else {
        if (i + 1 >= args.length) throw new ArgsError(`flag ${name} needs a value`);
        value = args[++i]!;
      }
      if (name === '--bundle' || name === '-b') bundle = value;
      else if (name === '--pid-file') pidFile = value;
      else if (name === '--console-socket') consoleSocket = value;
      else if (name === '--preserve-fds') {
        preserveFds = Number(value);
        if (!Number.isInteger(preserveFds) || preserveFds < 0) throw new ArgsError(`--preserve-fds must be a non-negative integer, got "${value}"`);
      }
      continue;
    }
    if (CREATE_BOOL_FLAGS.has(name)) {
      flags.push(a);
      continue;
    }
    throw new ArgsError(`unknown flag ${a}`);
  }
  if (positional.length !== 1) throw new ArgsError(positional.length === 0 ? 'missing container id' : `expected one container id, got ${positional.join(' ')}`);
  const id = positional[0]!;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(id) || id.length > 1024) throw new ArgsError(`invalid container id "${id}"`);
  const resolved = !bundle ? cwd : bundle.startsWith('/') ? bundle : `${cwd.replace(/\/$/, '')}/${bundle}`;
  const out: CreateArgs = { id, bundle: resolved, preserveFds, flags };
  if (pidFile !== undefined) out.pidFile = pidFile;
  if (consoleSocket !== undefined) out.consoleSocket = consoleSocket;
  return out;
}

/**
 * The engine's `create`/`run` command line pointed at runcvm's private bundle: every `--bundle`/`-b` replaced by one
 * `--bundle BUNDLE` right after the verb, the rest unchanged. A relative `--console-socket` is resolved against the
 * caller's bundle, where runc would have looked for it (runc dials it after entering the bundle folder).
 */
export function withBundleArg(argv: readonly string[], bundle: string, callerBundle: string): string[] {
  const inv = splitRuncArgs(argv);
  if (inv.verb === undefined) return [...argv];
  const a = inv.verbArgs;
  const out: string[] = [];
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    if (x === '--' || !x.startsWith('-') || x === '-') {
      out.push(x);
      if (x === '--') {
        out.push(...a.slice(i + 1));
        break;
      }
      continue;
    }
    const eq = x.indexOf('=');
    const name = eq > 0 ? x.slice(0, eq) : x;
    if (!CREATE_VALUE_FLAGS.has(name)) {
      out.push(x);
      continue;
    }
    const value = eq > 0 ? x.slice(eq + 1) : a[++i];
    if (name === '--bundle' || name === '-b') continue;
    if (value === undefined) {
      out.push(x);
      continue;
    }
    const resolved = name === '--console-socket' && value !== '' && !value.startsWith('/') ? `${callerBundle.replace(/\/+$/, '')}/${value}` : value;
    out.push(name, resolved);
  }
  return [...inv.globals, inv.verb, '--bundle', bundle, ...out];
}

/** `run` without `-d`/`--detach`/`--keep`: runc deletes the container itself when it ends (the dispatcher never sees a delete). */
export function isForegroundRun(argv: readonly string[]): boolean {
  const inv = splitRuncArgs(argv);
  if (inv.verb !== 'run') return false;
  const a = inv.verbArgs;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    if (x === '--') break;
    if (CREATE_VALUE_FLAGS.has(x)) i++;
    else if (/^(--detach|-d|--keep)(=(true|1))?$/.test(x)) return false;
  }
  return true;
}
