/**
 * Running Firecracker (the backend's `start`, the one driver): the process from the plan (`--config-file`, API socket
 * kept), a wait until its API answers and the instance is Running, and an orderly shutdown through the API
 * (SendCtrlAltDel, bounded wait, SIGKILL: stop.ts). Every start-up failure becomes a runcvm error with cause and fix
 * (errors.ts): Firecracker's KVM errors, API faults, an exit, no answer.
 */
import { isToolError, type ToolError } from '../../../core/errors.js';
import { runcvmErrors } from '../../errors.js';
import { startProcess } from '../process.js';
import type { HypervisorPlan, RunningVm, StartOptions, VmExit } from '../types.js';
import { FirecrackerApiError, FirecrackerClient, NotListeningError } from './client.js';
import { apiError, exitError, kvmError } from './errors.js';
import { DESCRIBE_INSTANCE } from './plan.js';
import { FIRECRACKER_VERSION } from './schema.js';
import { stopGracefully } from './stop.js';

/**
 * How long Firecracker gets to answer its API after the spawn. Generous: it only matters when Firecracker hangs (an
 * exit ends the wait at once), and a loaded node can be slow to start a process.
 */
export const READY_TIMEOUT_MS = 30_000;

/** Why Firecracker ended without the workload's exit report, when it is a KVM problem (cause and fix). */
export function explainFirecrackerExit(e: VmExit): ToolError | undefined {
  return kvmError(e.output);
}

export async function startFirecracker(plan: HypervisorPlan, opts: StartOptions, readyTimeoutMs = READY_TIMEOUT_MS): Promise<RunningVm> {
  if (!plan.control) throw new Error('firecracker: the plan has no API socket');
  const proc = await startProcess(plan, opts);
  const client = new FirecrackerClient(plan.control);
  try {
    const info = await client.waitReady({ timeoutMs: readyTimeoutMs, alive: proc.running });
    await waitRunning(client, info.state, readyTimeoutMs, proc.running);
  } catch (err) {
    proc.kill();
    throw await startFailure(err, proc.exited, plan.control, readyTimeoutMs);
  }
  return {
    ...proc,
    shutdown: (graceMs) =>
      stopGracefully(
        { client: new FirecrackerClient(plan.control!, graceMs), exited: proc.exited, isRunning: proc.running, kill: proc.kill, onCall: (c) => opts.onControl?.(`${c.method} ${c.path} ${JSON.stringify(c.body)}`) },
        graceMs,
      ),
    explainExit: explainFirecrackerExit,
  };
}

async function startFailure(err: unknown, exited: Promise<VmExit>, socket: string, ms: number): Promise<ToolError> {
  if (isToolError(err)) return err;
  if (err instanceof FirecrackerApiError) {
    return apiError({ method: err.call.method, path: err.call.path, status: err.status, fault: err.fault, version: FIRECRACKER_VERSION });
  }
  if (err instanceof NotListeningError && err.why === 'timeout') return runcvmErrors.fail('FIRECRACKER_NOT_READY', { socket, ms });
  // The process went away (exited before the API came up, or the connection broke mid-request): its output says why.
  const ended = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]);
  if (ended) return exitError({ exitCode: ended.code, signal: ended.signal, output: ended.output });
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
