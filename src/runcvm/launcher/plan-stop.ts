/**
 * How the launcher answers a signal, and how it ends a VM whose hypervisor can be asked to shut down (Firecracker's
 * SendCtrlAltDel). Pure decisions; the effects are in launcher/main.ts and hypervisor/firecracker/stop.ts.
 *
 * runc semantics first: while the guest's framed channel is connected, every forwarded signal goes to the workload
 * (PID 1 of its own PID namespace in the guest), which may ignore it exactly as under runc. Before the channel is
 * connected there is no workload to signal yet; under QEMU the signal is queued for the channel (unchanged), under
 * Firecracker a stop signal (SIGTERM, SIGINT) becomes a graceful VM shutdown: SendCtrlAltDel (the guest init turns
 * it into SIGTERM for the workload), a bounded wait, then SIGKILL of Firecracker.
 */
import { constants } from 'node:os';
import type { StopOutcome } from '../hypervisor/types.js';

/** The signals an engine uses to stop a container (docker/ctr/kubelet send SIGTERM; a terminal sends SIGINT). */
export const STOP_SIGNALS: Readonly<Record<string, number>> = { SIGTERM: constants.signals.SIGTERM, SIGINT: constants.signals.SIGINT };

/**
 * How long Firecracker gets to end by itself after SendCtrlAltDel. REFERENCE.md names no setting for it, so it is a
 * constant: long enough for a guest init to pass SIGTERM on and a workload to exit, and well inside the engines' own
 * grace before they SIGKILL the container (docker stop: 10 s, Kubernetes: 30 s), so that the launcher still ends the
 * VM itself, reports the exit code and cleans up, instead of being killed in the middle.
 */
export const CTRL_ALT_DEL_GRACE_MS = 5000;

/**
 * After the workload's EXIT (and our ACK) the guest init resets the VM at once and Firecracker exits. If it has not
 * after this long, the guest is stuck (or its kernel lacks `reboot=k`): stop Firecracker like a stop signal would.
 */
export const VMM_EXIT_AFTER_WORKLOAD_MS = 5000;

export type SignalAction =
  /** send it to the workload over the framed channel (queued until the channel connects) */
  | { kind: 'forward'; signal: number }
  /** shut the VM down through the hypervisor's API, then exit 128+signal */
  | { kind: 'graceful-stop'; signal: number }
  /** a stop is already under way: nothing more to do */
  | { kind: 'ignore' };

export interface SignalFacts {
  /** signal name as Node reports it (SIGTERM, ...) */
  name: string;
  signal: number;
  /** the hypervisor can be asked to shut down (Firecracker's API socket) */
  canStopVmm: boolean;
  /** the guest's framed channel is connected (the guest init is up and relays signals to the workload) */
  channelConnected: boolean;
  /** a graceful stop was started already */
  stopping: boolean;
}

export function signalAction(f: SignalFacts): SignalAction {
  const isStop = STOP_SIGNALS[f.name] === f.signal;
  if (f.stopping) return isStop ? { kind: 'ignore' } : { kind: 'forward', signal: f.signal };
  if (isStop && f.canStopVmm && !f.channelConnected) return { kind: 'graceful-stop', signal: f.signal };
  return { kind: 'forward', signal: f.signal };
}

/** A container stopped by signal N ends with 128+N, as a process killed by N does under runc. */
export function stopExitCode(signal: number): number {
  return 128 + signal;
}

/** The one log line telling what the stop did. */
export function describeStop(why: string, outcome: StopOutcome, graceMs: number): string {
  if (outcome.alreadyExited) return `${why}: firecracker had already exited`;
  if (!outcome.sent && outcome.graceful) return `${why}: firecracker exited before SendCtrlAltDel could be sent`;
  if (!outcome.sent) return `${why}: SendCtrlAltDel could not be sent (${outcome.problem ?? 'no answer'}); firecracker killed (SIGKILL)`;
  if (outcome.graceful) return `${why}: sent SendCtrlAltDel; firecracker exited within ${graceMs} ms`;
  return `${why}: sent SendCtrlAltDel; firecracker did not exit within ${graceMs} ms, killed it (SIGKILL)`;
}
