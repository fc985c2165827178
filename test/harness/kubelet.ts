/**
 * A test kubelet: takes a Pod, Job or DaemonSet manifest (as a user writes it) and makes the CRI calls the kubelet
 * makes against a real containerd: volumes prepared on the node as the kubelet prepares them, RunPodSandbox with the
 * handler of the pod's RuntimeClass, image pulls with the node's registry credentials, the runAsNonRoot check,
 * CreateContainer/StartContainer with the security context, env, args, resources and mounts the kubelet computes
 * (test/harness/k8s/convert.ts), init containers one after the other, then the app containers.
 *
 *   const node = new Kubelet({ cri, rootDir, logDir, nodeRoot, objects: { secrets, runtimeClasses }, registryAuth });
 *   const pod = await node.runPod(manifestObject);        // Pod | Job | DaemonSet (validated: unknown fields refused)
 *   const result = await pod.waitForCompletion(600_000);  // every container terminated (restartPolicy Never)
 *   result.containers.kimia.exitCode; result.containers.kimia.stdout
 *   await pod.delete();                                   // StopPodSandbox, RemovePodSandbox, volumes torn down
 *
 * The one fake is the Kubernetes API server: objects come from the test (Secrets, RuntimeClasses) instead of etcd,
 * there is no scheduler (one node), no controller restarts a failed pod, no service account token or service
 * environment variables are injected, and a PersistentVolumeClaim is a folder on the node (root:root 0755 when first
 * bound, like a new filesystem; kept across pods). See README "What the tests prove".
 *
 * Resource limits reach the runtime as the kubelet sends them (CPU shares and quota, memory limit, OOM score).
 * ephemeral-storage is enforced by the real kubelet through eviction; with `ephemeralStorage: 'tmpfs'` this driver
 * simulates it by giving each emptyDir a tmpfs of the container's ephemeral-storage limit, so a build that would be
 * evicted meets ENOSPC instead.
 */
import { chmod, lchown, lstat, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { run } from '../../src/core/exec/index.js';
import { unmountAll } from './proc.js';
import { GiveUp, waitFor } from './wait.js';
import { criLogText, parseCriLog, type CriClient, type CriLogLine, type CriMount, type PodSandboxConfig } from './cri.js';
import { containerConfig, podSandboxConfig, parseQuantity, runAsNonRootViolation, type PodIdentity } from './k8s/convert.js';
import { podOf, validateObject, type Container, type DaemonSet, type Job, type Pod, type PodSpec, type RuntimeClass, type Secret, type Volume } from './k8s/objects.js';

export interface KubeletOptions {
  cri: CriClient;
  /** the kubelet's root (its /var/lib/kubelet): pods/<uid>/volumes/…, pvc/<claim> */
  rootDir: string;
  /** /var/log/pods */
  logDir: string;
  /** the node's filesystem root as hostPath volumes see it (a temporary folder in tests) */
  nodeRoot: string;
  /** the API server's objects */
  objects?: { secrets?: Secret[]; runtimeClasses?: RuntimeClass[] };
  /** the node's registry credentials (the kubelet's credential keyring, /var/lib/kubelet/config.json), by host */
  registryAuth?: Record<string, { username: string; password: string }>;
  /** simulate ephemeral-storage limits with a tmpfs of that size behind each emptyDir (see the file comment) */
  ephemeralStorage?: 'unenforced' | 'tmpfs';
  /**
   * the pid of a process in the node's mount namespace (containerd's, when it runs in a private one): the kubelet
   * mounts volumes (tmpfs) there, as a real kubelet shares the node's mount namespace with containerd
   */
  nodeMountNamespace?: () => number;
}

export interface ContainerResult {
  name: string;
  id?: string;
  /** waiting (not created: reason says why), running, terminated */
  state: 'waiting' | 'running' | 'terminated';
  reason: string;
  message: string;
  exitCode?: number;
  /** what the container wrote to its terminationMessagePath (/dev/termination-log), as in its status */
  terminationMessage: string;
  stdout: string;
  stderr: string;
  log: CriLogLine[];
}

export interface PodResult {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  containers: Record<string, ContainerResult>;
}

/** A pod that could not start: the kubelet's event text (e.g. a volume that cannot be set up). */
export class PodStartError extends Error {
  constructor(readonly reason: string, message: string) {
    super(`${reason}: ${message}`);
    this.name = 'PodStartError';
  }
}

interface PreparedVolume {
  hostPath: string;
  /** secret volumes are always mounted read-only */
  readOnly: boolean;
}

const ETC_HOSTS_HEADER = '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n';

function decodeSecret(s: Secret): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(s.data ?? {})) out.set(k, Buffer.from(v, 'base64'));
  for (const [k, v] of Object.entries(s.stringData ?? {})) out.set(k, Buffer.from(v, 'utf8'));
  return out;
}

/** The kubelet's SetVolumeOwnership: group fsGroup on everything, group rw (ro for read-only volumes), setgid dirs. */
async function setVolumeOwnership(dir: string, fsGroup: number, readOnly: boolean): Promise<void> {
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    await lchown(path, -1, fsGroup);
    if (st.isSymbolicLink()) return;
    let mask = readOnly ? 0o440 : 0o660;
    if (st.isDirectory()) mask |= 0o2000 | 0o110;
    await chmod(path, (st.mode & 0o7777) | mask);
    if (st.isDirectory()) for (const e of await readdir(path)) await walk(join(path, e));
  };
  await walk(dir);
}

function registryHost(image: string): string {
  const first = image.split('/')[0]!;
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}

export class Kubelet {
  private readonly secrets = new Map<string, Secret>();
  private readonly runtimeClasses = new Map<string, RuntimeClass>();

  constructor(readonly opts: KubeletOptions) {
    for (const s of opts.objects?.secrets ?? []) this.addSecret(s);
    for (const r of opts.objects?.runtimeClasses ?? []) this.runtimeClasses.set(r.metadata.name, r);
  }

  addSecret(s: Secret): void {
    this.secrets.set(`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, validateObject('Secret', s));
  }

  addRuntimeClass(r: RuntimeClass): void {
    this.runtimeClasses.set(r.metadata.name, validateObject('RuntimeClass', r));
  }

  /** Validates the object (as the API server does) and starts its pod as the kubelet does. */
  async runPod(object: unknown): Promise<RunningPod> {
    const kind = (object as { kind?: string } | null)?.kind;
    if (kind !== 'Pod' && kind !== 'Job' && kind !== 'DaemonSet') throw new Error(`the test kubelet runs Pod, Job and DaemonSet objects, not ${kind}`);
    const validated = validateObject(kind, object) as Pod | Job | DaemonSet;
    const { name, namespace, labels, spec } = podOf(validated);
    // admission: the RuntimeClass must exist (the API server's RuntimeClass admission plugin)
    let handler = '';
    if (spec.runtimeClassName) {
      const rc = this.runtimeClasses.get(spec.runtimeClassName);
      if (!rc) throw new PodStartError('Forbidden', `pods "${name}" is forbidden: pod rejected: RuntimeClass "${spec.runtimeClassName}" not found`);
      handler = rc.handler;
    }
    const pod = new RunningPod(this, { name, namespace, uid: randomUUID(), labels }, spec, handler);
    await pod.start();
    return pod;
  }

  secret(namespace: string, name: string): Secret | undefined {
    return this.secrets.get(`${namespace}/${name}`);
  }

  /** The kubelet's image manager: pull per imagePullPolicy with the node's credentials; the image's user. */
  async ensureImage(image: string, policy: Container['imagePullPolicy'], sandbox: PodSandboxConfig): Promise<{ ref: string; uid?: number; username?: string }> {
    const tag = image.includes('@') ? '' : (image.split('/').pop()!.split(':')[1] ?? 'latest');
    const effective = policy ?? (tag === 'latest' ? 'Always' : 'IfNotPresent');
    let status = await this.opts.cri.imageStatus(image);
    if (!status || effective === 'Always') {
      if (effective === 'Never') throw new PodStartError('ErrImageNeverPull', `Container image "${image}" is not present with pull policy of Never`);
      const auth = this.opts.registryAuth?.[registryHost(image)];
      await this.opts.cri.pullImage(image, auth, sandbox).catch((err: Error) => {
        throw new PodStartError('ErrImagePull', `Failed to pull image "${image}": ${err.message}`);
      });
      status = await this.opts.cri.imageStatus(image);
    }
    if (!status) throw new PodStartError('ErrImagePull', `image "${image}" not present after pull`);
    const out: { ref: string; uid?: number; username?: string } = { ref: status.id };
    if (status.uid) out.uid = Number(status.uid.value);
    if (status.username) out.username = status.username;
    return out;
  }
}

export class RunningPod {
  readonly dir: string;
  readonly logDirectory: string;
  sandboxId = '';
  podIp = '';
  private sandbox!: PodSandboxConfig;
  private readonly volumes = new Map<string, PreparedVolume>();
  private readonly containers = new Map<string, ContainerResult>();
  private readonly mounted: string[] = [];
  private readonly terminationFiles = new Map<string, string>();
  private failed = false;

  constructor(
    readonly kubelet: Kubelet,
    readonly identity: PodIdentity,
    readonly spec: PodSpec,
    readonly handler: string,
  ) {
    this.dir = join(kubelet.opts.rootDir, 'pods', identity.uid);
    this.logDirectory = join(kubelet.opts.logDir, `${identity.namespace}_${identity.name}_${identity.uid}`);
  }

  get cri(): CriClient {
    return this.kubelet.opts.cri;
  }

  /** Runs a command in the node's mount namespace (mounts made there are what containerd's containers see). */
  private async onNode(argv: string[]): Promise<string> {
    const pid = this.kubelet.opts.nodeMountNamespace?.();
    const r = pid ? await run('nsenter', ['-t', String(pid), '-m', '--', ...argv]) : await run(argv[0]!, argv.slice(1));
    return r.stdout;
  }

  /** Reads a file of a volume as the node sees it (a tmpfs volume lives in the node's mount namespace). */
  async readVolumeFile(name: string, relPath: string): Promise<string> {
    return this.onNode(['cat', join(this.volumePath(name), relPath)]);
  }

  /** The node folder behind a volume (for tests that look at what a pod left, e.g. a Tekton result file). */
  volumePath(name: string): string {
    const v = this.volumes.get(name);
    if (!v) throw new Error(`pod ${this.identity.name} has no volume ${name}`);
    return v.hostPath;
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    await mkdir(this.logDirectory, { recursive: true, mode: 0o755 });
    for (const v of this.spec.volumes ?? []) this.volumes.set(v.name, await this.prepareVolume(v));
    this.sandbox = podSandboxConfig(this.identity, this.spec, { logDirectory: this.logDirectory, dns: await nodeDns(), nodeHostname: hostname() });
    this.sandboxId = await this.cri.runPodSandbox(this.sandbox, this.handler);
    this.podIp = (await this.cri.podSandboxStatus(this.sandboxId)).status?.network?.ip ?? '';
    await writeFile(join(this.dir, 'etc-hosts'), this.spec.hostNetwork
      ? await readFile('/etc/hosts', 'utf8')
      : `${ETC_HOSTS_HEADER}${this.podIp ? `${this.podIp}\t${this.identity.name}\n` : ''}`, { mode: 0o644 });
    for (const c of this.spec.initContainers ?? []) {
      const r = await this.startContainer(c);
      if (r.state !== 'running') {
        this.failed = true;
        return;
      }
      const done = await this.waitForExit(c.name, 30 * 60_000);
      if (done.exitCode !== 0) {
        // restartPolicy Never/OnFailure without a controller: the pod fails at its first failed init container
        this.failed = true;
        return;
      }
    }
    for (const c of this.spec.containers) await this.startContainer(c);
  }

  private async prepareVolume(v: Volume): Promise<PreparedVolume> {
    const fsGroup = this.spec.securityContext?.fsGroup;
    if (v.hostPath) {
      const path = join(this.kubelet.opts.nodeRoot, v.hostPath.path);
      const st = await stat(path).catch(() => undefined);
      const type = v.hostPath.type ?? '';
      if (type === 'DirectoryOrCreate' && !st) await mkdir(path, { recursive: true, mode: 0o755 });
      else if (type === 'FileOrCreate' && !st) {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, '', { mode: 0o644 });
      } else if (type === 'Directory' && !st?.isDirectory()) {
        throw new PodStartError('FailedMount', `MountVolume.SetUp failed for volume "${v.name}" : hostPath type check failed: ${v.hostPath.path} is not a directory`);
      } else if (type === 'File' && !st?.isFile()) {
        throw new PodStartError('FailedMount', `MountVolume.SetUp failed for volume "${v.name}" : hostPath type check failed: ${v.hostPath.path} is not a file`);
      }
      // hostPath volumes get no ownership change (fsGroup does not apply to them)
      return { hostPath: path, readOnly: false };
    }
    if (v.persistentVolumeClaim) {
      const path = join(this.kubelet.opts.rootDir, 'pvc', v.persistentVolumeClaim.claimName);
      if (!(await stat(path).catch(() => undefined))) await mkdir(path, { recursive: true, mode: 0o755 });
      if (fsGroup !== undefined) await setVolumeOwnership(path, fsGroup, false);
      return { hostPath: path, readOnly: v.persistentVolumeClaim.readOnly === true };
    }
    if (v.emptyDir) {
      const path = join(this.dir, 'volumes', 'kubernetes.io~empty-dir', v.name);
      await mkdir(path, { recursive: true });
      const limit = this.ephemeralLimit();
      if (v.emptyDir.medium === 'Memory' || (this.kubelet.opts.ephemeralStorage === 'tmpfs' && limit !== undefined)) {
        const size = v.emptyDir.medium === 'Memory' ? v.emptyDir.sizeLimit : String(limit);
        // a new tmpfs is empty: the ownership the kubelet would set is the mount's own (gid, setgid mode)
        const owner = fsGroup !== undefined ? `,gid=${fsGroup},mode=2777` : ',mode=0777';
        await this.onNode(['mount', '-t', 'tmpfs', '-o', `size=${size ? Math.max(4096, Math.floor(parseQuantity(size))) : '50%'}${owner}`, 'tmpfs', path]);
        this.mounted.push(path);
        return { hostPath: path, readOnly: false };
      }
      await chmod(path, 0o777);
      if (fsGroup !== undefined) await setVolumeOwnership(path, fsGroup, false);
      return { hostPath: path, readOnly: false };
    }
    if (v.secret) {
      const path = join(this.dir, 'volumes', 'kubernetes.io~secret', v.name);
      const secret = this.kubelet.secret(this.identity.namespace, v.secret.secretName);
      if (!secret && !v.secret.optional) {
        throw new PodStartError('FailedMount', `MountVolume.SetUp failed for volume "${v.name}" : secret "${v.secret.secretName}" not found`);
      }
      await mkdir(path, { recursive: true });
      // the files are written into a private staging folder, then copied into the volume's tmpfs
      const staging = join(this.dir, 'volumes', `.staging-${v.name}`);
      await mkdir(staging, { mode: 0o1777 });
      await chmod(staging, 0o1777);
      const data = secret ? decodeSecret(secret) : new Map<string, Buffer>();
      const items = v.secret.items ?? [...data.keys()].map((key) => ({ key, path: key, mode: undefined }));
      const defaultMode = v.secret.defaultMode ?? 0o644;
      // the kubelet's atomic writer: files in a timestamped folder, ..data → it, each top-level name → ..data/name
      const stamp = `..${new Date().toISOString().replace(/[-:]/g, '_').replace('T', '_').replace('Z', '')}`;
      await mkdir(join(staging, stamp), { mode: 0o755 });
      const tops = new Set<string>();
      for (const item of items) {
        const value = data.get(item.key);
        if (value === undefined) {
          throw new PodStartError('FailedMount', `MountVolume.SetUp failed for volume "${v.name}" : references non-existent secret key: ${item.key}`);
        }
        const file = join(staging, stamp, item.path);
        await mkdir(dirname(file), { recursive: true, mode: 0o755 });
        await writeFile(file, value);
        await chmod(file, item.mode ?? defaultMode);
        tops.add(item.path.split('/')[0]!);
      }
      await symlink(stamp, join(staging, '..data'));
      for (const t of tops) await symlink(join('..data', t), join(staging, t));
      if (fsGroup !== undefined) await setVolumeOwnership(staging, fsGroup, true);
      // secrets never touch the node's disk for long: a tmpfs, as the kubelet mounts one
      await this.onNode(['sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$1" && cp -a "$2"/. "$1"/ && chmod --reference="$2" "$1" && chown --reference="$2" "$1"', 'sh', path, staging]);
      this.mounted.push(path);
      await rm(staging, { recursive: true, force: true });
      return { hostPath: path, readOnly: true };
    }
    throw new Error(`volume ${v.name}: no source`);
  }

  /** The sum of the containers' ephemeral-storage limits, in bytes, or undefined when none is set. */
  private ephemeralLimit(): number | undefined {
    const limits = this.spec.containers.map((c) => c.resources?.limits?.['ephemeral-storage']).filter((x): x is string => x !== undefined);
    return limits.length ? limits.reduce((n, l) => n + parseQuantity(l), 0) : undefined;
  }

  private async envFor(c: Container): Promise<{ name: string; value: string }[]> {
    const out: { name: string; value: string }[] = [];
    for (const e of c.env ?? []) {
      if (e.value !== undefined || !e.valueFrom) {
        out.push({ name: e.name, value: e.value ?? '' });
        continue;
      }
      const ref = e.valueFrom.secretKeyRef;
      if (ref) {
        const value = this.kubelet.secret(this.identity.namespace, ref.name) ? decodeSecret(this.kubelet.secret(this.identity.namespace, ref.name)!).get(ref.key) : undefined;
        if (value === undefined) {
          if (ref.optional) continue;
          throw new PodStartError('CreateContainerConfigError', `secret "${ref.name}" not found or has no key "${ref.key}"`);
        }
        out.push({ name: e.name, value: value.toString('utf8') });
        continue;
      }
      const field = e.valueFrom.fieldRef?.fieldPath;
      const fields: Record<string, string> = {
        'metadata.name': this.identity.name, 'metadata.namespace': this.identity.namespace, 'metadata.uid': this.identity.uid,
        'status.podIP': this.podIp, 'spec.nodeName': hostname(),
      };
      if (!field || !(field in fields)) throw new PodStartError('CreateContainerConfigError', `unsupported fieldRef ${field ?? ''}`);
      out.push({ name: e.name, value: fields[field]! });
    }
    return out;
  }

  private async mountsFor(c: Container): Promise<CriMount[]> {
    const mounts: CriMount[] = [];
    for (const m of c.volumeMounts ?? []) {
      const v = this.volumes.get(m.name);
      if (!v) throw new PodStartError('CreateContainerConfigError', `unable to find volume "${m.name}" for container "${c.name}"`);
      const hostPath = m.subPath ? join(v.hostPath, m.subPath) : v.hostPath;
      if (m.subPath) await mkdir(hostPath, { recursive: true });
      mounts.push({ container_path: m.mountPath, host_path: hostPath, readonly: m.readOnly === true || v.readOnly });
    }
    mounts.push({ container_path: '/etc/hosts', host_path: join(this.dir, 'etc-hosts') });
    // the termination message file, writable by any user
    const termDir = join(this.dir, 'containers', c.name);
    await mkdir(termDir, { recursive: true });
    const term = join(termDir, randomUUID().slice(0, 8));
    await writeFile(term, '');
    await chmod(term, 0o666);
    this.terminationFiles.set(c.name, term);
    mounts.push({ container_path: c.terminationMessagePath ?? '/dev/termination-log', host_path: term });
    return mounts;
  }

  private async startContainer(c: Container): Promise<ContainerResult> {
    const result: ContainerResult = { name: c.name, state: 'waiting', reason: 'ContainerCreating', message: '', terminationMessage: '', stdout: '', stderr: '', log: [] };
    this.containers.set(c.name, result);
    try {
      const image = await this.kubelet.ensureImage(c.image, c.imagePullPolicy, this.sandbox);
      const violation = runAsNonRootViolation(this.identity, this.spec, c, image);
      if (violation) throw new PodStartError('CreateContainerConfigError', violation);
      const config = containerConfig(this.identity, this.spec, c, {
        imageRef: image.ref, env: await this.envFor(c), mounts: await this.mountsFor(c), nodeMemoryBytes: await nodeMemory(),
      });
      await mkdir(join(this.logDirectory, c.name), { recursive: true });
      result.id = await this.cri.createContainer(this.sandboxId, config, this.sandbox).catch((err: Error) => {
        throw new PodStartError('CreateContainerError', err.message);
      });
      await this.cri.startContainer(result.id).catch((err: Error) => {
        throw new PodStartError('RunContainerError', err.message);
      });
      result.state = 'running';
      result.reason = '';
    } catch (err) {
      if (!(err instanceof PodStartError)) throw err;
      result.reason = err.reason;
      result.message = err.message.slice(err.reason.length + 2);
    }
    return result;
  }

  private async refresh(r: ContainerResult): Promise<void> {
    if (!r.id) return;
    const st = (await this.cri.containerStatus(r.id)).status;
    if (!st) return;
    if (st.state === 'CONTAINER_EXITED') {
      r.state = 'terminated';
      r.exitCode = st.exit_code;
      r.reason = st.reason || (st.exit_code === 0 ? 'Completed' : 'Error');
      r.message = st.message;
      const term = this.terminationFiles.get(r.name);
      // the kubelet reads at most 4096 bytes of it
      if (term) r.terminationMessage = (await readFile(term, 'utf8').catch(() => '')).slice(0, 4096);
    }
    r.log = parseCriLog(await readFile(join(this.logDirectory, r.name, '0.log'), 'utf8').catch(() => ''));
    r.stdout = criLogText(r.log, 'stdout').join('\n');
    r.stderr = criLogText(r.log, 'stderr').join('\n');
  }

  /** Waits until the named container has exited (or could not be created) and returns its result. */
  async waitForExit(name: string, timeoutMs: number): Promise<ContainerResult> {
    const r = this.containers.get(name);
    if (!r) throw new Error(`pod ${this.identity.name} has no started container ${name}`);
    if (r.state === 'waiting') return r;
    await waitFor(`container ${name} of pod ${this.identity.name} to exit`, async () => {
      await this.refresh(r);
      return r.state === 'terminated';
    }, { timeoutMs, intervalMs: 250 });
    return r;
  }

  /** Waits until the container's log holds `marker` (a long-running container), returns its result so far. */
  async waitForLog(name: string, marker: string, timeoutMs: number): Promise<ContainerResult> {
    const r = this.containers.get(name);
    if (!r) throw new Error(`pod ${this.identity.name} has no started container ${name}`);
    await waitFor(`"${marker}" in the log of ${name} (pod ${this.identity.name})`, async () => {
      await this.refresh(r);
      if (r.state === 'terminated' && !r.log.some((l) => l.content.includes(marker))) {
        throw new GiveUp(`container ${name} exited with ${r.exitCode} before logging "${marker}":\n${r.stdout}\n${r.stderr}`);
      }
      return r.log.some((l) => l.content.includes(marker));
    }, { timeoutMs, intervalMs: 250 });
    return r;
  }

  /** Every container that was started has exited (restartPolicy Never): the pod's phase and each container's result. */
  async waitForCompletion(timeoutMs: number): Promise<PodResult> {
    for (const r of this.containers.values()) if (r.state === 'running') await this.waitForExit(r.name, timeoutMs);
    return this.result();
  }

  async result(): Promise<PodResult> {
    for (const r of this.containers.values()) await this.refresh(r);
    const all = [...this.containers.values()];
    const app = this.spec.containers.map((c) => this.containers.get(c.name));
    let phase: PodResult['phase'] = 'Running';
    if (this.failed || all.some((r) => r.state === 'terminated' && r.exitCode !== 0)) phase = 'Failed';
    else if (app.every((r) => r?.state === 'terminated' && r.exitCode === 0)) phase = 'Succeeded';
    else if (all.some((r) => r.state === 'waiting')) phase = 'Pending';
    return { phase, containers: Object.fromEntries(all.map((r) => [r.name, { ...r }])) };
  }

  /** the CRI container id of a started container */
  containerId(name: string): string | undefined {
    return this.containers.get(name)?.id;
  }

  async exec(container: string, cmd: string[], timeoutSeconds = 60) {
    const id = this.containers.get(container)?.id;
    if (!id) throw new Error(`container ${container} was not created`);
    return this.cri.execSync(id, cmd, timeoutSeconds);
  }

  /** kubectl delete pod: stop (grace period), remove the sandbox, tear the volumes down (PVC folders stay). */
  async delete(): Promise<void> {
    const grace = this.spec.terminationGracePeriodSeconds ?? 30;
    for (const r of this.containers.values()) {
      if (r.id) await this.cri.stopContainer(r.id, Math.min(grace, 10)).catch(() => undefined);
    }
    if (this.sandboxId) {
      await this.cri.stopPodSandbox(this.sandboxId);
      await this.cri.removePodSandbox(this.sandboxId);
    }
    for (const m of this.mounted.reverse()) await this.onNode(['umount', m]).catch(() => undefined);
    await unmountAll(this.dir);
    await rm(this.dir, { recursive: true, force: true });
  }
}

let memoryBytes: number | undefined;
async function nodeMemory(): Promise<number> {
  if (memoryBytes === undefined) {
    const m = /^MemTotal:\s+(\d+) kB/m.exec(await readFile('/proc/meminfo', 'utf8'));
    memoryBytes = m ? Number(m[1]) * 1024 : 8 * 2 ** 30;
  }
  return memoryBytes;
}

/** dnsPolicy ClusterFirst without a cluster DNS falls back to the node's resolv.conf (as the kubelet does). */
async function nodeDns(): Promise<{ servers: string[]; searches: string[]; options: string[] }> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const out = { servers: [] as string[], searches: [] as string[], options: [] as string[] };
  for (const line of text.split('\n')) {
    const [k, ...rest] = line.trim().split(/\s+/);
    if (k === 'nameserver' && rest[0]) out.servers.push(rest[0]);
    else if (k === 'search') out.searches.push(...rest);
    else if (k === 'options') out.options.push(...rest);
  }
  return out;
}

/** Reads every YAML document of a manifest file. */
export async function loadManifest(path: string): Promise<unknown[]> {
  const { parseAllDocuments } = await import('yaml');
  return parseAllDocuments(await readFile(path, 'utf8')).map((d) => d.toJS() as unknown).filter((d) => d !== null);
}

