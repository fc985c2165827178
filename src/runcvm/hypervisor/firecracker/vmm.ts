/**
 * Running one Firecracker process: start it (API socket, or --config-file), wait until its API answers, configure
 * and boot through the API, and stop it gracefully (SendCtrlAltDel, bounded wait, then SIGKILL). Every failure is
 * mapped to a runcvm error with cause and fix (errors.ts).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnChild } from '../../../core/exec/index.js';
import { atomicWrite } from '../../../core/fsx/index.js';
import { isToolError, type ToolError } from '../../../core/errors.js';
import { FirecrackerApiError, FirecrackerClient, NotListeningError } from './client.js';
import { apiError, exitError } from './errors.js';
import { runcvmErrors } from '../../errors.js';
import { DESCRIBE_INSTANCE, firecrackerArgs, planFirecracker, type LaunchMode } from './plan.js';
import { stopGracefully } from './stop.js';
import { FIRECRACKER_VERSION } from './schema.js';
import type { ApiCall, FirecrackerVmInput } from './types.js';

export interface VmmExit {
  exitCode: number | null;
  signal: string | null;
  /** the last lines Firecracker printed (stdout and stderr), for error messages */
  output: string;
}

export interface StartOptions {
  /** path of the firecracker executable */
  binary: string;
  /** container id (becomes Firecracker's --id) */
  id: string;
  input: FirecrackerVmInput;
  /** folder for the API socket and the config file (the container's state dir) */
  workDir: string;
  /** 'api' (default): configure through PUT requests; 'config-file': one JSON file, API kept for stop */
  mode?: 'api' | 'config-file';
  readyTimeoutMs?: number;
  /** each line Firecracker prints (its stdout is the guest's serial console) */
  onOutput?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** called with every API call just before it is sent (debug log, `runcvm plan`) */
  onCall?: (call: ApiCall) => void;
  env?: Record<string, string | undefined>;
}

export interface RunningFirecracker {
  pid: number | undefined;
  apiSocket: string;
  client: FirecrackerClient;
  /** resolves when the process ends */
  exited: Promise<VmmExit>;
  /** SendCtrlAltDel, wait up to graceMs for the process to end, then SIGKILL */
  stop(opts?: { graceMs?: number }): Promise<VmmExit & { graceful: boolean }>;
}

const OUTPUT_LINES = 40;

export async function startFirecracker(o: StartOptions): Promise<RunningFirecracker> {
  const plan = planFirecracker(o.input);
  const apiSocket = join(o.workDir, 'firecracker.sock');
  const configPath = join(o.workDir, 'firecracker.json');
  // Firecracker refuses to bind a path that exists, and binds uds_path itself: remove stale ones.
  await rm(apiSocket, { force: true });
  await rm(o.input.vsock.udsPath, { force: true });
  const mode: LaunchMode = o.mode === 'config-file' ? { kind: 'config-file', configFile: configPath, apiSocket } : { kind: 'api', apiSocket };
  if (mode.kind === 'config-file') await atomicWrite(configPath, JSON.stringify(plan.configFile, null, 2) + '\n');

  const child = await spawnChild(o.binary, firecrackerArgs(mode, o.id, { path: join(o.workDir, 'firecracker.log'), level: 'Warning' }), o.env ? { env: o.env } : {});
  const tail: string[] = [];
  const onLine = (stream: 'stdout' | 'stderr') => {
    let partial = '';
    return (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > OUTPUT_LINES) tail.shift();
        o.onOutput?.(line, stream);
      }
    };
  };
  child.stdout?.on('data', onLine('stdout'));
  child.stderr?.on('data', onLine('stderr'));
  let running = true;
  const exited = new Promise<VmmExit>((resolve) => {
    child.on('error', (err) => {
      tail.push(err.message);
      running = false;
      resolve({ exitCode: 127, signal: null, output: tail.join('\n') });
    });
    child.on('close', (code, signal) => {
      running = false;
      resolve({ exitCode: code, signal, output: tail.join('\n') });
    });
  });
  const kill = () => {
    if (running) child.kill('SIGKILL');
  };
  const client = new FirecrackerClient(apiSocket);

  try {
    const readyMs = o.readyTimeoutMs ?? 5000;
    const info = await client.waitReady({ timeoutMs: readyMs, alive: () => running });
    if (mode.kind === 'config-file') await waitRunning(client, info.state, readyMs, () => running);
    if (mode.kind === 'api') {
      for (const call of plan.calls) {
        o.onCall?.(call);
        await client.call(call);
      }
    }
  } catch (err) {
    kill();
    throw await startFailure(err, exited, apiSocket, o.readyTimeoutMs ?? 5000);
  }

  return {
    pid: child.pid,
    apiSocket,
    client,
    exited,
    async stop({ graceMs = 10_000 } = {}) {
      const outcome = await stopGracefully({ client, exited, isRunning: () => running, kill, ...(o.onCall ? { onCall: o.onCall } : {}) }, graceMs);
      // graceful: Firecracker accepted SendCtrlAltDel and ended by itself within graceMs
      return { ...(await exited), graceful: outcome.sent && outcome.graceful };
    },
  };
}

async function startFailure(err: unknown, exited: Promise<VmmExit>, socket: string, ms: number): Promise<ToolError> {
  if (isToolError(err)) return err;
  if (err instanceof FirecrackerApiError) {
    return apiError({ method: err.call.method, path: err.call.path, status: err.status, fault: err.fault, version: FIRECRACKER_VERSION });
  }
  if (err instanceof NotListeningError && err.why === 'timeout') return runcvmErrors.fail('FIRECRACKER_NOT_READY', { socket, ms });
  // The process went away (exited before the API came up, or the connection broke mid-request): its output says why.
  const ended = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]);
  if (ended) return exitError(ended);
  return runcvmErrors.fail('FIRECRACKER_EXITED', { how: 'unknown', output: (err as Error)?.message ?? String(err) });
}

/** GET / — the instance state ('Not started', 'Running', 'Paused'). */
export async function describeInstance(client: FirecrackerClient): Promise<string> {
  const info = (await client.get(DESCRIBE_INSTANCE.path, 'InstanceInfo')) as { state: string };
  return info.state;
}

/** --config-file mode: Firecracker builds and boots the VM from the file by itself; wait until GET / says Running. */
async function waitRunning(client: FirecrackerClient, first: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let state = first;
  while (state !== 'Running') {
    if (!alive()) throw new NotListeningError(client.socketPath, 'exited');
    if (Date.now() >= deadline) throw new NotListeningError(client.socketPath, 'timeout');
    await new Promise((r) => setTimeout(r, 10));
    state = await describeInstance(client).catch(() => state);
  }
}
