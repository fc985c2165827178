/**
 * The one process runner. Two entry points:
 *   - `run(file, args, options)`: run to completion; one result shape (RunResult: the redacted command line, exit
 *     code, signal, stdout, stderr, duration, timeout), a non-zero exit throws a ProcessError of the same shape unless
 *     `reject: false`. `stdio: 'inherit'` hands the child our own stdio (and runc's --preserve-fds descriptors).
 *   - `spawnChild(file, args, options)`: a long-running child the caller supervises (services, hypervisors,
 *     virtiofsd), with piped output, output to a file, or none.
 * Argv arrays only (never shell strings); command lines, outputs and error messages pass through the redactor;
 * cancellation goes through an AbortSignal (SIGTERM, then SIGKILL after a grace delay). Built on node:child_process
 * alone: the launcher bundle and every start-up-sensitive command (kimia build, create, exec) pay no import cost.
 */
import { constants as osConstants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import type { ChildProcess } from 'node:child_process';
import { globalRedactor, formatCommand, Redactor } from '../redact.js';

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** false: `env` replaces the environment instead of extending process.env */
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
  /** 'inherit': the child shares our stdin, stdout and stderr (nothing is captured); default 'pipe' */
  stdio?: 'pipe' | 'inherit';
  /** with stdio 'inherit': our descriptors 3 … 3+passFds-1 are passed on too (runc's --preserve-fds) */
  passFds?: number;
  /** resolve instead of throwing on a non-zero exit */
  reject?: boolean;
  /** run as another user (numeric uid/gid) */
  uid?: number;
  gid?: number;
  /** delay between SIGTERM and SIGKILL on cancel/timeout */
  killGraceMs?: number;
  /** called with the child's pid right after it is spawned (e.g. for a memory sampler) */
  onSpawn?: (pid: number) => void;
  /** 'buffer': stdout as raw bytes, not redacted (CGI programs, archives); stderr is always redacted text */
  encoding?: 'utf8' | 'buffer';
}

export interface RunResult<Out extends string | Buffer = string> {
  /** the redacted command line, for messages */
  command: string;
  exitCode: number;
  signal?: string;
  stdout: Out;
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

  constructor(result: RunResult<string | Buffer>) {
    const how = result.timedOut
      ? 'timed out'
      : result.signal
        ? `was killed by ${result.signal}`
        : `failed with exit code ${result.exitCode}`;
    const firstWord = result.command.split(' ')[0] ?? '';
    const name = firstWord.split('/').pop() ?? firstWord;
    const stdout = typeof result.stdout === 'string' ? result.stdout : '';
    const tail = lastLines(result.stderr || stdout, 5);
    super(`${name} ${how}: ${result.command}${tail ? `\n${tail}` : ''}`);
    this.name = 'ProcessError';
    this.command = result.command;
    this.exitCode = result.exitCode;
    if (result.signal !== undefined) this.signal = result.signal;
    this.stdout = stdout;
    this.stderr = result.stderr;
    this.durationMs = result.durationMs;
    this.timedOut = result.timedOut;
  }
}

export function lastLines(text: string, n: number): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}

/** The number of a signal by name (SIGTERM → 15), from the platform's own table; 0 when unknown. */
export function signalNumber(name: string): number {
  return (osConstants.signals as Record<string, number | undefined>)[name] ?? 0;
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

function environment(env: Record<string, string | undefined> | undefined, extend: boolean | undefined): NodeJS.ProcessEnv {
  return (extend === false ? env ?? {} : { ...process.env, ...env }) as NodeJS.ProcessEnv;
}

export function run(file: string, args: readonly string[], options: RunOptions & { encoding: 'buffer' }): Promise<RunResult<Buffer>>;
export function run(file: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult<string | Buffer>> {
  const { spawn } = await import('node:child_process');
  const redactor = makeRedactor(options);
  const command = formatCommand(file, args, redactor);
  const started = performance.now();
  const inherit = options.stdio === 'inherit';
  const binary = options.encoding === 'buffer';
  const extra = inherit ? Array.from({ length: options.passFds ?? 0 }, (_v, i) => 3 + i) : [];
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      cwd: options.cwd,
      env: environment(options.env, options.extendEnv),
      stdio: inherit ? ['inherit', 'inherit', 'inherit', ...extra] : [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      uid: options.uid,
      gid: options.gid,
    });
    if (options.onSpawn && child.pid !== undefined) options.onSpawn(child.pid);
    const out: Buffer[] = [];
    const decoder = new StringDecoder('utf8'); // a line callback never sees half a character
    let stderr = '';
    let spawnError: Error | undefined;
    let timedOut = false;
    const outSplit = options.onStdoutLine ? lineSplitter((l) => options.onStdoutLine!(redactor.redact(l))) : undefined;
    const errSplit = options.onStderrLine ? lineSplitter((l) => options.onStderrLine!(redactor.redact(l))) : undefined;
    child.stdout?.on('data', (c: Buffer) => {
      out.push(c);
      if (outSplit) outSplit.push(decoder.write(c));
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (c: string) => {
      stderr += c;
      errSplit?.push(c);
    });
    if (options.input !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined); // EPIPE when the child exits unread: its exit code tells
      child.stdin.end(options.input);
    }
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const terminate = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), options.killGraceMs ?? 5000);
    };
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          terminate();
        }, options.timeoutMs)
      : undefined;
    const onAbort = () => terminate();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      spawnError = err;
      // a program that cannot start (ENOENT, EACCES): with shared stdio, say so where the user looks
      if (inherit) process.stderr.write(`${file}: ${err.message}\n`);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      outSplit?.push(decoder.end());
      outSplit?.flush();
      errSplit?.flush();
      const raw = Buffer.concat(out);
      const result: RunResult<string | Buffer> = {
        command,
        exitCode: spawnError ? 127 : code ?? (signal ? 128 + signalNumber(signal) : -1),
        stdout: binary ? raw : redactor.redact(raw.toString('utf8')),
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

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** false: `env` replaces the environment instead of extending process.env */
  extendEnv?: boolean;
  uid?: number;
  gid?: number;
  /** own process group (services that must outlive a test's worker until their closer runs) */
  detached?: boolean;
  /** 'pipe' (default): stdout/stderr for the caller to read; 'ignore'; or both appended to a file */
  output?: 'pipe' | 'ignore' | { file: string };
  /** open descriptors the child inherits as its fd 3, 4, … (e.g. the file QEMU reads a migration stream from) */
  inheritFds?: readonly number[];
}

/** A long-running child the caller supervises; stdin is closed. */
export async function spawnChild(file: string, args: readonly string[], options: SpawnOptions = {}): Promise<ChildProcess> {
  const { spawn } = await import('node:child_process');
  const output = options.output ?? 'pipe';
  let fd: number | undefined;
  if (typeof output === 'object') {
    const { openSync } = await import('node:fs');
    fd = openSync(output.file, 'a');
  }
  try {
    const stream = fd ?? output;
    return spawn(file, [...args], {
      cwd: options.cwd,
      env: environment(options.env, options.extendEnv),
      stdio: ['ignore', stream as 'pipe' | 'ignore' | number, stream as 'pipe' | 'ignore' | number, ...(options.inheritFds ?? [])],
      detached: options.detached ?? false,
      uid: options.uid,
      gid: options.gid,
    });
  } finally {
    if (fd !== undefined) (await import('node:fs')).closeSync(fd);
  }
}
