/**
 * The one process runner. Argv arrays only (never shell strings); every command line, output and error message
 * passes through the redactor; cancellation goes through an AbortSignal (SIGTERM, then SIGKILL after a grace delay).
 * execa is imported lazily so that commands which never spawn do not pay for it at start-up.
 */
import { globalRedactor, formatCommand, Redactor } from '../redact.js';

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** replace the environment instead of extending process.env */
  extendEnv?: boolean;
  input?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** extra secret values to mask, on top of the global redactor */
  secrets?: Iterable<string>;
  redactor?: Redactor;
  /** called for each stdout / stderr line as it arrives (already redacted) */
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  /** pass the child's stdio straight through to ours (interactive tools) */
  inherit?: boolean;
  /** resolve instead of throwing on a non-zero exit */
  reject?: boolean;
  /** run as another user (numeric uid/gid) */
  uid?: number;
  gid?: number;
  /** delay between SIGTERM and SIGKILL on cancel/timeout */
  killGraceMs?: number;
}

export interface RunResult {
  /** the redacted command line, for messages */
  command: string;
  exitCode: number;
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export class ProcessError extends Error implements RunResult {
  command: string;
  exitCode: number;
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;

  constructor(result: RunResult) {
    const how = result.timedOut
      ? 'timed out'
      : result.signal
        ? `was killed by ${result.signal}`
        : `failed with exit code ${result.exitCode}`;
    const firstWord = result.command.split(' ')[0] ?? '';
    const name = firstWord.split('/').pop() ?? firstWord;
    const tail = lastLines(result.stderr || result.stdout, 5);
    super(`${name} ${how}: ${result.command}${tail ? `\n${tail}` : ''}`);
    this.name = 'ProcessError';
    this.command = result.command;
    this.exitCode = result.exitCode;
    if (result.signal !== undefined) this.signal = result.signal;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
    this.durationMs = result.durationMs;
    this.timedOut = result.timedOut;
  }
}

export function lastLines(text: string, n: number): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}

function makeRedactor(options: RunOptions): Redactor {
  const base = options.redactor ?? globalRedactor;
  const extra = options.secrets ? [...options.secrets] : [];
  if (extra.length === 0) return base;
  // A private copy so that per-call secrets do not leak into the global set.
  return new Redactor([...base.values(), ...extra]);
}

function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; flush(): void } {
  let buffered = '';
  return {
    push(chunk) {
      buffered += chunk;
      let idx: number;
      while ((idx = buffered.indexOf('\n')) >= 0) {
        onLine(buffered.slice(0, idx));
        buffered = buffered.slice(idx + 1);
      }
    },
    flush() {
      if (buffered) onLine(buffered);
      buffered = '';
    },
  };
}

export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { execa } = await import('execa');
  const redactor = makeRedactor(options);
  const command = formatCommand(file, args, redactor);
  const started = performance.now();
  const child = execa(file, [...args], {
    cwd: options.cwd,
    env: options.env,
    extendEnv: options.extendEnv ?? true,
    input: options.input,
    timeout: options.timeoutMs,
    cancelSignal: options.signal,
    forceKillAfterDelay: options.killGraceMs ?? 5000,
    reject: false,
    stdin: options.inherit ? 'inherit' : options.input === undefined ? 'ignore' : undefined,
    stdout: options.inherit ? 'inherit' : 'pipe',
    stderr: options.inherit ? 'inherit' : 'pipe',
    uid: options.uid,
    gid: options.gid,
    stripFinalNewline: false,
    encoding: 'utf8',
    buffer: !options.inherit,
  });
  if (options.onStdoutLine && child.stdout) {
    const cb = options.onStdoutLine;
    const split = lineSplitter((l) => cb(redactor.redact(l)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => split.push(c));
    child.stdout.on('end', () => split.flush());
  }
  if (options.onStderrLine && child.stderr) {
    const cb = options.onStderrLine;
    const split = lineSplitter((l) => cb(redactor.redact(l)));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => split.push(c));
    child.stderr.on('end', () => split.flush());
  }
  const r = await child;
  const result: RunResult = {
    command,
    exitCode: r.exitCode ?? (r.signal ? 128 + signalNumber(r.signal) : -1),
    stdout: redactor.redact(typeof r.stdout === 'string' ? r.stdout : ''),
    stderr: redactor.redact(typeof r.stderr === 'string' ? r.stderr : ''),
    durationMs: Math.round(performance.now() - started),
    timedOut: Boolean(r.timedOut),
  };
  if (r.signal) result.signal = r.signal;
  if (r.failed && r.exitCode === undefined && !r.signal && !r.timedOut && !r.isCanceled) {
    // spawn itself failed (ENOENT, EACCES): say which binary is missing
    result.stderr = redactor.redact(r.message ?? "");
    result.exitCode = 127;
  }
  if (result.exitCode !== 0 && options.reject !== false) throw new ProcessError(result);
  return result;
}

/** Run and return trimmed stdout. */
export async function capture(file: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const r = await run(file, args, options);
  return r.stdout.trim();
}

/** True when the command exits 0 (never throws). */
export async function succeeds(file: string, args: readonly string[], options: RunOptions = {}): Promise<boolean> {
  try {
    const r = await run(file, args, { ...options, reject: false });
    return r.exitCode === 0;
  } catch {
    return false;
  }
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10,
  SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
};

export function signalNumber(name: string): number {
  return SIGNALS[name] ?? 0;
}

/** Detached long-running child (services, hypervisors) with the same redaction rules; returns the ChildProcess. */
export async function spawnService(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; stdoutFile?: string; uid?: number; gid?: number; detached?: boolean } = {},
) {
  const { spawn } = await import('node:child_process');
  const fs = await import('node:fs');
  const out = options.stdoutFile ? fs.openSync(options.stdoutFile, 'a') : 'ignore';
  const child = spawn(file, [...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', out, out],
    detached: options.detached ?? true,
    uid: options.uid,
    gid: options.gid,
  });
  if (typeof out === 'number') fs.closeSync(out);
  return child;
}
