/**
 * Pure config.json transforms (containerd SpecOpts style): each takes a spec and returns a new one; rewriteForVm
 * composes them in one place. The result is written once, atomically, by create (runtime/main.ts).
 */
import type { OciDevice, OciMount, OciSpec } from '../../launch/oci.js';
import { CONTAINER_PATHS } from '../../launch/schema.js';

export type SpecTransform = (spec: OciSpec) => OciSpec;

export const MEMORY_OVERHEAD_MIB = 256;
const MiB = 1024 * 1024;

/** The container's PID 1 becomes the launcher, run by the package's node through the bundled loader, as root. */
export const LAUNCHER_ARGS = [
  CONTAINER_PATHS.loader,
  '--library-path',
  `${CONTAINER_PATHS.guest}/lib`,
  CONTAINER_PATHS.node,
  CONTAINER_PATHS.launcher,
];

export function withLauncherEntrypoint(spec: OciSpec): OciSpec {
  const proc = spec.process;
  if (!proc) return spec;
  return {
    ...spec,
    process: {
      ...proc,
      args: [...LAUNCHER_ARGS],
      env: ['PATH=/.runcvm/guest/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/', 'NODE_OPTIONS='],
      cwd: '/',
      user: { uid: 0, gid: 0 },
    },
  };
}

function bind(source: string, destination: string, readOnly: boolean): OciMount {
  return { destination, type: 'bind', source, options: ['rbind', readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'] };
}

function withMount(m: OciMount): SpecTransform {
  return (spec) => ({ ...spec, mounts: [...(spec.mounts ?? []).filter((x) => x.destination !== m.destination), m] });
}

export const withGuestMount = (guestDir: string): SpecTransform => withMount(bind(guestDir, CONTAINER_PATHS.guest, true));
export const withStateMount = (stateDir: string): SpecTransform => withMount(bind(stateDir, CONTAINER_PATHS.state, false));
export const withKernelMount = (kernelDir: string): SpecTransform => withMount(bind(kernelDir, CONTAINER_PATHS.kernelDir, true));
export const withBaseDiskMount = (diskPath: string): SpecTransform => withMount(bind(diskPath, CONTAINER_PATHS.baseDisk, true));
export const withDebugLogMount = (logPath: string): SpecTransform => withMount(bind(logPath, CONTAINER_PATHS.debugLog, false));
/** RUNCVM_KERNEL's file (launch/kernel.ts): one regular file, bound read-only, nosuid, nodev; never a folder tree */
export const withCustomKernelMount = (hostFile: string): SpecTransform =>
  withMount({ destination: CONTAINER_PATHS.customKernel, type: 'bind', source: hostFile, options: ['bind', 'ro', 'nosuid', 'nodev'] });
/** node files a hypervisor backend needs in the container (Firecracker's binary), bound read-only */
export const withHostBinds = (binds: readonly { source: string; destination: string }[]): SpecTransform =>
  compose(...binds.map((b) => withMount({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', 'ro', 'nosuid', 'nodev'] })));

export interface HostDevice {
  path: string;
  type: 'c';
  major: number;
  minor: number;
}

/** /dev/kvm and /dev/net/tun when the host has them: device nodes plus cgroup allow rules. */
export const withKvmDevices = (devices: readonly HostDevice[]): SpecTransform => (spec) => {
  if (devices.length === 0) return spec;
  const linux = spec.linux ?? {};
  const existing = (linux.devices ?? []).filter((d) => !devices.some((n) => n.path === d.path));
  const added: OciDevice[] = devices.map((d) => ({ path: d.path, type: d.type, major: d.major, minor: d.minor, fileMode: 0o666, uid: 0, gid: 0 }));
  const resources = linux.resources ?? {};
  const rules = [...(resources.devices ?? []), ...devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: 'rwm' }))];
  return { ...spec, linux: { ...linux, devices: [...existing, ...added], resources: { ...resources, devices: rules } } };
};

/** Capabilities added to the launcher (networking will need CAP_NET_ADMIN); sets stay duplicate-free. */
export const withCaps =
  (caps: readonly string[], sets: readonly ('bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient')[] = ['bounding', 'effective', 'permitted']): SpecTransform =>
  (spec) => {
    const proc = spec.process;
    if (!proc || caps.length === 0) return spec;
    const current = proc.capabilities ?? {};
    const next = { ...current };
    for (const set of sets) next[set] = [...new Set([...(current[set] ?? []), ...caps])];
    return { ...spec, process: { ...proc, capabilities: next } };
  };

/** The container's memory limit keeps the guest's memory and adds room for the VMM (QEMU + launcher). */
export const withMemoryOverhead = (mib: number): SpecTransform => (spec) => {
  const memory = spec.linux?.resources?.memory;
  if (!memory?.limit || memory.limit <= 0) return spec;
  const add = mib * MiB;
  const next = { ...memory, limit: memory.limit + add };
  if (memory.swap !== undefined && memory.swap > 0) next.swap = memory.swap + add;
  if (memory.reservation !== undefined && memory.reservation > 0) next.reservation = memory.reservation + add;
  return { ...spec, linux: { ...spec.linux, resources: { ...spec.linux!.resources, memory: next } } };
};

/** Engines' /etc/hosts etc. bind mounts stay (the launcher sees them) — the VM gets copies; nothing to change. */

export interface VmRewrite {
  guestDir: string;
  kernelDir: string;
  stateDir: string;
  baseDisk: string;
  debugLog?: string;
  /** RUNCVM_KERNEL's host file, resolved and checked (launch/kernel.ts) */
  customKernel?: string;
  /** node files the chosen hypervisor needs in the container (hypervisor selection: Firecracker's binary) */
  binds?: readonly { source: string; destination: string }[];
  devices: readonly HostDevice[];
  memoryOverheadMiB?: number;
}

export function compose(...transforms: SpecTransform[]): SpecTransform {
  return (spec) => transforms.reduce((acc, t) => t(acc), spec);
}

export function rewriteForVm(spec: OciSpec, r: VmRewrite): OciSpec {
  return compose(
    withLauncherEntrypoint,
    withGuestMount(r.guestDir),
    withKernelMount(r.kernelDir),
    withStateMount(r.stateDir),
    withBaseDiskMount(r.baseDisk),
    ...(r.debugLog ? [withDebugLogMount(r.debugLog)] : []),
    ...(r.customKernel ? [withCustomKernelMount(r.customKernel)] : []),
    withHostBinds(r.binds ?? []),
    withKvmDevices(r.devices),
    // networking: the launcher bridges eth0 to the VM's tap (network/apply.ts)
    withCaps(['CAP_NET_ADMIN']),
    withMemoryOverhead(r.memoryOverheadMiB ?? MEMORY_OVERHEAD_MIB),
  )(spec);
}

/** Containers that stay plain runc: the Kubernetes sandbox (pause) and those that opt out with RUNCVM_DISABLE=1. */
export function passThroughReason(spec: OciSpec): string | undefined {
  const ann = spec.annotations ?? {};
  if (ann['io.kubernetes.cri.container-type'] === 'sandbox') return 'Kubernetes sandbox (pause) container';
  if (ann['io.kubernetes.docker.type'] === 'podsandbox') return 'Kubernetes sandbox (pause) container';
  const env = spec.process?.env ?? [];
  if (env.some((e) => /^RUNCVM_DISABLE=(1|true|yes|on)$/i.test(e))) return 'RUNCVM_DISABLE=1 in the container environment';
  if (!spec.process) return 'no process in config.json';
  return undefined;
}
