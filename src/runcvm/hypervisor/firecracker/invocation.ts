/**
 * The Firecracker backend as the launcher runs it (Hypervisor.toInvocation in ../index.ts): one process started with
 * `--config-file` (the whole VM in one schema-checked JSON file, written by the launcher just before the start) and
 * `--api-sock` (kept open for post-boot actions: the launcher's graceful stop sends SendCtrlAltDel there). The guest's
 * framed channel arrives over vsock on `<uds_path>_1024`, the exec agent's on `<uds_path>_1025` (both guest-initiated
 * connections, which Firecracker forwards to `<uds_path>_<port>`); the serial console is Firecracker's stdout. Pure.
 */
import { posix } from 'node:path';
import type { ToolError } from '../../../core/errors.js';
import type { VmPlan } from '../vm-plan.js';
import { kvmError } from './errors.js';
import { firecrackerArgs, fromVmPlan, planFirecracker, type FirecrackerExtras } from './plan.js';
import { agentListenPath, EXEC_VSOCK_PORT } from './vsock.js';

export interface FirecrackerInvocation {
  file: string;
  args: string[];
  /** written (0600) by the launcher before the start */
  files: { path: string; content: string }[];
  /** stale paths Firecracker refuses to bind over; the launcher removes them first */
  removeFirst: string[];
  /** Firecracker releases are static binaries: run directly, not through the guest package's loader */
  direct: true;
  /** where the launcher listens for the guest agent (instead of the QEMU path's virtio-serial socket) */
  ioSocket: string;
  /** the guest's serial console is on Firecracker's stdout; there is no console socket */
  consoleOnStdout: true;
  /** Firecracker's API socket (post-boot actions: SendCtrlAltDel for a graceful stop) */
  apiSocket: string;
  /** where the launcher listens for the guest exec agent (guest vsock port 1025); unset when the plan has no agent */
  execSocket?: string;
}

export function firecrackerInvocation(plan: VmPlan, binary: string, id: string, extras: FirecrackerExtras = {}): FirecrackerInvocation {
  const input = fromVmPlan(plan, extras);
  const { configFile } = planFirecracker(input);
  const stateDir = posix.dirname(plan.io.socket);
  const configPath = posix.join(stateDir, 'firecracker.json');
  const apiSocket = posix.join(stateDir, 'firecracker.sock');
  return {
    file: binary,
    args: firecrackerArgs({ kind: 'config-file', configFile: configPath, apiSocket }, id, { path: posix.join(stateDir, 'firecracker.log'), level: 'Warning' }),
    files: [{ path: configPath, content: JSON.stringify(configFile, null, 2) + '\n' }],
    removeFirst: [apiSocket, input.vsock.udsPath],
    direct: true,
    ioSocket: agentListenPath(input.vsock.udsPath),
    consoleOnStdout: true,
    apiSocket,
    ...(plan.agent ? { execSocket: agentListenPath(input.vsock.udsPath, EXEC_VSOCK_PORT) } : {}),
  };
}

/** Why Firecracker ended without the workload's exit report, as a runcvm error (KVM problems get cause and fix). */
/** Anything else is left to the launcher's generic HYPERVISOR_CRASHED report (it quotes the last output line). */
export function explainFirecrackerExit(e: { code: number | null; signal: string | null; output: string }): ToolError | undefined {
  return kvmError(e.output);
}
