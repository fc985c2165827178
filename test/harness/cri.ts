/**
 * A CRI (Kubernetes Container Runtime Interface, `runtime.v1`) gRPC client that talks to containerd's CRI plugin the
 * way the kubelet does. The proto is a minimal re-expression of k8s.io/cri-api v1 (test/fixtures/cri/runtime-v1.proto):
 * same package, services, field names and numbers.
 *
 *   await using cri = await connectCri(cd.socket);
 *   const { version } = await cri.version();                       // "0.1.0", runtime_name "containerd"
 *   await cri.pullImage('127.0.0.1:5000/busybox:latest');
 *   const pod = podConfig({ name: 'p1', logDirectory: dir, hostNetwork: true });
 *   const podId = await cri.runPodSandbox(pod, 'runcvm');
 *   const id = await cri.createContainer(podId, containerConfig({ name: 'app', image, command: ['sh', '-c', '…'] }), pod);
 *   await cri.startContainer(id);
 *   const r = await cri.execSync(id, ['echo', 'hi'], 30);            // { stdout: 'hi\n', stderr: '', exitCode: 0 }
 *   await cri.stopContainer(id, 10); await cri.stopPodSandbox(podId); await cri.removePodSandbox(podId);
 *
 * int64 fields are strings (proto-loader `longs: String`), enums are their names, bytes are Buffers.
 * `parseCriLog(text)` reads the kubelet log format containerd writes at a container's log path.
 *
 * Set-up helpers: `pushPauseImage(reg)` builds the sandbox image (a static C pause, test/fixtures/cri/pause.c) and
 * pushes it; `criRegistryConfig(reg, dir)` writes a containerd `config_path` hosts.toml so that the CRI plugin pulls
 * from the plain-HTTP harness registry, and returns the TOML to pass as startContainerd's `extraConfig`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { buildahStore, registryFlags } from './images.js';
import type { StartedRegistry } from './services/registry.js';

export const CRI_PROTO = projectPath('test', 'fixtures', 'cri', 'runtime-v1.proto');

// ---------------------------------------------------------------------------------------------------------------
// Message types (the subset declared in the proto; snake_case as on the wire because of keepCase)

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
export type PodSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  target_id?: string;
}

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  log_directory?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: {
      namespace_options?: NamespaceOption;
      run_as_user?: { value: string };
      run_as_group?: { value: string };
      readonly_rootfs?: boolean;
      supplemental_groups?: string[];
      privileged?: boolean;
      seccomp?: SecurityProfile;
    };
    sysctls?: Record<string, string>;
    overhead?: LinuxContainerResources;
    resources?: LinuxContainerResources;
  };
}

export interface SecurityProfile {
  profile_type: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhost_ref?: string;
}

export interface LinuxContainerResources {
  cpu_period?: string;
  cpu_quota?: string;
  cpu_shares?: string;
  memory_limit_in_bytes?: string;
  oom_score_adj?: string;
}

export interface LinuxContainerSecurityContext {
  capabilities?: { add_capabilities?: string[]; drop_capabilities?: string[] };
  privileged?: boolean;
  namespace_options?: NamespaceOption;
  run_as_user?: { value: string };
  run_as_group?: { value: string };
  run_as_username?: string;
  readonly_rootfs?: boolean;
  supplemental_groups?: string[];
  no_new_privs?: boolean;
  masked_paths?: string[];
  readonly_paths?: string[];
  seccomp?: SecurityProfile;
}

export interface CriMount {
  container_path: string;
  host_path: string;
  readonly?: boolean;
  selinux_relabel?: boolean;
  propagation?: 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string; annotations?: Record<string, string> };
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: { key: string; value: string }[];
  mounts?: CriMount[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  log_path?: string;
  stdin?: boolean;
  stdin_once?: boolean;
  tty?: boolean;
  linux?: {
    resources?: LinuxContainerResources;
    security_context?: LinuxContainerSecurityContext;
  };
}

export interface VersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata | null;
  state: PodSandboxState;
  created_at: string;
  network: { ip: string; additional_ips: { ip: string }[] } | null;
  linux: { namespaces: { options: NamespaceOption | null } | null } | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
}

export interface PodSandboxStatusResponse {
  status: PodSandboxStatus | null;
  info: Record<string, string>;
}

export interface ContainerStatus {
  id: string;
  metadata: { name: string; attempt: number } | null;
  state: ContainerState;
  created_at: string;
  started_at: string;
  finished_at: string;
  exit_code: number;
  image: { image: string } | null;
  image_ref: string;
  reason: string;
  message: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  log_path: string;
}

export interface ContainerStatusResponse {
  status: ContainerStatus | null;
  info: Record<string, string>;
}

export interface ContainerSummary {
  id: string;
  pod_sandbox_id: string;
  metadata: { name: string; attempt: number } | null;
  state: ContainerState;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ContainerFilter {
  id?: string;
  state?: { state: ContainerState };
  pod_sandbox_id?: string;
  label_selector?: Record<string, string>;
}

export interface ImageInfo {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  size: string;
  /** the image config's user when numeric (the kubelet's runAsNonRoot check reads it), else username */
  uid: { value: string } | null;
  username: string;
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface ExecSyncResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** The containerd "info" document of PodSandboxStatus/ContainerStatus verbose (fields this project reads). */
export interface CriVerboseInfo {
  pid?: number;
  runtimeType?: string;
  runtimeOptions?: { binary_name?: string; BinaryName?: string; root?: string } | null;
  runtimeSpec?: { annotations?: Record<string, string>; process?: { args?: string[] } };
  [k: string]: unknown;
}

// ---------------------------------------------------------------------------------------------------------------
// The client

export interface CriClient extends AsyncDisposable {
  version(): Promise<VersionResponse>;
  /** runtime conditions (RuntimeReady, NetworkReady) */
  status(): Promise<RuntimeCondition[]>;
  runPodSandbox(config: PodSandboxConfig, runtimeHandler?: string): Promise<string>;
  podSandboxStatus(id: string, verbose?: boolean): Promise<PodSandboxStatusResponse>;
  /** the verbose `info` JSON containerd attaches to PodSandboxStatus (pid, runtimeType, runtimeOptions, runtimeSpec) */
  podSandboxInfo(id: string): Promise<CriVerboseInfo>;
  stopPodSandbox(id: string): Promise<void>;
  removePodSandbox(id: string): Promise<void>;
  createContainer(podId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string>;
  startContainer(id: string): Promise<void>;
  containerStatus(id: string, verbose?: boolean): Promise<ContainerStatusResponse>;
  containerInfo(id: string): Promise<CriVerboseInfo>;
  stopContainer(id: string, timeoutSeconds: number): Promise<void>;
  removeContainer(id: string): Promise<void>;
  listContainers(filter?: ContainerFilter): Promise<ContainerSummary[]>;
  /** timeoutSeconds 0 = no timeout (as in the CRI API) */
  execSync(id: string, cmd: string[], timeoutSeconds?: number): Promise<ExecSyncResult>;
  pullImage(image: string, auth?: { username: string; password: string }, sandboxConfig?: PodSandboxConfig): Promise<string>;
  /** null when the image is not present */
  imageStatus(image: string): Promise<ImageInfo | null>;
  close(): void;
}

/** An error from a CRI call, with the gRPC status code and the method name. */
export class CriError extends Error {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`CRI ${method} failed (${grpc.status[code] ?? code}): ${details}`);
    this.name = 'CriError';
  }
}

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;
/** A method of a grpc-js dynamic client: (request, metadata, options, callback). */
type UnaryMethod = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback) => grpc.ClientUnaryCall;

interface Loaded {
  RuntimeService: grpc.ServiceClientConstructor;
  ImageService: grpc.ServiceClientConstructor;
}

let loaded: Loaded | undefined;
function loadProto(): Loaded {
  if (loaded) return loaded;
  const def = protoLoader.loadSync(CRI_PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def);
  const runtime = pkg.runtime as grpc.GrpcObject | undefined;
  const v1 = runtime?.v1 as grpc.GrpcObject | undefined;
  const rs = v1?.RuntimeService;
  const is = v1?.ImageService;
  if (typeof rs !== 'function' || typeof is !== 'function') throw new Error(`${CRI_PROTO}: runtime.v1.RuntimeService/ImageService not found`);
  loaded = { RuntimeService: rs as grpc.ServiceClientConstructor, ImageService: is as grpc.ServiceClientConstructor };
  return loaded;
}

/** Connects to a CRI endpoint (containerd's unix socket) and checks it answers Version. */
export async function connectCri(socketPath: string, opts: { callTimeoutMs?: number } = {}): Promise<CriClient> {
  const { RuntimeService, ImageService } = loadProto();
  const target = `unix://${socketPath}`;
  const creds = grpc.credentials.createInsecure();
  const channelOpts = { 'grpc.max_receive_message_length': 16 * 1024 * 1024 };
  const rs = new RuntimeService(target, creds, channelOpts);
  const is = new ImageService(target, creds, channelOpts);
  const defaultTimeout = opts.callTimeoutMs ?? 120_000;

  // The dynamic client's methods are looked up by name and called through one typed wrapper, so every call site
  // below has request and response types; the cast is the only place the dynamic shape is assumed.
  const call = <Res>(client: grpc.Client, method: string, req: object, timeoutMs = defaultTimeout): Promise<Res> =>
    new Promise<Res>((resolve, reject) => {
      const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
      if (typeof fn !== 'function') {
        reject(new Error(`CRI client has no method ${method}`));
        return;
      }
      fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(new CriError(method, err.code, err.details || err.message));
        else resolve(res as Res);
      });
    });
  const parseInfo = (info: Record<string, string>): CriVerboseInfo => {
    const raw = info.info;
    if (!raw) throw new Error(`verbose status has no "info" entry (keys: ${Object.keys(info).join(', ')})`);
    return JSON.parse(raw) as CriVerboseInfo;
  };

  const client: CriClient = {
    version: () => call<VersionResponse>(rs, 'Version', { version: '0.1.0' }, 10_000),
    async status() {
      const r = await call<{ status: { conditions: RuntimeCondition[] } | null }>(rs, 'Status', { verbose: false });
      return r.status?.conditions ?? [];
    },
    async runPodSandbox(config, runtimeHandler = '') {
      const r = await call<{ pod_sandbox_id: string }>(rs, 'RunPodSandbox', { config, runtime_handler: runtimeHandler });
      return r.pod_sandbox_id;
    },
    podSandboxStatus: (id, verbose = false) => call<PodSandboxStatusResponse>(rs, 'PodSandboxStatus', { pod_sandbox_id: id, verbose }),
    async podSandboxInfo(id) {
      return parseInfo((await client.podSandboxStatus(id, true)).info);
    },
    async stopPodSandbox(id) {
      await call(rs, 'StopPodSandbox', { pod_sandbox_id: id });
    },
    async removePodSandbox(id) {
      await call(rs, 'RemovePodSandbox', { pod_sandbox_id: id });
    },
    async createContainer(podId, config, sandboxConfig) {
      const r = await call<{ container_id: string }>(rs, 'CreateContainer', { pod_sandbox_id: podId, config, sandbox_config: sandboxConfig });
      return r.container_id;
    },
    async startContainer(id) {
      await call(rs, 'StartContainer', { container_id: id });
    },
    containerStatus: (id, verbose = false) => call<ContainerStatusResponse>(rs, 'ContainerStatus', { container_id: id, verbose }),
    async containerInfo(id) {
      return parseInfo((await client.containerStatus(id, true)).info);
    },
    async stopContainer(id, timeoutSeconds) {
      await call(rs, 'StopContainer', { container_id: id, timeout: String(timeoutSeconds) }, defaultTimeout + timeoutSeconds * 1000);
    },
    async removeContainer(id) {
      await call(rs, 'RemoveContainer', { container_id: id });
    },
    async listContainers(filter) {
      const r = await call<{ containers: ContainerSummary[] }>(rs, 'ListContainers', filter ? { filter } : {});
      return r.containers;
    },
    async execSync(id, cmd, timeoutSeconds = 0) {
      const budget = timeoutSeconds > 0 ? timeoutSeconds * 1000 + 30_000 : defaultTimeout;
      const r = await call<{ stdout: Buffer; stderr: Buffer; exit_code: number }>(
        rs, 'ExecSync', { container_id: id, cmd, timeout: String(timeoutSeconds) }, budget);
      return { stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), exitCode: r.exit_code };
    },
    async pullImage(image, auth, sandboxConfig) {
      const req: Record<string, unknown> = { image: { image } };
      if (auth) req.auth = { username: auth.username, password: auth.password };
      if (sandboxConfig) req.sandbox_config = sandboxConfig;
      const r = await call<{ image_ref: string }>(is, 'PullImage', req, 300_000);
      return r.image_ref;
    },
    async imageStatus(image) {
      const r = await call<{ image: ImageInfo | null }>(is, 'ImageStatus', { image: { image } });
      return r.image && r.image.id ? r.image : null;
    },
    close() {
      rs.close();
      is.close();
    },
    [Symbol.asyncDispose]: async () => {
      client.close();
    },
  };
  try {
    await client.version();
  } catch (err) {
    client.close();
    throw err;
  }
  return client;
}

// ---------------------------------------------------------------------------------------------------------------
// Config builders (what the kubelet sends, reduced to what matters here)

export interface PodOptions {
  name: string;
  namespace?: string;
  uid?: string;
  /** the kubelet's /var/log/pods/<ns>_<name>_<uid> */
  logDirectory: string;
  /** hostNetwork: true → NamespaceMode NODE for the network namespace (no CNI needed) */
  hostNetwork?: boolean;
  hostname?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function podConfig(o: PodOptions): PodSandboxConfig {
  const uid = o.uid ?? randomUUID();
  const namespace = o.namespace ?? 'default';
  return {
    metadata: { name: o.name, uid, namespace, attempt: 0 },
    // the kubelet sends no hostname for host-network pods (they share the node's UTS namespace)
    hostname: o.hostNetwork ? '' : (o.hostname ?? o.name),
    log_directory: o.logDirectory,
    labels: { 'io.kubernetes.pod.name': o.name, 'io.kubernetes.pod.namespace': namespace, 'io.kubernetes.pod.uid': uid, ...(o.labels ?? {}) },
    annotations: o.annotations ?? {},
    linux: {
      security_context: {
        namespace_options: { network: o.hostNetwork ? 'NODE' : 'POD', pid: 'CONTAINER', ipc: 'POD' },
      },
    },
  };
}

export interface ContainerOptions {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  workingDir?: string;
  /** relative to the pod's log_directory; default `<name>/0.log` as the kubelet does */
  logPath?: string;
  memoryBytes?: number;
  annotations?: Record<string, string>;
  /** the pod is hostNetwork: the kubelet then sends NamespaceMode NODE for the container's network too */
  hostNetwork?: boolean;
}

export function containerConfig(o: ContainerOptions): ContainerConfig {
  const c: ContainerConfig = {
    metadata: { name: o.name, attempt: 0 },
    image: { image: o.image },
    command: o.command ?? [],
    args: o.args ?? [],
    envs: Object.entries(o.env ?? {}).map(([key, value]) => ({ key, value })),
    labels: { 'io.kubernetes.container.name': o.name },
    annotations: o.annotations ?? {},
    log_path: o.logPath ?? join(o.name, '0.log'),
    linux: { security_context: { namespace_options: { network: o.hostNetwork ? 'NODE' : 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
  if (o.workingDir) c.working_dir = o.workingDir;
  if (o.memoryBytes && c.linux) c.linux.resources = { memory_limit_in_bytes: String(o.memoryBytes) };
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// CRI log format: `<RFC3339Nano timestamp> <stdout|stderr> <P|F> <content>` per line (P = partial line)

export interface CriLogLine {
  time: string;
  stream: 'stdout' | 'stderr';
  tag: 'P' | 'F';
  content: string;
}

const CRI_LOG_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) (P|F) (.*)$/;

/** Parses a CRI log file; throws on a line that is not in the CRI format. */
export function parseCriLog(text: string): CriLogLine[] {
  const out: CriLogLine[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = CRI_LOG_LINE.exec(line);
    if (!m) throw new Error(`not a CRI log line: ${JSON.stringify(line)}`);
    out.push({ time: m[1] as string, stream: m[2] as 'stdout' | 'stderr', tag: m[3] as 'P' | 'F', content: m[4] as string });
  }
  return out;
}

/** Reassembles a stream's lines (joins P fragments with the following F). */
export function criLogText(lines: CriLogLine[], stream: 'stdout' | 'stderr'): string[] {
  const out: string[] = [];
  let partial = '';
  for (const l of lines) {
    if (l.stream !== stream) continue;
    partial += l.content;
    if (l.tag === 'F') {
      out.push(partial);
      partial = '';
    }
  }
  if (partial) out.push(partial);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Set-up helpers

/** Builds the pod sandbox image (static C pause, entrypoint ["/pause"]) and pushes it; returns its reference. */
export async function pushPauseImage(registry: StartedRegistry, name = 'pause:3.9-test'): Promise<string> {
  await using store = await buildahStore();
  const rootfs = join(store.dir, 'pause-rootfs');
  await mkdir(rootfs, { recursive: true });
  await run('gcc', ['-static', '-Os', '-s', '-o', join(rootfs, 'pause'), projectPath('test', 'fixtures', 'cri', 'pause.c')], { timeoutMs: 60_000 });
  const ctr = (await store.buildah(['from', '--isolation', 'chroot', '--name', 'cri-pause', 'scratch'])).stdout.trim();
  await store.buildah(['copy', '--chmod', '0755', ctr, join(rootfs, 'pause'), '/pause']);
  await store.buildah(['config', '--entrypoint', '["/pause"]', '--cmd', '', ctr]);
  await store.buildah(['commit', '--timestamp', '0', ctr, 'localhost/cri-pause:latest']);
  const ref = `${registry.host}/${name}`;
  const { args, secrets } = registryFlags(registry);
  await store.buildah(['push', ...args, 'localhost/cri-pause:latest', `docker://${ref}`], { secrets, timeoutMs: 120_000 });
  return ref;
}

/**
 * containerd 1.6 CRI registry hosts for the harness registry: `<dir>/<host:port>/hosts.toml` with an `http://`
 * server (plain HTTP, pull+resolve), and the `config_path` TOML to append to containerd's config.
 */
export async function criRegistryConfig(registry: StartedRegistry, dir: string): Promise<string> {
  const hostDir = join(dir, registry.host);
  await mkdir(hostDir, { recursive: true });
  const q = (s: string) => JSON.stringify(s);
  const toml = registry.tls
    ? [`server = ${q(`https://${registry.host}`)}`, '', `[host.${q(`https://${registry.host}`)}]`, '  capabilities = ["pull", "resolve"]',
      `  ca = ${q(join(registry.tls.certDir, 'ca.crt'))}`, '']
    : [`server = ${q(registry.url)}`, '', `[host.${q(registry.url)}]`, '  capabilities = ["pull", "resolve"]', ''];
  await writeFile(join(hostDir, 'hosts.toml'), toml.join('\n'));
  return ['[plugins."io.containerd.grpc.v1.cri".registry]', `  config_path = ${q(dir)}`].join('\n');
}
