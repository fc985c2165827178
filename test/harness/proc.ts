/**
 * Low-level helpers shared by the service modules: a supervised background process (log file, early-exit
 * detection, SIGTERM→SIGKILL stop of its whole process group, killed on worker exit as a last resort), and host
 * inspection for teardown checks (processes by command line, mounts under a folder).
 *
 *   const p = await startProcess('registry', 'docker-registry', ['serve', cfg], { logPath });
 *   await waitFor('...', async () => { p.assertAlive(); ... });
 *   await p.stop();
 */
import { readFile, readdir, readlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { run, spawnChild } from '../../src/core/exec/index.js';
import { GiveUp } from './wait.js';

const live = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if a test worker dies without running its afterAll: never leave a daemon behind.
  process.on('exit', () => {
    for (const pid of live) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

export interface ServiceProcess {
  name: string;
  pid: number;
  logPath: string;
  child: ChildProcess;
  /** resolves when the process has exited */
  exited: Promise<{ code: number | null; signal: string | null }>;
  alive(): boolean;
  /** throws GiveUp (with the log tail) when the process has exited: use inside waitFor probes */
  assertAlive(): void;
  /** SIGTERM to the process group, SIGKILL after graceMs; idempotent */
  stop(graceMs?: number): Promise<void>;
}

export function logTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startProcess(
  name: string,
  file: string,
  args: string[],
  options: { logPath: string; env?: Record<string, string | undefined>; cwd?: string },
): Promise<ServiceProcess> {
  installExitHook();
  const child = await spawnChild(file, args, { output: { file: options.logPath }, ...(options.env ? { env: options.env } : {}), ...(options.cwd ? { cwd: options.cwd } : {}), detached: true });
  let exit: { code: number | null; signal: string | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      exit = { code: 127, signal: null };
      resolve(exit);
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  // Give a failed spawn (ENOENT) a chance to surface before we report a pid.
  await new Promise((r) => setImmediate(r));
  if (spawnError || child.pid === undefined) {
    throw new Error(`could not start ${name} (${file}): ${spawnError?.message ?? 'no pid'}`);
  }
  const pid = child.pid;
  live.add(pid);
  void exited.then(() => live.delete(pid));
  let stopping: Promise<void> | undefined;
  const sp: ServiceProcess = {
    name,
    pid,
    logPath: options.logPath,
    child,
    exited,
    alive: () => exit === undefined,
    assertAlive() {
      if (exit !== undefined) {
        const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
        throw new GiveUp(`${name} ${how}; last log lines (${options.logPath}):\n${logTail(options.logPath)}`);
      }
    },
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        if (exit === undefined) {
          signalGroup(pid, 'SIGTERM');
          const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        // anything left in the group (helpers that ignored SIGTERM)
        signalGroup(pid, 'SIGKILL');
        live.delete(pid);
      })();
      return stopping;
    },
  };
  return sp;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
}

export interface HostProcess {
  pid: number;
  argv: string[];
}

/** Processes whose command line (argv joined by spaces) contains `needle`. */
export async function processesMatching(needle: string): Promise<HostProcess[]> {
  const found: HostProcess[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const raw = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (!raw) continue;
      const argv = raw.replace(/\0$/, '').split('\0');
      if (argv.join(' ').includes(needle)) found.push({ pid, argv });
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

/** Kill (SIGKILL) every process whose command line contains `needle`; waits until they are gone. */
export async function killMatching(needle: string, timeoutMs = 5000): Promise<number[]> {
  const procs = await processesMatching(needle);
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && (await processesMatching(needle)).length > 0) await new Promise((r) => setTimeout(r, 20));
  return procs.map((p) => p.pid);
}

/** The working directory of a process, or undefined. */
export async function processCwd(pid: number): Promise<string | undefined> {
  try {
    return await readlink(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

function unescapeMount(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below `dir` (from /proc/self/mountinfo), deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const base = dir.replace(/\/+$/, '');
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points = new Set<string>();
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const path = unescapeMount(mp);
    if (path === base || path.startsWith(`${base}/`)) points.add(path);
  }
  return [...points].sort((a, b) => b.length - a.length);
}

/** Unmount everything at or below `dir` (deepest first; lazy unmount as a fallback). Returns what was unmounted. */
export async function unmountAll(dir: string): Promise<string[]> {
  const done: string[] = [];
  for (let round = 0; round < 5; round++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) break;
    for (const mp of points) {
      const r = await run('umount', [mp], { reject: false });
      if (r.exitCode !== 0) await run('umount', ['-l', mp], { reject: false });
      done.push(mp);
    }
  }
  return done;
}
