/**
 * runc's `exec` flags (runc 1.1): `--flag value` and `--flag=value`, short aliases, repeatable -e/--cap/-g.
 * Pure. Unknown flags are an error (runc would reject them too; the caller then lets runc print its own message).
 */

export interface ExecArgs {
  id: string;
  /** the command when no --process file is given */
  command: string[];
  process?: string;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  tty: boolean;
  cwd?: string;
  env: string[];
  user?: string;
  additionalGids: number[];
  caps: string[];
  noNewPrivs: boolean;
  processLabel?: string;
  apparmor?: string;
  preserveFds: number;
  cgroup?: string;
  ignorePaused: boolean;
}

export class ExecArgsError extends Error {}

const VALUE_FLAGS: Record<string, string> = {
  '--process': 'process',
  '-p': 'process',
  '--pid-file': 'pidFile',
  '--console-socket': 'consoleSocket',
  '--cwd': 'cwd',
  '--env': 'env',
  '-e': 'env',
  '--user': 'user',
  '-u': 'user',
  '--additional-gids': 'additionalGids',
  '-g': 'additionalGids',
  '--cap': 'caps',
  '-c': 'caps',
  '--process-label': 'processLabel',
  '--apparmor': 'apparmor',
  '--preserve-fds': 'preserveFds',
  '--cgroup': 'cgroup',
};

const BOOL_FLAGS: Record<string, 'detach' | 'tty' | 'noNewPrivs' | 'ignorePaused'> = {
  '--detach': 'detach',
  '-d': 'detach',
  '--tty': 'tty',
  '-t': 'tty',
  '--no-new-privs': 'noNewPrivs',
  '--ignore-paused': 'ignorePaused',
};

/** Flags that take a value, for the sh dispatcher's id search (kept in step by a unit test). */
export const EXEC_VALUE_FLAGS = Object.keys(VALUE_FLAGS);

function parseBoolValue(name: string, v: string): boolean {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new ExecArgsError(`invalid boolean value "${v}" for ${name}`);
}

/** Parse the arguments after the `exec` verb. The first positional is the id; everything after it is the command. */
export function parseExecArgs(args: readonly string[]): ExecArgs {
  const out: ExecArgs = { id: '', command: [], detach: false, tty: false, env: [], additionalGids: [], caps: [], noNewPrivs: false, preserveFds: 0, ignorePaused: false };
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      i += 1;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const key = VALUE_FLAGS[name];
    if (key) {
      let value: string;
      if (eq > 0) value = a.slice(eq + 1);
      else {
        if (i + 1 >= args.length) throw new ExecArgsError(`flag needs an argument: ${name}`);
        value = args[++i]!;
      }
      switch (key) {
        case 'env':
          out.env.push(value);
          break;
        case 'caps':
          out.caps.push(value);
          break;
        case 'additionalGids': {
          const g = Number(value);
          if (!/^\d+$/.test(value) || !Number.isSafeInteger(g)) throw new ExecArgsError(`invalid value "${value}" for ${name}: not a group id`);
          out.additionalGids.push(g);
          break;
        }
        case 'preserveFds': {
          const n = Number(value);
          if (!/^\d+$/.test(value)) throw new ExecArgsError(`invalid value "${value}" for ${name}: not a non-negative integer`);
          out.preserveFds = n;
          break;
        }
        default:
          (out as unknown as Record<string, string>)[key] = value;
      }
      continue;
    }
    const bkey = BOOL_FLAGS[name];
    if (bkey) {
      out[bkey] = eq > 0 ? parseBoolValue(name, a.slice(eq + 1)) : true;
      continue;
    }
    throw new ExecArgsError(`flag provided but not defined: ${name}`);
  }
  const rest = args.slice(i);
  if (rest.length === 0) throw new ExecArgsError('"exec" requires a minimum of 1 argument (the container id)');
  out.id = rest[0]!;
  out.command = rest.slice(1);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(out.id) || out.id.length > 1024) throw new ExecArgsError(`invalid container id "${out.id}"`);
  if (!out.process && out.command.length === 0) throw new ExecArgsError('exec needs a command or --process FILE');
  return out;
}

/** `--user` value "uid[:gid]" (runc accepts only numbers here). */
export function parseUserFlag(value: string): { uid: number; gid?: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  if (!m) throw new ExecArgsError(`invalid --user "${value}": runc expects UID[:GID] as numbers`);
  return m[2] !== undefined ? { uid: Number(m[1]), gid: Number(m[2]) } : { uid: Number(m[1]) };
}
