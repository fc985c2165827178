/**
 * Stopping a running Firecracker gracefully (RunningVm.shutdown of the backend, start.ts): PUT /actions
 * SendCtrlAltDel on its API socket, a bounded wait for the process to end, then SIGKILL.
 */
import type { FirecrackerClient } from './client.js';
import { SEND_CTRL_ALT_DEL } from './plan.js';
import type { StopOutcome } from '../types.js';
import type { ApiCall } from './types.js';

export interface StopTarget {
  client: FirecrackerClient;
  /** resolves when the Firecracker process has ended (whatever it resolves with) */
  exited: Promise<unknown>;
  /** false once the process has ended: nothing to stop */
  isRunning(): boolean;
  /** SIGKILL the process (a no-op when it has already ended) */
  kill(): void;
  /** called with the API call just before it is sent (debug log) */
  onCall?: (call: ApiCall) => void;
}

export async function stopGracefully(t: StopTarget, graceMs: number): Promise<StopOutcome> {
  if (!t.isRunning()) return { sent: false, graceful: true, alreadyExited: true };
  let sent = false;
  let problem: string | undefined;
  try {
    t.onCall?.(SEND_CTRL_ALT_DEL);
    await t.client.call(SEND_CTRL_ALT_DEL);
    sent = true;
  } catch (err) {
    // An API that does not answer yet (very early stop) or refuses (not booted): nothing graceful is possible.
    problem = (err as Error)?.message ?? String(err);
  }
  let graceful = false;
  if (sent) {
    let timer: NodeJS.Timeout | undefined;
    graceful = await Promise.race([
      t.exited.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
  } else if (!t.isRunning()) {
    // it ended while we were trying (e.g. the guest reset on its own)
    graceful = true;
  }
  if (!graceful) t.kill();
  await t.exited;
  return problem === undefined ? { sent, graceful, alreadyExited: false } : { sent, graceful, alreadyExited: false, problem };
}
