/**
 * Pure config.json transforms (containerd SpecOpts style): each takes a spec and returns a new one; rewriteForVm
 * composes them in one place. The result is the launcher's config.json, written once, atomically, into runcvm's
 * private bundle under the container's state folder (runtime/plan-create.ts); the caller's bundle is never written.
 *
 * The launcher container is runcvm's, not the workload's: it gets a root of runcvm's own (writable, holding only
 * the mount points), a fixed capability set, runcvm's own seccomp profile (LAUNCHER_SECCOMP) and none of the
 * workload's seccomp profile or rlimits. The workload's
 * own confinement goes to the guest through launch.json (root.readonly, capabilities, rlimits, seccomp), where the
 * guest init applies it as runc would.
 */
import type { OciDevice, OciMount, OciSpec } from '../../launch/oci.js';
import { CONTAINER_PATHS } from '../../launch/schema.js';

export type SpecTransform = (spec: OciSpec) => OciSpec;

export const MEMORY_OVERHEAD_MIB = 256;
const MiB = 1024 * 1024;

/**
 * The launcher's node options. A V8 start-up snapshot only loads under the V8 options it was built with (else node
 * exits: "Failed to load the startup snapshot"): scripts/assets/30-runtime.sh builds launcher.blob with its own
 * LAUNCHER_NODE_FLAGS, records them in launcher.blob.key, and create uses the snapshot only when they are these.
 */
export const LAUNCHER_NODE_FLAGS: readonly string[] = [];

/**
 * The container's PID 1 becomes the launcher, run by the package's node through the bundled loader, as root: from
 * the launcher's start-up snapshot when create found one that fits (its modules already evaluated: ~50 ms less
 * before main), else from launcher.mjs.
 */
export function launcherArgs(snapshot = false): string[] {
  return [
    CONTAINER_PATHS.loader,
    '--library-path',
    `${CONTAINER_PATHS.guest}/lib`,
    CONTAINER_PATHS.node,
    ...LAUNCHER_NODE_FLAGS,
    ...(snapshot ? ['--snapshot-blob', CONTAINER_PATHS.launcherSnapshot] : [CONTAINER_PATHS.launcher]),
  ];
}
export const LAUNCHER_ARGS = launcherArgs();

export const withLauncherEntrypoint = (snapshot = false): SpecTransform => (spec) => {
  const proc = spec.process;
  if (!proc) return spec;
  return {
    ...spec,
    process: {
      ...proc,
      args: launcherArgs(snapshot),
      env: ['PATH=/.runcvm/guest/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/', 'NODE_OPTIONS='],
      cwd: '/',
      user: { uid: 0, gid: 0 },
    },
  };
};

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
/**
 * The VM template the launcher restores (template/store.ts): its folder of the node's cache, read-only, and over it its
 * RAM file read-write. QEMU 7.2 opens a `memory-backend-file` read-write even for a private (`share=off`) mapping:
 * the guest's writes stay in its private copy, but the open needs write access (QEMU 8.2's `readonly=on,rom=off`
 * lifts that; docs/templates.md "Trust").
 */
export const withTemplateMount = (templateDir: string): SpecTransform =>
  compose(
    withMount({ destination: CONTAINER_PATHS.template, type: 'bind', source: templateDir, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] }),
    withMount({ destination: `${CONTAINER_PATHS.template}/memory`, type: 'bind', source: `${templateDir}/memory`, options: ['bind', 'rw', 'nosuid', 'nodev', 'noexec'] }),
  );
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

/** Docker's (and containerd's) default capability set: what a container gets when nobody drops anything. */
export const DOCKER_DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
] as const;

/**
 * The launcher's capabilities, whatever the workload asked: Docker's default set (virtiofsd's chroot sandbox needs
 * CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETUID, SETGID, MKNOD, SETFCAP, SYS_CHROOT; with fewer it dies and QEMU
 * reports `vhost_backend_init failed: Protocol error`) plus CAP_NET_ADMIN (the launcher hands eth* to the VM's tap).
 * Nothing inheritable or ambient: no program the launcher starts gains more. The workload's own sets are applied in
 * the guest (launch.json capabilities → guest/caps.c).
 */
export const LAUNCHER_CAPABILITIES: readonly string[] = [...DOCKER_DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN'];

export const withLauncherCaps: SpecTransform = (spec) => {
  const proc = spec.process;
  if (!proc) return spec;
  const caps = [...LAUNCHER_CAPABILITIES];
  return { ...spec, process: { ...proc, capabilities: { bounding: caps, effective: [...caps], permitted: [...caps], inheritable: [], ambient: [] } } };
};

/**
 * The workload's seccomp profile and rlimits are the workload's: they reach it in the guest (launch.json) and never
 * confine the launcher (Node), QEMU or virtiofsd, which a profile without clone3 or an RLIMIT_AS of 1 GiB kills.
 */
export const withoutWorkloadConfinement: SpecTransform = (spec) => {
  const { rlimits: _rlimits, ...proc } = spec.process ?? { user: { uid: 0, gid: 0 }, cwd: '/' };
  const { seccomp: _seccomp, ...linux } = spec.linux ?? {};
  return { ...spec, ...(spec.process ? { process: proc } : {}), ...(spec.linux ? { linux } : {}) };
};

/** unshare(2)'s CLONE_FS: virtiofsd gives each of its threads its own working directory with it */
export const CLONE_FS = 0x200;

/**
 * runcvm's own seccomp profile for the launcher container under the default handler (Node, QEMU, virtiofsd, ip and
 * the exec client; the workload's profile is the guest's): a deny-list of what none of them calls, so a flaw in
 * those kernel interfaces is out of reach from a compromised QEMU. Everything else is allowed: the launcher's
 * capability set (withLauncherCaps) already keeps it from most privileged calls; this narrows the kernel surface
 * further. Checked against what they do: the launcher mounts nothing and joins no namespace (runc does both before
 * the filter is loaded); virtiofsd (-o sandbox=chroot) calls chroot and unshare(CLONE_FS) only; QEMU saves and
 * restores VMs through files (no userfaultfd). Every ABI is listed, so a 32-bit call cannot go around the list.
 * docs/threat-model.md "The launcher's seccomp profile".
 */
export const LAUNCHER_DENIED_SYSCALLS: readonly string[] = [
  // the kernel itself: modules, kexec, reboot, swap, accounting
  'init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load', 'reboot', 'swapon', 'swapoff', 'acct',
  // mounts and namespaces (the launcher's are made by runc before the filter; unshare below keeps CLONE_FS)
  'mount', 'umount2', 'pivot_root', 'open_tree', 'move_mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr', 'setns',
  // kernel programs, profiling and page-fault handling from user space
  'bpf', 'perf_event_open', 'userfaultfd',
  // the kernel keyrings
  'keyctl', 'add_key', 'request_key',
  // other processes' memory, file handles that bypass paths
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'open_by_handle_at', 'name_to_handle_at',
  // old or host-wide interfaces nothing here needs
  'uselib', 'lookup_dcookie', 'quotactl', 'syslog', 'vhangup', 'iopl', 'ioperm', 'settimeofday', 'clock_settime', 'adjtimex', 'clock_adjtime',
];

export const LAUNCHER_SECCOMP: NonNullable<NonNullable<OciSpec['linux']>['seccomp']> = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [
    { names: [...LAUNCHER_DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
    // any unshare but virtiofsd's CLONE_FS: no new namespaces from the launcher side
    { names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: CLONE_FS, op: 'SCMP_CMP_NE' }] },
  ],
};

/** The default handler's launcher: runcvm's own profile (LAUNCHER_SECCOMP), never the workload's. */
export const withLauncherSeccomp: SpecTransform = (spec) => ({ ...spec, linux: { ...spec.linux, seccomp: LAUNCHER_SECCOMP } });

/**
 * RUNCVM_GUEST_PRIVILEGES=userns (the runcvm-userns handler for restricted pods): the guest loads no seccomp profile
 * and widens the workload's bounding set, so the node-side processes keep the pod's own confinement instead of
 * runcvm's fixed set: the pod's capability sets plus CAP_NET_ADMIN (for the pod's own network namespace), its
 * no_new_privs and its seccomp profile (with unshare(CLONE_FS) allowed for virtiofsd). Rlimits stay the guest's.
 */
export const withPodConfinementOnLauncher: SpecTransform = (spec) => {
  const { rlimits: _rlimits, ...proc } = spec.process ?? { user: { uid: 0, gid: 0 }, cwd: '/' };
  if (!spec.process) return spec;
  const current = proc.capabilities ?? {};
  const next = { ...current };
  for (const set of ['bounding', 'effective', 'permitted'] as const) next[set] = [...new Set([...(current[set] ?? []), 'CAP_NET_ADMIN'])];
  const seccomp = spec.linux?.seccomp;
  const unshareFs = { names: ['unshare'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_FS, op: 'SCMP_CMP_EQ' }] };
  return {
    ...spec,
    process: { ...proc, capabilities: next },
    ...(seccomp ? { linux: { ...spec.linux, seccomp: { ...seccomp, syscalls: [...(seccomp.syscalls ?? []), unshareFs] } } } : {}),
  };
};

/**
 * The launcher always has a mount namespace: without one (a spec that lists no `mount` namespace, as runtime-tools'
 * linux_ns_itype), runc makes every launcher mount — runcvm's state, guest package, /proc, /dev — in the node's own
 * namespace, where they outlive the container. The workload's namespaces are the guest's either way.
 */
export const withLauncherMountNamespace: SpecTransform = (spec) => {
  const namespaces = spec.linux?.namespaces ?? [];
  if (namespaces.some((n) => n.type === 'mount')) return spec;
  return { ...spec, linux: { ...spec.linux, namespaces: [...namespaces, { type: 'mount' }] } };
};

/**
 * The launcher's root: a folder of runcvm's own (runtime/plan-create.ts makes it with the mount points), writable,
 * so virtiofsd can write /var/run/virtiofsd; the workload's root.readonly is the guest's (launch.json root).
 */
export const withLauncherRoot = (rootPath: string): SpecTransform => (spec) => ({ ...spec, root: { path: rootPath, readonly: false } });

/**
 * Relative bind sources are relative to the bundle (runc resolves them after entering it): made absolute against the
 * caller's bundle, so they mean the same from runcvm's private bundle and to the host-side checks.
 */
export const withAbsoluteSources = (bundle: string): SpecTransform => (spec) => {
  if (!(spec.mounts ?? []).some((m) => m.source !== undefined && m.source !== '' && !m.source.startsWith('/') && isBind(m))) return spec;
  const base = bundle.replace(/\/+$/, '');
  return { ...spec, mounts: (spec.mounts ?? []).map((m) => (m.source && !m.source.startsWith('/') && isBind(m) ? { ...m, source: `${base}/${m.source.replace(/^\.\//, '')}` } : m)) };
};

function isBind(m: OciMount): boolean {
  const opts = m.options ?? [];
  return m.type === 'bind' || opts.includes('bind') || opts.includes('rbind');
}

/** Where runcvm records the caller's bundle in the launcher's config (OCI hooks see the private bundle's path). */
export const CALLER_BUNDLE_ANNOTATION = 'io.runcvm.bundle';

export const withCallerBundle = (bundle: string): SpecTransform => (spec) => ({ ...spec, annotations: { ...(spec.annotations ?? {}), [CALLER_BUNDLE_ANNOTATION]: bundle } });

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
  /** the launcher's root folder (runcvm's private bundle) and the caller's bundle, recorded in an annotation */
  launcherRoot: string;
  callerBundle: string;
  guestDir: string;
  kernelDir: string;
  stateDir: string;
  baseDisk: string;
  debugLog?: string;
  /** RUNCVM_KERNEL's host file, resolved and checked (launch/kernel.ts) */
  customKernel?: string;
  /** the template folder the launcher restores from (template/plan.ts), chosen by create from the node's cache */
  template?: string;
  /** node files the chosen hypervisor needs in the container (hypervisor selection: Firecracker's binary) */
  binds?: readonly { source: string; destination: string }[];
  devices: readonly HostDevice[];
  memoryOverheadMiB?: number;
  /** RUNCVM_GUEST_PRIVILEGES=userns: the launcher keeps the pod's confinement (withPodConfinementOnLauncher) */
  podConfinementOnLauncher?: boolean;
  /** the guest package's launcher snapshot fits its node and LAUNCHER_NODE_FLAGS (runtime/facts.ts) */
  launcherSnapshot?: boolean;
}

export function compose(...transforms: SpecTransform[]): SpecTransform {
  return (spec) => transforms.reduce((acc, t) => t(acc), spec);
}

export function rewriteForVm(spec: OciSpec, r: VmRewrite): OciSpec {
  return compose(
    withLauncherEntrypoint(r.launcherSnapshot),
    withLauncherRoot(r.launcherRoot),
    withCallerBundle(r.callerBundle),
    ...(r.podConfinementOnLauncher ? [withPodConfinementOnLauncher] : [withoutWorkloadConfinement, withLauncherSeccomp]),
    withLauncherMountNamespace,
    withGuestMount(r.guestDir),
    withKernelMount(r.kernelDir),
    withStateMount(r.stateDir),
    withBaseDiskMount(r.baseDisk),
    ...(r.debugLog ? [withDebugLogMount(r.debugLog)] : []),
    ...(r.customKernel ? [withCustomKernelMount(r.customKernel)] : []),
    ...(r.template ? [withTemplateMount(r.template)] : []),
    withHostBinds(r.binds ?? []),
    withKvmDevices(r.devices),
    ...(r.podConfinementOnLauncher ? [] : [withLauncherCaps]),
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
