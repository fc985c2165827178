/**
 * The Firecracker backend: one process started with `--config-file` (the whole VM in one schema-checked JSON file,
 * written just before the start) and `--api-sock` (kept for post-boot actions: the orderly shutdown sends
 * SendCtrlAltDel there). The guest's framed channel arrives over vsock on `<uds_path>_1024`, the exec agent's on
 * `<uds_path>_1025` (guest-initiated connections, which Firecracker forwards to `<uds_path>_<port>`); the serial
 * console is Firecracker's stdout. Per-device builders (boot, block, net, machine, vsock) compose in plan.ts; the
 * driver is start.ts. Selection: it needs its binary on the node and a usable /dev/kvm (no software emulation).
 */
import { posix } from 'node:path';
import { kvmProblem } from '../accel.js';
import { CONTAINER_PATHS } from '../../launch/schema.js';
import { runcvmErrors } from '../../errors.js';
import type { Hypervisor, HypervisorPlan, VmPlan } from '../types.js';
import { firecrackerArgs, fromVmPlan, planFirecracker, SEND_CTRL_ALT_DEL } from './plan.js';
import { startFirecracker } from './start.js';
import type { ApiCall } from './types.js';
import { agentListenPath, EXEC_VSOCK_PORT } from './vsock.js';

/** wherever the node keeps it, create binds the chosen binary here */
export const FIRECRACKER_BINARY = CONTAINER_PATHS.firecracker;

export function callLine(c: ApiCall): string {
  return c.body === undefined ? `${c.method} ${c.path}` : `${c.method} ${c.path} ${JSON.stringify(c.body)}`;
}

/** Pure: the command, its config file, the sockets, and (for `runcvm plan`) the same configuration as API calls. */
export function firecrackerPlan(vm: VmPlan): HypervisorPlan {
  const input = fromVmPlan(vm);
  const { calls, configFile } = planFirecracker(input);
  const stateDir = posix.dirname(vm.io.socket);
  const configPath = posix.join(stateDir, 'firecracker.json');
  const apiSocket = posix.join(stateDir, 'firecracker.sock');
  const args = firecrackerArgs({ kind: 'config-file', configFile: configPath, apiSocket }, vm.containerId ?? 'runcvm', { path: posix.join(stateDir, 'firecracker.log'), level: 'Warning' });
  return {
    hypervisor: 'firecracker',
    // Firecracker releases are static binaries: run directly, not through the guest package's loader
    argv: [FIRECRACKER_BINARY, ...args],
    env: { PATH: `${CONTAINER_PATHS.guest}/bin:/usr/bin:/bin` },
    files: [{ path: configPath, content: JSON.stringify(configFile, null, 2) + '\n' }],
    // Firecracker refuses to bind a path that exists, and binds uds_path itself
    cleanup: [apiSocket, input.vsock.udsPath],
    listen: { io: agentListenPath(input.vsock.udsPath), ...(vm.agent ? { agent: agentListenPath(input.vsock.udsPath, EXEC_VSOCK_PORT) } : {}) },
    control: apiSocket,
    notes: [
      { title: 'the same configuration as firecracker API calls (PUT on the API socket before InstanceStart)', lines: calls.map(callLine) },
      { title: 'on a stop signal before the guest connects (then SIGKILL after a bounded wait)', lines: [callLine(SEND_CTRL_ALT_DEL)] },
    ],
  };
}

export const firecracker: Hypervisor = {
  name: 'firecracker',
  binary: FIRECRACKER_BINARY,
  supports(facts, requested) {
    if (!facts.firecrackerPath) {
      return { ok: false, reason: `no firecracker binary (looked for ${facts.firecrackerLookedFor})`, error: runcvmErrors.fail('FIRECRACKER_NOT_INSTALLED', { path: facts.firecrackerLookedFor }) };
    }
    // asked for by name it needs only a /dev/kvm it can open (Firecracker reports anything deeper, mapped to cause and
    // fix); as the default choice KVM must pass every check the QEMU path uses
    const device = facts.kvm.kvmDevice ?? '/dev/kvm';
    const problem = requested
      ? !facts.kvm.kvmExists
        ? `${device} does not exist`
        : !facts.kvm.kvmOpenable
          ? `${device} cannot be opened read/write`
          : undefined
      : kvmProblem(facts.kvm);
    if (problem) return { ok: false, reason: `KVM is not usable (${problem})`, error: runcvmErrors.fail('FIRECRACKER_NEEDS_KVM', { reason: problem }) };
    return { ok: true, reason: `firecracker found at ${facts.firecrackerPath} and KVM is usable`, binds: [{ source: facts.firecrackerPath, destination: FIRECRACKER_BINARY }] };
  },
  plan: firecrackerPlan,
  start: (plan, opts) => startFirecracker(plan, opts),
};
