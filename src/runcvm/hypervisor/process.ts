/**
 * The hypervisor process, as every backend runs it: stale sockets removed, its files written (0600), the command
 * spawned with exactly the plan's environment, stdout relayed, the end of stderr kept for messages, the exit awaited
 * once. A backend's `start` adds what is its own (Firecracker: wait for its API, shut down through it).
 */
import { rm } from 'node:fs/promises';
import { spawnChild } from '../../core/exec/index.js';
import { atomicWrite } from '../../core/fsx/index.js';
import type { HypervisorPlan, StartOptions, VmExit } from './types.js';

/** how much of stderr is kept for messages */
const OUTPUT_TAIL = 4000;

export interface VmProcess {
  pid: number | undefined;
  exited: Promise<VmExit>;
  running(): boolean;
  kill(): void;
}

export async function removeStale(paths: readonly string[]): Promise<void> {
  for (const path of paths) await rm(path, { force: true });
}

/** `inheritFds`: what the hypervisor gets as fd 3, 4, … (the state file of a QEMU template restore) */
export async function startProcess(plan: HypervisorPlan, opts: StartOptions, inheritFds?: readonly number[]): Promise<VmProcess> {
  await removeStale(plan.cleanup);
  for (const f of plan.files) await atomicWrite(f.path, f.content, 0o600);
  const [file, ...args] = plan.argv;
  if (!file) throw new Error(`${plan.hypervisor}: empty command line`);
  const child = await spawnChild(file, args, { env: plan.env, extendEnv: false, ...(inheritFds ? { inheritFds } : {}) });
  let output = '';
  let partial = '';
  let running = true;
  child.stdout?.on('data', (d: Buffer) => opts.onStdout(d));
  child.stderr?.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    output = (output + text).slice(-OUTPUT_TAIL);
    if (!opts.onStderrLine) return;
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) opts.onStderrLine(line);
  });
  const ended = new Promise<VmExit>((resolve) => {
    child.on('error', (err) => {
      running = false;
      output += `\n${err.message}`;
      resolve({ code: 127, signal: null, output });
    });
    // 'close': stdout and stderr are drained too, so the last console bytes are relayed before the exit is seen
    child.on('close', (code, signal) => {
      running = false;
      if (partial && opts.onStderrLine) opts.onStderrLine(partial);
      resolve({ code, signal, output });
    });
  });
  // the sockets a hypervisor leaves behind when it is killed are gone by the time its exit is seen
  const exited = ended.then(async (e) => {
    await removeStale(plan.cleanup).catch(() => undefined);
    return e;
  });
  return {
    pid: child.pid,
    exited,
    running: () => running,
    kill: () => {
      if (running) child.kill('SIGKILL');
    },
  };
}
