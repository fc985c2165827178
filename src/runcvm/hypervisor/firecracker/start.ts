/**
 * Running Firecracker (the backend's `start`, the one driver): the process from the plan (`--config-file`, API socket
 * kept), a wait until its API answers and the instance is Running, and an orderly shutdown through the API
 * (SendCtrlAltDel, bounded wait, SIGKILL: stop.ts). Every start-up failure becomes a runcvm error with cause and fix
 * (errors.ts): Firecracker's KVM errors, API faults, an exit, no answer. A restore (plan.restore, issue 17) loads the
 * template's snapshot first and fails as TEMPLATE_LOAD whatever went wrong; `save` snapshots a template build.
 */
import { isToolError, type ToolError } from '../../../core/errors.js';
import { runcvmErrors } from '../../errors.js';
import { startProcess } from '../process.js';
import { posix } from 'node:path';
import type { HypervisorPlan, RunningVm, StartOptions, TemplateFiles, VmExit } from '../types.js';
import { FirecrackerApiError, FirecrackerClient, NotListeningError } from './client.js';
import { apiError, exitError, kvmError } from './errors.js';
import { callLine, DESCRIBE_INSTANCE } from './plan.js';
import { FIRECRACKER_VERSION } from './schema.js';
import { drivesMismatch, PAUSE_VM, RESTORE_FILE, RESUME_VM, snapshotCreate, VM_CONFIG, type RestoreSteps } from './snapshot.js';
import { stopGracefully } from './stop.js';
import type { ApiCall } from './types.js';

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
  const steps = plan.restore ? restoreStepsOf(plan) : undefined;
  const proc = await startProcess(plan, opts);
  const client = new FirecrackerClient(plan.control);
  const onCall = (c: ApiCall) => opts.onControl?.(callLine(c));
  try {
    const info = await client.waitReady({ timeoutMs: readyTimeoutMs, alive: proc.running });
    if (steps) await restore(client, steps, onCall);
    await waitRunning(client, steps ? 'Paused' : info.state, readyTimeoutMs, proc.running);
  } catch (err) {
    proc.kill();
    const failure = await startFailure(err, proc.exited, plan.control, readyTimeoutMs);
    // its sockets are removed once its exit is seen: a fallback (cold boot) or a retry starts from a clean state dir
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    // any failure of a restore is the template's: the launcher answers TEMPLATE_LOAD with a cold boot
    if (!plan.restore) throw failure;
    const reason = err instanceof TemplateMismatch ? err.message : failure.message;
    throw runcvmErrors.fail('TEMPLATE_LOAD', { template: plan.restore.state, name: 'firecracker', reason });
  }
  return {
    ...proc,
    shutdown: (graceMs) =>
      stopGracefully({ client: new FirecrackerClient(plan.control!, graceMs), exited: proc.exited, isRunning: proc.running, kill: proc.kill, onCall }, graceMs),
    explainExit: explainFirecrackerExit,
    // Firecracker can snapshot any running VM; the template builder calls this once the guest reported PARKED
    save: (to) => saveSnapshot({ client, exited: proc.exited, kill: proc.kill, onCall }, to),
  };
}

/** The restore plan's steps (its RESTORE_FILE, what `runcvm plan` shows). */
export function restoreStepsOf(plan: HypervisorPlan): RestoreSteps {
  const file = plan.files.find((f) => posix.basename(f.path) === RESTORE_FILE);
  if (!file) throw new Error(`firecracker: the restore plan has no ${RESTORE_FILE}`);
  return JSON.parse(file.content) as RestoreSteps;
}

/** the restored VM is not this container's (its drives): never resumed */
class TemplateMismatch extends Error {}

/** Load (paused), check that the drives are this container's, resume. */
async function restore(client: FirecrackerClient, steps: RestoreSteps, onCall: (c: ApiCall) => void): Promise<void> {
  const load: ApiCall = { method: 'PUT', path: '/snapshot/load', body: steps.load };
  onCall(load);
  await client.call(load);
  onCall(VM_CONFIG);
  const problem = drivesMismatch(steps.drives, await client.get(VM_CONFIG.path, 'FullVmConfiguration'));
  if (problem) throw new TemplateMismatch(problem);
  onCall(RESUME_VM);
  await client.call(RESUME_VM);
}

export interface SaveTarget {
  client: FirecrackerClient;
  exited: Promise<unknown>;
  kill(): void;
  onCall?: (call: ApiCall) => void;
}

/**
 * RunningVm.save: pause, write the state and memory files (Firecracker creates or truncates them), end the process.
 * Firecracker releases the files once the create is answered and has no "quit" request: SIGKILL is its end here (the
 * guest is paused, nothing of it runs any more). The process ends whatever happened; a refusal is FIRECRACKER_API.
 */
export async function saveSnapshot(t: SaveTarget, to: TemplateFiles): Promise<void> {
  try {
    for (const call of [PAUSE_VM, snapshotCreate(to)]) {
      t.onCall?.(call);
      await t.client.call(call);
    }
  } catch (err) {
    if (err instanceof FirecrackerApiError) throw apiError({ method: err.call.method, path: err.call.path, status: err.status, fault: err.fault, version: FIRECRACKER_VERSION });
    throw err;
  } finally {
    t.kill();
    await t.exited;
  }
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
