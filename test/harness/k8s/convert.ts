/**
 * Pod spec → CRI requests, the way the kubelet builds them (pkg/kubelet/kuberuntime: generatePodSandboxConfig,
 * generateContainerConfig, determineEffectiveSecurityContext, verifyRunAsNonRoot, calculateLinuxResources), re-expressed
 * from the kubelet's documented behaviour. Pure: the facts the kubelet would have (pod IP, image user, node memory,
 * prepared volume paths) come in as arguments.
 */
import type { ContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext, NamespaceOption, PodSandboxConfig, SecurityProfile } from '../cri.js';
import type { Container, PodSpec } from './objects.js';

/** /proc paths the kubelet asks the runtime to mask / make read-only for every container with the Default proc mount. */
export const DEFAULT_MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
  '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface PodIdentity {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
}

/** Kubernetes quantities: "500m" → 0.5, "2Gi" → 2147483648, "1" → 1, "1e3" → 1000. */
export function parseQuantity(q: string): number {
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(q.trim());
  if (!m) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(q)}`);
  const n = Number(m[1]);
  const mult: Record<string, number> = {
    m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  };
  return n * (m[2] ? mult[m[2]]! : 1);
}

function namespaceOptions(spec: PodSpec): NamespaceOption {
  // the kubelet sets PID to CONTAINER explicitly for v1 pods (the CRI default is POD)
  return { network: spec.hostNetwork ? 'NODE' : 'POD', pid: spec.hostPID ? 'NODE' : 'CONTAINER', ipc: 'POD' };
}

function seccomp(profile: { type: string; localhostProfile?: string | undefined } | undefined): SecurityProfile {
  // no profile: Unconfined (the kubelet's default while its SeccompDefault setting is off, as in a default install)
  if (!profile || profile.type === 'Unconfined') return { profile_type: 'Unconfined' };
  if (profile.type === 'Localhost') return { profile_type: 'Localhost', localhost_ref: profile.localhostProfile ?? '' };
  return { profile_type: 'RuntimeDefault' };
}

function supplementalGroups(spec: PodSpec): string[] {
  const groups = [...(spec.securityContext?.supplementalGroups ?? [])];
  const fsGroup = spec.securityContext?.fsGroup;
  if (fsGroup !== undefined && !groups.includes(fsGroup)) groups.push(fsGroup);
  return groups.map(String);
}

export interface SandboxFacts {
  logDirectory: string;
  dns: { servers: string[]; searches: string[]; options: string[] };
  nodeHostname: string;
}

export function podSandboxConfig(pod: PodIdentity, spec: PodSpec, facts: SandboxFacts): PodSandboxConfig {
  const sc = spec.securityContext ?? {};
  const security: NonNullable<NonNullable<PodSandboxConfig['linux']>['security_context']> = {
    namespace_options: namespaceOptions(spec),
    supplemental_groups: supplementalGroups(spec),
    privileged: [...spec.containers, ...(spec.initContainers ?? [])].some((c) => c.securityContext?.privileged === true),
    seccomp: seccomp(sc.seccompProfile),
  };
  if (sc.runAsUser !== undefined) security.run_as_user = { value: String(sc.runAsUser) };
  if (sc.runAsGroup !== undefined) security.run_as_group = { value: String(sc.runAsGroup) };
  return {
    metadata: { name: pod.name, uid: pod.uid, namespace: pod.namespace, attempt: 0 },
    hostname: spec.hostNetwork ? facts.nodeHostname : pod.name,
    log_directory: facts.logDirectory,
    dns_config: facts.dns,
    labels: { ...pod.labels, 'io.kubernetes.pod.name': pod.name, 'io.kubernetes.pod.namespace': pod.namespace, 'io.kubernetes.pod.uid': pod.uid },
    annotations: {},
    linux: { security_context: security },
  };
}

/** The container's security context with the pod's defaults merged in (determineEffectiveSecurityContext). */
export function effectiveSecurityContext(spec: PodSpec, c: Container) {
  const pod = spec.securityContext ?? {};
  const own = c.securityContext ?? {};
  return {
    ...own,
    runAsUser: own.runAsUser ?? pod.runAsUser,
    runAsGroup: own.runAsGroup ?? pod.runAsGroup,
    runAsNonRoot: own.runAsNonRoot ?? pod.runAsNonRoot,
    seccompProfile: own.seccompProfile ?? pod.seccompProfile,
  };
}

/**
 * The kubelet refuses to create a container whose runAsNonRoot cannot be proven (CreateContainerConfigError).
 * `image` is what ImageStatus says about the image's user. Returns the kubelet's message, or undefined when allowed.
 */
export function runAsNonRootViolation(pod: PodIdentity, spec: PodSpec, c: Container, image: { uid?: number; username?: string }): string | undefined {
  const sc = effectiveSecurityContext(spec, c);
  if (!sc.runAsNonRoot) return undefined;
  const where = `(pod: "${pod.name}_${pod.namespace}(${pod.uid})", container: ${c.name})`;
  if (sc.runAsUser !== undefined) return sc.runAsUser === 0 ? `container's runAsUser breaks non-root policy ${where}` : undefined;
  if (image.uid !== undefined) return image.uid === 0 ? `container has runAsNonRoot and image will run as root ${where}` : undefined;
  if (image.username) return `container has runAsNonRoot and image has non-numeric user (${image.username}), cannot verify user is non-root ${where}`;
  return `container has runAsNonRoot and image will run as root ${where}`;
}

const CPU_PERIOD = 100_000;

/** calculateLinuxResources + the QoS oom_score_adj (Guaranteed -997, BestEffort 1000, Burstable by memory request). */
export function linuxResources(c: Container, nodeMemoryBytes: number, qos: 'Guaranteed' | 'Burstable' | 'BestEffort'): LinuxContainerResources {
  const limits = c.resources?.limits ?? {};
  // API defaulting: a limit without a request makes the request equal to the limit
  const requests = { ...limits, ...(c.resources?.requests ?? {}) };
  const out: LinuxContainerResources = {};
  const cpuReq = requests.cpu !== undefined ? parseQuantity(requests.cpu) : 0;
  out.cpu_shares = String(Math.max(2, Math.floor((cpuReq * 1000 * 1024) / 1000)));
  if (limits.cpu !== undefined) {
    out.cpu_period = String(CPU_PERIOD);
    out.cpu_quota = String(Math.max(1000, Math.floor((parseQuantity(limits.cpu) * 1000 * CPU_PERIOD) / 1000)));
  }
  if (limits.memory !== undefined) out.memory_limit_in_bytes = String(Math.round(parseQuantity(limits.memory)));
  let oom: number;
  if (qos === 'Guaranteed') oom = -997;
  else if (qos === 'BestEffort') oom = 1000;
  else {
    const memReq = requests.memory !== undefined ? parseQuantity(requests.memory) : 0;
    oom = Math.min(999, Math.max(2, 1000 - Math.floor((1000 * memReq) / nodeMemoryBytes)));
  }
  out.oom_score_adj = String(oom);
  return out;
}

/** The pod's QoS class from its containers' cpu and memory requests and limits. */
export function qosClass(spec: PodSpec): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const all = [...spec.containers, ...(spec.initContainers ?? [])];
  let any = false;
  let guaranteed = true;
  for (const c of all) {
    const limits = c.resources?.limits ?? {};
    const requests = { ...limits, ...(c.resources?.requests ?? {}) };
    for (const r of ['cpu', 'memory']) {
      if (requests[r] !== undefined || limits[r] !== undefined) any = true;
      if (limits[r] === undefined || requests[r] === undefined || parseQuantity(limits[r]) !== parseQuantity(requests[r])) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** $(VAR) references in command, args and env values, as the kubelet expands them ($$ escapes; unknown kept). */
export function expandVars(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && vars.has(name) ? vars.get(name)! : m;
  });
}

export interface ContainerFacts {
  /** the image reference PullImage returned (the kubelet creates the container from the image id) */
  imageRef: string;
  /** resolved env (valueFrom already looked up), in order */
  env: { name: string; value: string }[];
  mounts: NonNullable<ContainerConfig['mounts']>;
  nodeMemoryBytes: number;
  restartCount?: number;
}

export function containerConfig(pod: PodIdentity, spec: PodSpec, c: Container, facts: ContainerFacts): ContainerConfig {
  const vars = new Map<string, string>();
  const envs: { key: string; value: string }[] = [];
  for (const e of facts.env) {
    const value = expandVars(e.value, vars);
    vars.set(e.name, value);
    envs.push({ key: e.name, value });
  }
  const sc = effectiveSecurityContext(spec, c);
  const security: LinuxContainerSecurityContext = {
    capabilities: { add_capabilities: sc.capabilities?.add ?? [], drop_capabilities: sc.capabilities?.drop ?? [] },
    privileged: sc.privileged === true,
    namespace_options: namespaceOptions(spec),
    readonly_rootfs: sc.readOnlyRootFilesystem === true,
    supplemental_groups: supplementalGroups(spec),
    // allowPrivilegeEscalation unset → no_new_privs off; false → on
    no_new_privs: sc.allowPrivilegeEscalation === false,
    masked_paths: sc.privileged ? [] : DEFAULT_MASKED_PATHS,
    readonly_paths: sc.privileged ? [] : DEFAULT_READONLY_PATHS,
    seccomp: seccomp(sc.seccompProfile),
  };
  if (sc.runAsUser !== undefined) security.run_as_user = { value: String(sc.runAsUser) };
  if (sc.runAsGroup !== undefined) security.run_as_group = { value: String(sc.runAsGroup) };
  const restartCount = facts.restartCount ?? 0;
  const config: ContainerConfig = {
    metadata: { name: c.name, attempt: restartCount },
    image: { image: facts.imageRef },
    command: (c.command ?? []).map((a) => expandVars(a, vars)),
    args: (c.args ?? []).map((a) => expandVars(a, vars)),
    envs,
    mounts: facts.mounts,
    labels: {
      'io.kubernetes.container.name': c.name, 'io.kubernetes.pod.name': pod.name, 'io.kubernetes.pod.namespace': pod.namespace,
      'io.kubernetes.pod.uid': pod.uid,
    },
    annotations: {
      'io.kubernetes.container.restartCount': String(restartCount),
      'io.kubernetes.container.terminationMessagePath': c.terminationMessagePath ?? '/dev/termination-log',
      'io.kubernetes.container.terminationMessagePolicy': 'File',
      'io.kubernetes.pod.terminationGracePeriod': String(spec.terminationGracePeriodSeconds ?? 30),
    },
    log_path: `${c.name}/${restartCount}.log`,
    linux: { resources: linuxResources(c, facts.nodeMemoryBytes, qosClass(spec)), security_context: security },
  };
  if (c.workingDir) config.working_dir = c.workingDir;
  return config;
}
