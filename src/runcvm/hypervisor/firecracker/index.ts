/**
 * The Firecracker backend: one process started with `--config-file` (the whole VM in one schema-checked JSON file,
 * written just before the start) and `--api-sock` (kept for post-boot actions: the orderly shutdown sends
 * SendCtrlAltDel there). The guest's framed channel arrives over vsock on `<uds_path>_1024`, the exec agent's on
 * `<uds_path>_1025` (guest-initiated connections, which Firecracker forwards to `<uds_path>_<port>`); the serial
 * console is Firecracker's stdout. Per-device builders (boot, block, net, machine, vsock) compose in plan.ts; the
 * driver is start.ts. Selection: it needs its binary on the node and a usable /dev/kvm (no software emulation).
 * VM templates (issue 17) go through Firecracker's snapshot API: snapshot.ts (build, save, restore, shape).
 */
import { posix } from 'node:path';
import { kvmProblem } from '../accel.js';
import { CONTAINER_PATHS } from '../../launch/schema.js';
import { runcvmErrors } from '../../errors.js';
import type { Hypervisor, HypervisorPlan, TemplateFiles, VmPlan } from '../types.js';
import { callLine, DESCRIBE_INSTANCE, firecrackerArgs, fromVmPlan, planFirecracker, SEND_CTRL_ALT_DEL } from './plan.js';
import { firecrackerTemplateShape, PAUSE_VM, RESTORE_FILE, restoreSteps, RESUME_VM, snapshotCreate, templateCmdline, VM_CONFIG } from './snapshot.js';
import { startFirecracker } from './start.js';
import { agentListenPath, EXEC_VSOCK_PORT } from './vsock.js';

/** wherever the node keeps it, create binds the chosen binary here */
export const FIRECRACKER_BINARY = CONTAINER_PATHS.firecracker;

export { callLine };

/** Pure: the command, its config file, the sockets, and (for `runcvm plan`) the same configuration as API calls. */
export function firecrackerPlan(vm: VmPlan): HypervisorPlan {
  if (vm.template && vm.templateBuild) throw new Error('firecracker: a VM is either restored from a template or builds one, not both');
  if (vm.template) return restorePlan(vm, vm.template);
  const input = fromVmPlan(vm.templateBuild ? { ...vm, cmdline: templateCmdline(vm.cmdline) } : vm);
  const { calls, configFile } = planFirecracker(input);
  const { stateDir, apiSocket, log } = paths(vm);
  const configPath = posix.join(stateDir, 'firecracker.json');
  const args = firecrackerArgs({ kind: 'config-file', configFile: configPath, apiSocket }, vm.containerId ?? 'runcvm', log);
  const notes: HypervisorPlan['notes'] = [
    { title: 'the same configuration as firecracker API calls (PUT on the API socket before InstanceStart)', lines: calls.map(callLine) },
    { title: 'on a stop signal before the guest connects (then SIGKILL after a bounded wait)', lines: [callLine(SEND_CTRL_ALT_DEL)] },
  ];
  if (vm.templateBuild) {
    notes.push({
      title: 'template build (runcvm.template=1: the guest parks); on PARKED the builder calls save, which sends these, then ends firecracker (SIGKILL)',
      lines: [callLine(PAUSE_VM), callLine(snapshotCreate({ state: 'STATE', memory: vm.templateBuild.memory }))],
    });
  }
  return {
    hypervisor: 'firecracker',
    // Firecracker releases are static binaries: run directly, not through the guest package's loader
    argv: [FIRECRACKER_BINARY, ...args],
    env: { PATH: `${CONTAINER_PATHS.guest}/bin:/usr/bin:/bin` },
    files: [{ path: configPath, content: JSON.stringify(configFile, null, 2) + '\n' }],
    // Firecracker refuses to bind a path that exists, and binds uds_path itself
    cleanup: [apiSocket, input.vsock.udsPath],
    listen: listen(vm, input.vsock.udsPath),
    control: apiSocket,
    notes,
  };
}

function paths(vm: VmPlan) {
  const stateDir = posix.dirname(vm.io.socket);
  return {
    stateDir,
    apiSocket: posix.join(stateDir, 'firecracker.sock'),
    log: { path: posix.join(stateDir, 'firecracker.log'), level: 'Warning' as const },
  };
}

function listen(vm: VmPlan, udsPath: string): HypervisorPlan['listen'] {
  return { io: agentListenPath(udsPath), ...(vm.agent ? { agent: agentListenPath(udsPath, EXEC_VSOCK_PORT) } : {}) };
}

/**
 * A restore (VmPlan.template): a fresh firecracker with only its logger (--log-path; the snapshot load must come
 * before any other resource), then the steps of RESTORE_FILE, which start() follows as written (so the file `runcvm
 * plan` shows is exactly what is sent).
 */
function restorePlan(vm: VmPlan, template: TemplateFiles): HypervisorPlan {
  const input = fromVmPlan(vm);
  const { stateDir, apiSocket, log } = paths(vm);
  const steps = restoreSteps(template, input);
  const args = firecrackerArgs({ kind: 'api', apiSocket }, vm.containerId ?? 'runcvm', log);
  return {
    hypervisor: 'firecracker',
    argv: [FIRECRACKER_BINARY, ...args],
    env: { PATH: `${CONTAINER_PATHS.guest}/bin:/usr/bin:/bin` },
    files: [{ path: posix.join(stateDir, RESTORE_FILE), content: JSON.stringify(steps, null, 2) + '\n' }],
    cleanup: [apiSocket, input.vsock.udsPath],
    listen: listen(vm, input.vsock.udsPath),
    control: apiSocket,
    restore: template,
    notes: [
      {
        title: 'restore from a template: firecracker configured with nothing but its logger, then on the API socket',
        lines: [
          callLine({ method: 'PUT', path: '/snapshot/load', body: steps.load }),
          `${callLine(VM_CONFIG)}: its drives must be ${steps.drives.map((d) => `${d.drive_id}=${d.path_on_host}`).join(', ')} (else: TEMPLATE_LOAD, cold boot)`,
          callLine(RESUME_VM),
          `${callLine(DESCRIBE_INSTANCE)} until "state": "Running"`,
        ],
      },
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
  templateShape: firecrackerTemplateShape,
};
