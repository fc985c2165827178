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
  /** called with the child's pid right after it is spawned (e.g. for a memory sampler) */
  onSpawn?: (pid: number) => void;
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
  if (options.onSpawn && child.pid !== undefined) options.onSpawn(child.pid);
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

/**
 * A light runner for hot paths (preflight probes): node:child_process directly, without loading execa (~150 ms of
 * start-up). Same redaction, never throws; for short commands with small outputs only.
 */
export async function runQuick(
  file: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<RunResult> {
  const { execFile } = await import('node:child_process');
  const command = formatCommand(file, args);
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      file,
      [...args],
      { timeout: options.timeoutMs ?? 10_000, env: options.env ? { ...process.env, ...options.env } : process.env, cwd: options.cwd, encoding: 'utf8', maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        const err = error as (NodeJS.ErrnoException & { code?: number | string; signal?: string; killed?: boolean }) | null;
        let exitCode = 0;
        if (err) exitCode = typeof err.code === 'number' ? err.code : err.signal ? 128 + signalNumber(err.signal) : 127;
        const result: RunResult = {
          command,
          exitCode,
          stdout: globalRedactor.redact(stdout),
          stderr: globalRedactor.redact(stderr || (err && typeof err.code === 'string' ? err.message : '')),
          durationMs: Math.round(performance.now() - started),
          timedOut: Boolean(err?.killed),
        };
        if (err?.signal) result.signal = err.signal;
        resolve(result);
      },
    );
  });
}

/**
 * Run a child that shares our stdio (and optionally extra inherited descriptors 3..3+passFds-1, as runc's
 * --preserve-fds needs), wait for it, and return how it ended. For wrappers that hand a whole invocation on.
 */
export async function runInherit(
  file: string,
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; passFds?: number; cwd?: string } = {},
): Promise<{ exitCode: number; signal?: string }> {
  const { spawn } = await import('node:child_process');
  const extra = Array.from({ length: options.passFds ?? 0 }, (_v, i) => 3 + i);
  return new Promise((resolve) => {
    const child = spawn(file, [...args], { stdio: ['inherit', 'inherit', 'inherit', ...extra], env: options.env ?? process.env, cwd: options.cwd });
    child.on('error', (err) => {
      process.stderr.write(`${file}: ${err.message}\n`);
      resolve({ exitCode: 127 });
    });
    child.on('exit', (code, signal) => {
      resolve(signal ? { exitCode: 128 + signalNumber(signal), signal } : { exitCode: code ?? 1 });
    });
  });
}

/** A supervised child with piped stdout/stderr (e.g. a hypervisor whose output the caller relays and logs). */
export async function spawnPiped(file: string, args: readonly string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}) {
  const { spawn } = await import('node:child_process');
  return spawn(file, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env, cwd: options.cwd });
}

/** Run with binary stdin/stdout (CGI programs, archive tools). Never throws; stderr is redacted text. */
export async function runBinary(
  file: string,
  args: readonly string[],
  options: { input?: Buffer; env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {},
): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    const child = execFile(
      file,
      [...args],
      { env: options.env, cwd: options.cwd, timeout: options.timeoutMs ?? 60_000, encoding: 'buffer', maxBuffer: 256 << 20 },
      (error, stdout, stderr) => {
        const err = error as (NodeJS.ErrnoException & { code?: number | string }) | null;
        const exitCode = err ? (typeof err.code === 'number' ? err.code : 127) : 0;
        resolve({ exitCode, stdout, stderr: globalRedactor.redact(stderr.toString('utf8')) });
      },
    );
    // A child may exit without reading all of its input (EPIPE): its exit code says how it ended, not this write.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? Buffer.alloc(0));
  });
}

/**
 * The same contract as `run` (argv only, redaction of the command line, outputs and line callbacks, AbortSignal
 * cancel with TERM then KILL, RunResult / ProcessError), built on node:child_process without loading execa: for
 * start-up-sensitive paths such as kimia's build, where execa's ~150 ms import would be pure overhead.
 */
export async function runLight(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { spawn } = await import('node:child_process');
  const redactor = makeRedactor(options);
  const command = formatCommand(file, args, redactor);
  const started = performance.now();
  const env = options.extendEnv === false ? options.env : { ...process.env, ...options.env };
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(file, [...args], {
      cwd: options.cwd,
      env: env as NodeJS.ProcessEnv,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      uid: options.uid,
      gid: options.gid,
    });
    let stdout = '';
    let stderr = '';
    let spawnError: Error | undefined;
    let timedOut = false;
    const outSplit = options.onStdoutLine ? lineSplitter((l) => options.onStdoutLine!(redactor.redact(l))) : undefined;
    const errSplit = options.onStderrLine ? lineSplitter((l) => options.onStderrLine!(redactor.redact(l))) : undefined;
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (c: string) => {
      stdout += c;
      outSplit?.push(c);
    });
    child.stderr!.on('data', (c: string) => {
      stderr += c;
      errSplit?.push(c);
    });
    if (options.input !== undefined) {
      child.stdin!.on('error', () => undefined); // EPIPE when the child exits unread: its exit code tells
      child.stdin!.end(options.input);
    }
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const terminate = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), options.killGraceMs ?? 5000);
    };
    const timer = options.timeoutMs ? setTimeout(() => { timedOut = true; terminate(); }, options.timeoutMs) : undefined;
    const onAbort = () => terminate();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      spawnError = err;
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      outSplit?.flush();
      errSplit?.flush();
      const result: RunResult = {
        command,
        exitCode: spawnError ? 127 : code ?? (signal ? 128 + signalNumber(signal) : -1),
        stdout: redactor.redact(stdout),
        stderr: redactor.redact(spawnError && !stderr ? spawnError.message : stderr),
        durationMs: Math.round(performance.now() - started),
        timedOut,
      };
      if (signal) result.signal = signal;
      if (result.exitCode !== 0 && options.reject !== false) reject(new ProcessError(result));
      else resolve(result);
    });
  });
}
