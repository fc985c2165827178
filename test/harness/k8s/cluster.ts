/**
 * A one-node Kubernetes "cluster" for tests: the real node side (containerd 1.6 with its CRI plugin, runc, a pod
 * network through a CNI plugin, a TLS + htpasswd registry, a Git server), the test kubelet (../kubelet.ts) in front
 * of it, and the API server faked by the test's own objects.
 *
 *   await using c = await startCluster({ gitToken: 's3cret' });
 *   c.registryHost     // "10.244.77.1:PORT": the registry as pods (and containerd, through a mirror) name it
 *   c.gitBase          // "http://10.244.77.1:PORT": the Git server as pods reach it
 *   const pod = await c.kubelet.runPod(object);
 *
 * The node: its filesystem root for hostPath volumes is `nodeRoot` (a temp folder); containerd reads
 * `nodeRoot/etc/containerd/config.toml` and runs in a private mount namespace where `nodeRoot/opt` is /opt, so what
 * an installer pod puts into the node's /opt is what containerd runs, and the host's /opt is never touched.
 * Pods are in a pod network (10.244.77.0/24, test/harness/cni.ts); the registry and the Git server listen on the
 * host's 127.0.0.1 and are relayed to the pod network's gateway (./netns-relay.ts). containerd pulls an image named
 * `10.244.77.1:PORT/…` from 127.0.0.1:PORT (a hosts.toml mirror with the registry's CA), with the node's credentials.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CloserStack, tempDir } from '../../../src/core/fsx/index.js';
import { connectCri, pushPauseImage, type CriClient } from '../cri.js';
import { installTestCni, type TestCni } from '../cni.js';
import { startContainerd, type StartedContainerd } from '../services/containerd.js';
import { startRegistry, type StartedRegistry } from '../services/registry.js';
import { startGitServer, type GitServer } from '../git-server.js';
import { Kubelet, type KubeletOptions } from '../kubelet.js';
import { relayIntoNetns } from './netns-relay.js';
import { waitFor } from '../wait.js';

export const POD_GATEWAY = '10.244.77.1';

export interface ClusterOptions {
  /** start the Git server with this token (any user name) */
  gitToken?: string;
  kubelet?: Partial<Pick<KubeletOptions, 'ephemeralStorage'>>;
  /** more CRI runtime handlers (name → BinaryName) */
  runtimes?: Record<string, { binaryName: string }>;
}

export interface Cluster extends AsyncDisposable {
  dir: string;
  nodeRoot: string;
  registry: StartedRegistry;
  /** the registry as pods name it (GATEWAY:PORT) */
  registryHost: string;
  git: GitServer | undefined;
  /** the Git server as pods reach it (http://GATEWAY:PORT) */
  gitBase: string;
  containerd: StartedContainerd;
  cri: CriClient;
  net: TestCni;
  kubelet: Kubelet;
  /** the node's containerd config (what an installer edits) */
  containerdConfig: string;
  /** the sandbox (pause) image as pods name it */
  pauseImage: string;
  /** `systemctl restart containerd` on this node: reads the config again, reconnects the CRI client */
  restartContainerd(): Promise<void>;
  close(): Promise<void>;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const closers = new CloserStack();
  try {
    const dir = await tempDir('k8s-node', closers);
    const nodeRoot = join(dir, 'node');
    for (const d of ['opt', 'etc/containerd', 'run', 'tmp', 'var/lib']) await mkdir(join(nodeRoot, d), { recursive: true });

    const registry = await startRegistry({ tls: true, auth: true, tlsIps: [POD_GATEWAY] });
    closers.push('stop the registry', () => registry.stop());
    const auth = registry.auth!;
    const port = registry.host.split(':')[1]!;
    const registryHost = `${POD_GATEWAY}:${port}`;
    const pause = await pushPauseImage(registry);

    // registry hosts: the pod-network name is mirrored to 127.0.0.1 (containerd lives in the host's network)
    const hostsDir = join(dir, 'certs.d');
    const ca = join(registry.tls!.certDir, 'ca.crt');
    const q = (s: string) => JSON.stringify(s);
    for (const [name, server] of [[registryHost, `https://${registryHost}`], [registry.host, `https://${registry.host}`]] as const) {
      await mkdir(join(hostsDir, name), { recursive: true });
      await writeFile(join(hostsDir, name, 'hosts.toml'), [
        `server = ${q(server)}`, '', `[host.${q(`https://${registry.host}`)}]`, '  capabilities = ["pull", "resolve"]', `  ca = ${q(ca)}`, '',
      ].join('\n'));
    }
    const cri = 'plugins."io.containerd.grpc.v1.cri".registry';
    const extraConfig = [
      `[${cri}]`, `  config_path = ${q(hostsDir)}`,
      // the node's own pull credentials (the sandbox image is pulled by containerd itself, not by the kubelet)
      ...[registryHost, registry.host].flatMap((h) => [`[${cri}.configs.${q(h)}.auth]`, `  username = ${q(auth.username)}`, `  password = ${q(auth.password)}`]),
    ].join('\n');

    // the pod network's node side exists before containerd starts, so its private mount namespace sees it
    const cniDir = join(dir, 'cni');
    const net = await installTestCni({ dir, cniDir });
    closers.push('remove the pod network', () => net.close());

    const containerdConfig = join(nodeRoot, 'etc', 'containerd', 'config.toml');
    const containerd = await startContainerd({
      cri: true, sandboxImage: pause, extraConfig, configPath: containerdConfig, cniDir, runtimes: opts.runtimes ?? {},
      binds: [{ source: join(nodeRoot, 'opt'), target: '/opt' }],
      // the node's containerd service environment: runcvm's state, logs and disk cache stay on the test node
      env: {
        RUNCVM_STATE_DIR: join(nodeRoot, 'run', 'runcvm'), RUNCVM_LOG_DIR: join(nodeRoot, 'tmp'), RUNCVM_CACHE_DIR: join(nodeRoot, 'var', 'lib', 'runcvm', 'disks'),
      },
    });
    closers.push('stop containerd', () => containerd.stop());

    const registryRelay = await relayIntoNetns({ netns: net.peerNetns, host: POD_GATEWAY, targetPort: Number(port) });
    closers.push('stop the registry relay', () => registryRelay.close());

    let git: GitServer | undefined;
    let gitBase = '';
    if (opts.gitToken) {
      git = await startGitServer({ token: opts.gitToken });
      closers.push('stop the Git server', () => git!.stop());
      const gitPort = Number(new URL(git.url).port);
      const gitRelay = await relayIntoNetns({ netns: net.peerNetns, host: POD_GATEWAY, targetPort: gitPort });
      closers.push('stop the Git relay', () => gitRelay.close());
      gitBase = `http://${gitRelay.address}`;
    }

    let client = await connectCri(containerd.socket);
    closers.push('close the CRI client', () => client.close());
    // the kubelet keeps one client object; a containerd restart swaps the connection behind it
    const criProxy = new Proxy({} as CriClient, { get: (_t, key) => Reflect.get(client, key, client) as unknown });
    const kubelet = new Kubelet({
      cri: criProxy,
      rootDir: join(dir, 'kubelet'),
      logDir: join(dir, 'log', 'pods'),
      nodeRoot,
      registryAuth: { [registryHost]: auth, [registry.host]: auth },
      nodeMountNamespace: () => containerd.pid(),
      ...opts.kubelet,
    });

    let closed: Promise<void> | undefined;
    const close = () => {
      closed ??= closers.close().then((errors) => {
        if (errors.length) throw new AggregateError(errors, `stopping the test cluster: ${errors.map((e) => e.message).join('; ')}`);
      });
      return closed;
    };
    return {
      dir, nodeRoot, registry, registryHost, git, gitBase, containerd, cri: criProxy, net, kubelet, containerdConfig,
      pauseImage: pause.replace(registry.host, registryHost),
      async restartContainerd() {
        client.close();
        await containerd.restart();
        // the CRI plugin answers "server is not initialized yet" while it recovers the pods it knew
        client = await waitFor('the CRI plugin to answer Version after the restart', async () => {
          try {
            return await connectCri(containerd.socket);
          } catch (err) {
            if (/not initialized/.test((err as Error).message)) return false;
            throw err;
          }
        }, { timeoutMs: 60_000, intervalMs: 200 });
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    await closers.close();
    throw err;
  }
}

/** What a stopped cluster must not leave: its temp folder, mounts under it, processes naming it, its pod network. */
export async function clusterLeftovers(c: Pick<Cluster, 'dir' | 'net' | 'containerd'>): Promise<string[]> {
  const { mountsUnder, processesMatching } = await import('../proc.js');
  const { run } = await import('../../../src/core/exec/index.js');
  const { stat } = await import('node:fs/promises');
  const out: string[] = [];
  if (await stat(c.dir).then(() => true, () => false)) out.push(`folder ${c.dir}`);
  for (const m of await mountsUnder(c.dir)) out.push(`mount ${m}`);
  for (const d of [c.dir, c.containerd.dir]) for (const p of await processesMatching(d)) out.push(`process ${p.pid} ${p.argv.join(' ')}`);
  const netns = (await run('ip', ['netns', 'list'], { reject: false })).stdout;
  if (netns.split('\n').some((l) => l.split(' ')[0] === c.net.peerNetns)) out.push(`network namespace ${c.net.peerNetns}`);
  return out;
}
