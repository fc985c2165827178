/**
 * planCreate: what `runcvm-runtime create` will do with a bundle, decided in one pure function from the request and
 * the facts read before (facts.ts). `create` performs it (apply-create.ts); `runcvm plan` prints it. Each subsystem
 * contributes its part once:
 *   settings (launch/settings.ts) → memory floor → kernel (launch/kernel.ts) → hypervisor (selectHypervisor) →
 *   volumes (planContainerVolumes) → network (the mode, from the namespace fact) → the LaunchSpec (launch/build.ts)
 *   → storage (planDisks: the state folder's disks) → the launcher's config (bundle/transforms, volumes) in runcvm's
 *   private bundle under the state folder, with its root of mount points → runc, given `--bundle` there → after a
 *   foreground `run`, the state folder and the debug log go (runc deleted the container itself).
 * The caller's bundle is only read: its config.json and rootfs stay as they were (a second run, or plain runc, on the
 * same bundle behaves as the first). Every refusal happens here, before any host change.
 */
import { join } from 'node:path';
import type { LogEntry } from '../../core/log/index.js';
import type { ToolError } from '../../core/errors.js';
import { runcvmErrors } from '../errors.js';
import { envMap, type OciSpec } from '../launch/oci.js';
import { kernelCandidate, kernelChoice } from '../launch/kernel.js';
import { mergeSettingEnv, parseNodeSettings, readSettings, type Settings } from '../launch/settings.js';
import { buildLaunchSpec, copiedFilesFromSpec, memoryBelowFloor, MIN_MEMORY_MIB } from '../launch/build.js';
import { GuestSpecError } from '../launch/rootfs.js';
import { capabilitiesFromSpec } from '../launch/capabilities.js';
import { describeGuestPrivileges, withGuestPrivileges, type GuestPrivileges } from '../launch/guest-privileges.js';
import { renderEntrypoint, renderGuestConfig } from '../launch/guest-config.js';
import type { LaunchSpec } from '../launch/schema.js';
import { passThroughReason, rewriteForVm } from '../bundle/transforms/index.js';
import { launcherMountPoints, userNamespaceRoot, type HostIds } from '../bundle/transforms/launcher-root.js';
import { isForegroundRun, withBundleArg } from './args.js';
import { containerPaths, hostDirs } from '../state/index.js';
import { CONTAINER_PATHS } from '../launch/schema.js';
import { HYPERVISORS, selectHypervisor, type HypervisorName } from '../hypervisor/index.js';
import { describeTemplate, planTemplate, type TemplateDecision } from '../template/plan.js';
import { planContainerVolumes, rewriteForVolumes, withVolumesInLaunch } from '../volumes/plan.js';
import { baseDiskPath, planDisks } from '../storage/plan.js';
import type { CreateAction } from './actions.js';
import type { CreateFacts, CreateInput, DebugLogFacts } from './facts.js';
import { entrypointLogLine, kubernetesLogLine, kubernetesMetadata } from './describe.js';

const { fail } = runcvmErrors;

/** runcvm's own bind mounts that are single files (the rest are folders). */
const FILE_MOUNTS = new Set<string>([CONTAINER_PATHS.baseDisk, CONTAINER_PATHS.debugLog, CONTAINER_PATHS.customKernel, CONTAINER_PATHS.firecracker]);

/** A failure runc itself would report at create: printed with runc's wording, exit 1 (as runc). */
export class RuncStyleError extends Error {}

export type CreatePlan = PassThroughPlan | VmCreatePlan;

export interface PassThroughPlan {
  kind: 'pass-through';
  reason: string;
  actions: CreateAction[];
}

export interface VmCreatePlan {
  kind: 'vm';
  id: string;
  hypervisor: { name: HypervisorName; reason: string };
  /** what the workload may do inside the VM (the node's RUNCVM_GUEST_PRIVILEGES), already applied to launchSpec */
  guestPrivileges: GuestPrivileges;
  /** the container's debug log on the node, when create keeps one */
  debugLog?: string;
  /** what create writes into the debug log once it is open */
  log: LogEntry[];
  /** the hand-off to the launcher (launch.json) */
  launchSpec: LaunchSpec;
  /** the VM template this container starts from, or why it boots cold (template/plan.ts) */
  template: TemplateDecision;
  /** the launcher's config.json (written into runcvm's private bundle, never into the caller's) */
  config: OciSpec;
  /** every host change, in order (actions.ts) */
  actions: CreateAction[];
}

/**
 * Why the debug log's path cannot be used (something already there that is not the runtime's plain file), if so. A
 * log of a container in a user namespace belongs to the namespace's root (`owner`), which the launcher writes as.
 */
export function debugLogProblem(path: string, f: DebugLogFacts, uid: number | undefined, owner?: HostIds): string | undefined {
  if (f.kind === 'missing') return undefined;
  if (f.kind === 'symlink') return `${path} is a symbolic link`;
  if (f.kind === 'other') return `${path} is ${f.what}`;
  if (f.nlink > 1) return `${path} has other hard links`;
  if (uid !== undefined && f.uid !== uid && f.uid !== owner?.uid) return `${path} belongs to uid ${f.uid}, not to the runtime (uid ${uid})`;
  return undefined;
}

/** The guest assets a VM needs, by what the host has (facts.assets.present). */
function assetProblem(facts: CreateFacts, hypervisor: HypervisorName, customKernel: boolean): ToolError | undefined {
  const has = (f: string) => facts.assets.present.includes(f);
  const kernelDir = facts.assets.kernelDir;
  if (!customKernel && !has('kernel/vmlinux')) return fail('NO_KERNEL', { path: `${kernelDir}/vmlinux`, reason: 'the kernel asset has not been built.' });
  if (!has('kernel/initramfs.img')) return fail('NO_KERNEL', { path: `${kernelDir}/initramfs.img`, reason: 'the initramfs asset has not been built.' });
  const needed = ['lib/ld', 'bin/node', 'bin/runcvm-init', 'lib/runcvm/launcher.mjs', ...(hypervisor === 'qemu' ? ['bin/qemu-system-x86_64'] : [])];
  const missing = needed.filter((f) => !has(`guest/${f}`));
  return missing.length ? fail('NO_GUEST_PACKAGE', { path: facts.assets.guestDir, missing: missing.join(', ') }) : undefined;
}

function requestedHypervisor(value: string | undefined): 'auto' | HypervisorName {
  const v = value?.trim().toLowerCase();
  return v === 'qemu' || v === 'firecracker' ? v : 'auto';
}

/** What the guest cannot apply (launch/rootfs.ts, the seccomp profile) fails create as GUEST_SPEC. */
function guestApplicable<T>(build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (err instanceof GuestSpecError) throw fail('GUEST_SPEC', { problem: err.problem, fix: err.fix });
    throw err;
  }
}

export function planCreate(input: CreateInput, facts: CreateFacts | undefined): CreatePlan {
  const { spec, nodeEnv, id } = input;
  const reason = passThroughReason(spec);
  if (reason) return { kind: 'pass-through', reason, actions: [{ op: 'runc', ...input.runc }] };
  if (!facts) throw new Error('planCreate: no facts for a VM container');

  // settings: the container's allow-list over the node's defaults, judged against the node's limits
  const containerEnv = envMap(spec.process?.env);
  const node = parseNodeSettings(nodeEnv);
  const requested = readSettings(nodeEnv, containerEnv, node);
  const raw = mergeSettingEnv(nodeEnv, containerEnv);
  const dirs = hostDirs(nodeEnv);
  const paths = containerPaths(dirs, id);
  const actions: CreateAction[] = [];
  const log: LogEntry[] = [{ level: 'info', msg: 'create', fields: { bundle: input.bundle, id } }];
  // a user namespace: what the launcher (as the namespace's root) reaches and writes belongs to that root's host ids
  const owner = userNamespaceRoot(spec);
  const ownerField: { owner?: HostIds } = owner && (owner.uid !== 0 || owner.gid !== 0) ? { owner } : {};

  // the VM's RAM is the memory limit: one too small to boot is refused before anything is made
  const tooSmall = memoryBelowFloor(spec.linux?.resources?.memory);
  if (tooSmall !== undefined) throw fail('MEMORY_TOO_SMALL', { limit: tooSmall, min: MIN_MEMORY_MIB });

  // a VM boundary, said rather than dropped silently: host descriptors reach the launcher, never the workload (not
  // refused: podman passes its socket-activation descriptors this way, and the container still runs)
  if (input.runc.passFds > 0) {
    actions.push({ op: 'warn', text: `runcvm: warning: --preserve-fds ${input.runc.passFds}: host file descriptors 3-${2 + input.runc.passFds} reach only runcvm's launcher; the workload runs inside a microVM and cannot receive them (pass the data through stdin or a volume, or run this container with runc)` });
  }

  // the debug log: the runtime's own plain file, never something planted at its path (guide 8)
  let debugLog: string | undefined;
  if (requested.logLevel !== 'off') {
    const problem = debugLogProblem(paths.debugLog, facts.debugLog, facts.runtimeUid, owner);
    if (problem) {
      // a log problem ("Permission denied") must never stop the container: say so and run without the log
      actions.push({ op: 'warn', text: `runcvm: warning: no debug log for container ${id}: ${problem}; the container runs without it (fix: remove ${paths.debugLog}, or point RUNCVM_LOG_DIR at a folder only the runtime writes)` });
    } else {
      debugLog = paths.debugLog;
      // with RUNCVM_LOG_LEVEL=DEBUG a failed create keeps its debug log
      actions.push({ op: 'open-log', path: debugLog, removeOnFailure: requested.logLevel !== 'debug', ...ownerField });
    }
  }
  // which pod this id is (guide 8: find the log of a pod among many with `grep -l 'pod NS/NAME' runcvm-*.debug`)
  const kube = kubernetesMetadata(spec.annotations);
  if (kube) log.push({ level: 'info', msg: kubernetesLogLine(kube) });

  if (!facts.lookPath.ok) throw new RuncStyleError(facts.lookPath.message);

  // hypervisor: RUNCVM_HYPERVISOR, else the first backend that supports this node
  const choice = selectHypervisor(requestedHypervisor(raw.RUNCVM_HYPERVISOR), facts.hypervisor);
  if (!choice.ok) throw choice.error;
  const settings: Settings = { ...requested, hypervisor: choice.hypervisor };
  log.push({ level: 'info', msg: `hypervisor: ${choice.hypervisor} (${choice.reason})` });

  // kernel: a node path, or a file of the node-approved folder when the container chose it
  let customKernel: string | undefined;
  if (settings.kernel) {
    const candidate = kernelCandidate(settings.kernel, node.kernelsDir);
    if (!candidate.ok) throw candidate.error;
    const chosen = kernelChoice(settings.kernel, node.kernelsDir, candidate.path, facts.kernel ?? { kind: 'missing' });
    if (!chosen.ok) throw chosen.error;
    customKernel = chosen.hostPath;
  }
  const assets = assetProblem(facts, choice.hypervisor, customKernel !== undefined);
  if (assets) throw assets;

  // volumes + RUNCVM_DISKS: validated before any disk work
  const volumes = planContainerVolumes(spec, {
    sources: facts.volumeSources,
    kubeletDir: nodeEnv.RUNCVM_KUBELET_DIR,
    disks: raw.RUNCVM_DISKS,
    maxDiskBytes: node.maxDiskBytes,
    hypervisor: choice.hypervisor,
    transport: raw.RUNCVM_VOLUME_TRANSPORT,
  });
  log.push(...volumes.log);

  // the hand-off: network mode from the namespace fact (never the node's own), volumes, kernel, and what the
  // workload may do inside the VM (the node's choice: runtime env only, never the container's)
  const plainLaunchSpec = withGuestPrivileges(withVolumesInLaunch(
    guestApplicable(() => buildLaunchSpec(spec, { containerId: id, settings, debugLog: debugLog !== undefined, debugLogHostPath: paths.debugLog, hostNetwork: facts.hostNetwork, customKernel: customKernel !== undefined, guestSeccomp: node.guestSeccomp })),
    volumes.plan,
  ), node.guestPrivileges);
  // VM templates (issue 17): the template of this VM's shape when the node's store has it; never the pod's choice
  const template = planTemplate(plainLaunchSpec, HYPERVISORS[choice.hypervisor], facts.template, dirs);
  const launchSpec: LaunchSpec = template.use === 'template' ? { ...plainLaunchSpec, template: { key: template.key } } : plainLaunchSpec;
  log.push({ level: 'info', msg: describeTemplate(template) });
  log.push({ level: 'info', msg: `guest privileges: ${describeGuestPrivileges(node.guestPrivileges)}` });
  // RUNCVM_GUEST_SECCOMP=off is the node's choice (the runtime's own environment, never the container's)
  if (!node.guestSeccomp && spec.linux?.seccomp) log.push({ level: 'info', msg: 'the workload runs without its seccomp profile in the guest: the node set RUNCVM_GUEST_SECCOMP=off (the VM is the boundary)' });
  // runc warns about these in its own log when it starts the launcher container (same spec); the VM ignores them too
  const unknownCaps = capabilitiesFromSpec(spec.process?.capabilities).unknown;
  if (unknownCaps.length) log.push({ level: 'info', msg: 'ignoring unknown or unavailable capabilities', fields: { names: unknownCaps.join(',') } });
  // guide 1: the file the guest loads its command from, and a warning when it will be empty
  const entry = entrypointLogLine(launchSpec.process.args);
  log.push({ level: entry.level, msg: entry.line });

  if (!facts.rootfs || !facts.base) throw fail('BAD_CONFIG', { bundle: input.bundle, problem: `the root filesystem ${spec.root?.path ?? 'rootfs'} does not exist` });
  const base = { cacheDir: dirs.cacheDir, path: baseDiskPath(dirs.cacheDir, facts.base.key), source: facts.base, bound: { maxBytes: node.cacheMaxBytes, stateRoot: dirs.stateRoot } };

  // the launcher's config: runcvm's private bundle, its root a folder of runcvm's own
  const config = rewriteForVolumes(
    rewriteForVm(spec, {
      launcherRoot: paths.launcherRoot,
      callerBundle: input.bundle,
      guestDir: facts.assets.guestDir,
      kernelDir: facts.assets.kernelDir,
      stateDir: paths.state,
      baseDisk: base.path,
      ...(debugLog ? { debugLog } : {}),
      ...(customKernel ? { customKernel } : {}),
      ...(template.use === 'template' ? { template: template.dir } : {}),
      binds: choice.binds,
      devices: facts.devices,
      ...(node.guestPrivileges === 'userns' ? { podConfinementOnLauncher: true } : {}),
      ...(facts.launcherSnapshot ? { launcherSnapshot: true } : {}),
    }),
    volumes.plan,
    spec,
  );
  // mount points that are files: binds of a file (volumes, the engine's /etc files, runcvm's disk, log, kernel, binaries)
  const fileSources = new Set<string>([
    ...(template.use === 'template' ? [`${template.dir}/memory`] : []),
    ...Object.entries(facts.volumeSources).filter(([, k]) => k === 'file').map(([p]) => p),
    ...copiedFilesFromSpec(spec).map((f) => f.source),
    ...(config.mounts ?? []).filter((m) => FILE_MOUNTS.has(m.destination) || choice.binds.some((b) => b.destination === m.destination)).map((m) => m.source ?? ''),
  ]);
  const keepLog = requested.logLevel === 'debug' || !debugLog;
  const has = (f: string) => facts.assets.present.includes(f);
  actions.push(
    { op: 'mkdir', path: dirs.stateRoot, mode: 0o711, recursive: true },
    { op: 'remove', path: paths.state },
    { op: 'mkdir', path: paths.state, mode: 0o700, removeOnFailure: true },
    // keep-log tells the dispatcher's delete to leave the log alone: kept for DEBUG, and never ours to remove when
    // create did not make it (a foreign file or link at that path)
    ...(keepLog ? [{ op: 'write', path: paths.keepLog, content: '', mode: 0o644, what: 'marker: delete keeps the debug log' } as const] : []),
    // before the disk is built or reused: the cache's bound never evicts the disk of a container being created
    { op: 'write', path: paths.baseDiskRef, content: base.path, mode: 0o644, what: 'the cached base disk this container uses (never evicted while it exists)' },
    ...(template.use === 'template' ? [{ op: 'write', path: paths.templateRef, content: template.dir, mode: 0o644, what: 'the VM template this container starts from (never evicted while it exists)' } as const] : []),
    ...planDisks({
      id,
      rootfs: facts.rootfs,
      base,
      staging: paths.staging,
      upperDisk: paths.upperDisk,
      rootfsSizeBytes: settings.rootfsSizeBytes,
      engineFiles: copiedFilesFromSpec(spec).filter((f) => facts.engineFiles.includes(f.source)),
      entrypoint: renderEntrypoint(launchSpec.process.args),
      guestConfig: renderGuestConfig(launchSpec),
      binaries: {
        init: `${facts.assets.guestDir}/bin/runcvm-init`,
        ...(has('guest/bin/busybox') ? { busybox: `${facts.assets.guestDir}/bin/busybox` } : {}),
        ...(has('guest/bin/runcvm-agent') ? { agent: `${facts.assets.guestDir}/bin/runcvm-agent` } : {}),
      },
    }),
    { op: 'write', path: paths.launchSpec, content: JSON.stringify(launchSpec, null, 2) + '\n', mode: 0o600, atomic: true, what: 'the LaunchSpec' },
    { op: 'mkdir', path: paths.bundle, mode: 0o700 },
    { op: 'launcher-root', path: paths.launcherRoot, ...launcherMountPoints(config, fileSources) },
    { op: 'write', path: paths.launcherConfig, content: JSON.stringify(config), mode: 0o600, atomic: true, what: "the launcher's config.json (runcvm's private bundle)" },
    ...(ownerField.owner ? [{ op: 'chown', path: paths.state, owner: ownerField.owner, what: "the user namespace's root: the launcher runs as it" } as const] : []),
  );
  // the container boots cold now; the template of its shape is made beside it for the next one (a stale one goes first)
  if (template.use === 'cold' && template.remove) actions.push({ op: 'remove-template', dir: template.remove, reason: template.reason });
  if (template.use === 'cold' && template.build) actions.push({ op: 'spawn-detached', ...template.build, nice: 10, what: `the VM template builder for key ${template.key?.slice(0, 12) ?? ''}` });
  const foreground = isForegroundRun(input.runc.argv);
  actions.push({ op: 'runc', file: input.runc.file, argv: withBundleArg(input.runc.argv, paths.bundle, input.bundle), passFds: input.runc.passFds, ...(foreground ? { foreground: true as const } : {}) });
  // a foreground run's record lives only while runc runs (and runc rewrites it at start): left as it is
  if (!foreground && input.runc.root) actions.push({ op: 'runc-bundle-label', stateFile: join(input.runc.root, id, 'state.json'), from: paths.bundle, to: input.bundle });
  if (foreground) {
    // runc deleted the container when it ended; the dispatcher's delete will never run: do its part here
    actions.push({ op: 'remove', path: paths.state }, ...(debugLog && !keepLog ? [{ op: 'remove', path: debugLog } as const] : []));
  }
  return { kind: 'vm', id, hypervisor: { name: choice.hypervisor, reason: choice.reason }, guestPrivileges: node.guestPrivileges, ...(debugLog ? { debugLog } : {}), log, launchSpec, template, config, actions };
}
