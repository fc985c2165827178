/**
 * config.json (as the engine wrote it) + settings + host facts → LaunchSpec. Pure: the host side reads the files and
 * passes them in, so the same function serves `create` and `runcvm plan`.
 */
import { normalizeDestination, type OciIdMapping, type OciRlimit, type OciSpec } from './oci.js';
import { CONTAINER_PATHS, LAUNCH_SPEC_VERSION, type GuestMount, type LaunchSpec } from './schema.js';
import type { Settings } from './settings.js';
import { capabilitiesFromSpec } from './capabilities.js';
import { RLIMIT_NUMBERS } from './guest-config.js';
import { GuestSpecError, holdsVolume, rootfsFromSpec, sysctlFromSpec } from './rootfs.js';
import { compileSeccomp, SeccompProfileError, SeccompProgramTooLarge, seccompProfileSchema, type SeccompProfile } from '../seccomp/index.js';

export const DEFAULT_MEMORY_MIB = 512;
/**
 * The smallest VM create accepts (a lower memory limit is refused with this and the fix). Measured under TCG with
 * the project's kernel and initramfs and a busybox image: 64 and 80 MiB do not boot, 96 MiB does; 128 leaves room
 * for virtiofs and larger images.
 */
export const MIN_MEMORY_MIB = 128;
export const MAX_VCPUS = 64;
const MiB = 1024 * 1024;

/** Mounts the guest init always provides itself; the spec's entries for them are not repeated. */
export const GUEST_BUILTIN_MOUNTS = new Set(['/proc', '/sys', '/sys/fs/cgroup', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/run']);

/** Files an engine bind-mounts into containers that the VM gets as copies in its writable layer. */
export const COPIED_FILES = new Set(['/etc/hosts', '/etc/hostname', '/etc/resolv.conf']);

export function isRuncvmSetting(envEntry: string): boolean {
  return envEntry.startsWith('RUNCVM_');
}

/** vCPUs from the cgroup CPU quota (docker --cpus), else the cpuset size, else 1. */
export function vcpusFromResources(cpu: NonNullable<NonNullable<OciSpec['linux']>['resources']>['cpu']): number {
  if (cpu?.quota && cpu.quota > 0) {
    const period = cpu.period && cpu.period > 0 ? cpu.period : 100_000;
    return Math.min(MAX_VCPUS, Math.max(1, Math.ceil(cpu.quota / period)));
  }
  if (cpu?.cpus) {
    const n = countCpuset(cpu.cpus);
    if (n > 0) return Math.min(MAX_VCPUS, n);
  }
  return 1;
}

export function countCpuset(text: string): number {
  let n = 0;
  for (const part of text.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(p);
    if (!m) return 0;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return 0;
    n += b - a + 1;
  }
  return n;
}

/** A memory limit below MIN_MEMORY_MIB, in whole MiB (undefined: none, or enough). */
export function memoryBelowFloor(memory: { limit?: number } | undefined): number | undefined {
  const limit = memory?.limit;
  return limit && limit > 0 && limit < MIN_MEMORY_MIB * MiB ? Math.floor(limit / MiB) : undefined;
}

/** Guest memory from the container memory limit (docker -m), else the default. */
export function memoryFromResources(memory: { limit?: number } | undefined): number {
  const limit = memory?.limit;
  if (limit && limit > 0) return Math.max(MIN_MEMORY_MIB, Math.floor(limit / MiB));
  return DEFAULT_MEMORY_MIB;
}

/**
 * The tmpfs mounts the guest init makes itself, before the volumes: only those a volume is mounted inside (the
 * workload's namespace replays every other tmpfs in the spec's order, after the volumes: LaunchSpec rootfs).
 */
export function guestMountsFromSpec(spec: OciSpec): GuestMount[] {
  const out: GuestMount[] = [];
  for (const m of spec.mounts ?? []) {
    if (m.type !== 'tmpfs') continue;
    if (GUEST_BUILTIN_MOUNTS.has(m.destination)) continue;
    if (!holdsVolume(spec, m.destination)) continue;
    out.push({ destination: m.destination, type: 'tmpfs', options: m.options ?? [] });
  }
  return out;
}

/**
 * OCI root.readonly, and whether the workload's /run must be read-only with it. Under runc /run is a directory of
 * the read-only root unless the spec mounts something there (containerd's default spec has a tmpfs at /run, Docker's
 * has none); under runcvm it is always the guest init's own tmpfs (GUEST_BUILTIN_MOUNTS drops the spec's), which
 * the init remounts read-only for the workload when this says so.
 */
export function rootFromSpec(spec: OciSpec): { readonly: boolean; readonlyRun?: true } {
  const readonly = Boolean(spec.root?.readonly);
  if (!readonly) return { readonly };
  const mountsRun = (spec.mounts ?? []).some((m) => normalizeDestination(m.destination) === '/run');
  return mountsRun ? { readonly } : { readonly, readonlyRun: true };
}

/** The engine's /etc/hosts, /etc/resolv.conf, /etc/hostname bind mounts: copied into the VM's writable layer. */
export function copiedFilesFromSpec(spec: OciSpec): { source: string; destination: string }[] {
  return (spec.mounts ?? [])
    .filter((m) => COPIED_FILES.has(m.destination) && m.source && (m.type === 'bind' || (m.options ?? []).includes('bind') || (m.options ?? []).includes('rbind')))
    .map((m) => ({ source: m.source!, destination: m.destination }));
}

/**
 * 'auto' when the container has a network namespace of its own (new, or joined with a path as CNI and `--with-ns`
 * do): the launcher hands its eth* to the VM. Without one the container runs in the host's namespace, whose
 * interfaces runcvm must never rebuild: 'none' (the VM gets loopback only).
 */
export function networkModeFromSpec(spec: OciSpec, hostNetwork = false): 'auto' | 'none' {
  if (hostNetwork) return 'none'; // joined by path to the node's own namespace (Kubernetes hostNetwork pods)
  return (spec.linux?.namespaces ?? []).some((n) => n.type === 'network') ? 'auto' : 'none';
}

/**
 * OCI linux.seccomp for the guest: checked here (shape, then meaning: it must compile), so a profile the guest could
 * not load fails at create with the reason. undefined: no profile, or one that turns seccomp off.
 */
export function seccompFromSpec(spec: OciSpec): SeccompProfile | undefined {
  const raw = spec.linux?.seccomp;
  if (raw === undefined || raw === null) return undefined;
  const parsed = seccompProfileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GuestSpecError(`linux.seccomp.${issue.path.join('.')}: ${issue.message}`, 'give linux.seccomp the shape the OCI runtime spec defines');
  }
  try {
    return compileSeccomp(parsed.data) ? parsed.data : undefined;
  } catch (err) {
    if (err instanceof SeccompProfileError || err instanceof SeccompProgramTooLarge) throw new GuestSpecError(err.message, 'fix the profile (runc would refuse it too), or leave linux.seccomp out');
    throw err;
  }
}

export interface LaunchContext {
  containerId: string;
  settings: Settings;
  /** true when the runtime provides the debug log file at CONTAINER_PATHS.debugLog */
  debugLog: boolean;
  /** the debug log's path on the node, named by error messages */
  debugLogHostPath?: string;
  /** RUNCVM_KERNEL was resolved to a host file: the guest boots the copy bound at CONTAINER_PATHS.customKernel */
  customKernel?: boolean;
  /** the container joins the runtime's own (the node's) network namespace: network/host.ts joinsHostNetwork */
  hostNetwork?: boolean;
  /** false: the node turned guest seccomp off (RUNCVM_GUEST_SECCOMP=off in the runtime's environment) */
  guestSeccomp?: boolean;
}

/**
 * process.rlimits for the guest init. The launcher no longer carries them (runc would have refused an unknown type
 * at create), so the refusal is made here: an unknown type fails create as runc's does, never dropped silently.
 */
export function rlimitsFromSpec(rlimits: readonly OciRlimit[] | undefined): LaunchSpec['process']['rlimits'] {
  return (rlimits ?? []).map((r) => {
    if (RLIMIT_NUMBERS[r.type] === undefined) throw new GuestSpecError(`process.rlimits: unknown rlimit type ${r.type}`, `use one of ${Object.keys(RLIMIT_NUMBERS).join(', ')}`);
    return { type: r.type, soft: r.soft, hard: r.hard };
  });
}

/**
 * A new user namespace for the workload (a `user` entry without a path): its maps go to the guest init. Joining an
 * existing one (a path) names a namespace of the node, which a process in the VM cannot join: the launcher joins it
 * (runc does) and the workload keeps the guest's ids, as before.
 */
export function usernsFromSpec(spec: OciSpec): Pick<LaunchSpec, 'userns'> {
  const linux = spec.linux;
  if (!(linux?.namespaces ?? []).some((n) => n.type === 'user' && !n.path)) return {};
  const maps = (m: readonly OciIdMapping[] | undefined) => (m ?? []).map((x) => ({ containerID: x.containerID, hostID: x.hostID, size: x.size }));
  const userns = { uidMappings: maps(linux?.uidMappings), gidMappings: maps(linux?.gidMappings) };
  // runc's own refusals (a user namespace without maps cannot be set up)
  if (!userns.uidMappings.length) throw new GuestSpecError('user namespaces enabled, but no uid mappings found', 'add linux.uidMappings (e.g. containerID 0, hostID 100000, size 65536)');
  if (!userns.gidMappings.length) throw new GuestSpecError('user namespaces enabled, but no gid mappings found', 'add linux.gidMappings (e.g. containerID 0, hostID 100000, size 65536)');
  return { userns };
}

export function buildLaunchSpec(spec: OciSpec, ctx: LaunchContext): LaunchSpec {
  const proc = spec.process;
  if (!proc) throw new Error('config.json has no process');
  const { settings } = ctx;
  const user = proc.user ?? { uid: 0, gid: 0 };
  const launch: LaunchSpec = {
    version: LAUNCH_SPEC_VERSION,
    containerId: ctx.containerId,
    process: {
      args: proc.args ?? [],
      env: (proc.env ?? []).filter((e) => !isRuncvmSetting(e)),
      cwd: proc.cwd || '/',
      user: {
        uid: user.uid ?? 0,
        gid: user.gid ?? 0,
        additionalGids: user.additionalGids ?? [],
        ...(user.umask !== undefined ? { umask: user.umask } : {}),
      },
      terminal: Boolean(proc.terminal),
      rlimits: rlimitsFromSpec(proc.rlimits),
      noNewPrivileges: Boolean(proc.noNewPrivileges),
      capabilities: capabilitiesFromSpec(proc.capabilities).sets,
      ...(proc.oomScoreAdj !== undefined ? { oomScoreAdj: proc.oomScoreAdj } : {}),
    },
    hostname: spec.hostname ?? '',
    root: rootFromSpec(spec),
    rootfs: rootfsFromSpec(spec),
    sysctl: sysctlFromSpec(spec),
    ...usernsFromSpec(spec),
    vm: {
      hypervisor: settings.hypervisor,
      accel: settings.accel,
      vcpus: vcpusFromResources(spec.linux?.resources?.cpu),
      memoryMiB: memoryFromResources(spec.linux?.resources?.memory),
    },
    kernel: {
      path: ctx.customKernel ? CONTAINER_PATHS.customKernel : `${CONTAINER_PATHS.kernelDir}/vmlinux`,
      initrd: `${CONTAINER_PATHS.kernelDir}/initramfs.img`,
      append: settings.kernelAppend,
      debug: settings.kernelDebug,
    },
    disks: [
      { id: 'base', path: CONTAINER_PATHS.baseDisk, readOnly: true, role: 'root' },
      { id: 'upper', path: CONTAINER_PATHS.upperDisk, readOnly: false, role: 'upper' },
    ],
    mounts: guestMountsFromSpec(spec),
    network: { mode: networkModeFromSpec(spec, ctx.hostNetwork ?? false) },
    log: { level: settings.logLevel, ...(ctx.debugLog ? { file: CONTAINER_PATHS.debugLog } : {}), ...(ctx.debugLogHostPath ? { hostPath: ctx.debugLogHostPath } : {}) },
    channel: { io: CONTAINER_PATHS.ioSocket, console: CONTAINER_PATHS.consoleSocket },
  };
  if (settings.break) launch.break = settings.break;
  // checked even when the node turns it off: a profile runc would refuse is refused the same way
  const seccomp = seccompFromSpec(spec);
  if (seccomp && ctx.guestSeccomp !== false) launch.seccomp = seccomp;
  return launch;
}
