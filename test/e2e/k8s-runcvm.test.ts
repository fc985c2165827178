/**
 * runcvm as Kubernetes users install and run it, as one story on a one-node test cluster (test/harness/k8s):
 * the node-installer DaemonSet (deploy/kubernetes, our runcvm-installer image) installs runcvm into the node's /opt
 * and registers it in the node's containerd config; containerd, restarted as systemd would, runs
 * examples/runcvm-pod.yaml (RuntimeClass runcvm) as a QEMU microVM on the image kimia built and pushed a moment
 * before in examples/kimia-build-pod.yaml: build → registry → microVM.
 *
 * The node is a temp folder (hostPath volumes and containerd's /opt resolve there); containerd runs in a private
 * mount namespace so the host's /opt is never touched; the installer runs privileged with hostPID as the manifest
 * says, and never restarts anything here (the node root has no /run/systemd/system and PID 1 is not systemd), so it
 * reports the restart it leaves to the node's service manager, which the test then plays.
 * Every VM runs under TCG here (no usable KVM), so the VM scenarios are small.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../../src/core/paths.js';
import { pushBusyboxImage } from '../harness/images.js';
import { keepEvidence } from '../harness/evidence.js';
import { clusterLeftovers, startCluster, type Cluster } from '../harness/k8s/cluster.js';
import { buildProjectImages, IMAGE_PREFIX, PUBLISHED_PREFIX, type ProjectImages } from '../harness/k8s/project-images.js';
import { kustomizeBuild, type ImageOverride } from '../harness/k8s/kustomize.js';
import { withArgs, type DaemonSet, type Pod, type RuntimeClass, type Secret } from '../harness/k8s/objects.js';
import type { RunningPod } from '../harness/kubelet.js';
import { waitFor } from '../harness/wait.js';
import { restrictedViolations } from '../harness/k8s/pss.js';

const GIT_TOKEN = `glpat-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
let cluster: Cluster;
let images: ProjectImages;
let overrides: ImageOverride[];
let deploy: unknown[];
let examples: unknown[];
let repoUrl: string;
let guestRelease: string;

keepEvidence(() => [
  cluster?.containerd.logPath ? { logPath: cluster.containerd.logPath, name: 'containerd.log' } : undefined,
  // runcvm's per-container debug logs on the test node (RUNCVM_LOG_DIR)
  // (none once the cluster is closed: its folder is gone)
  ...(cluster && existsSync(join(cluster.nodeRoot, 'tmp')) ? readdirSync(join(cluster.nodeRoot, 'tmp')).filter((n) => n.startsWith('runcvm-')).map((n) => ({ logPath: join(cluster.nodeRoot, 'tmp', n), name: n })) : []),
]);

function secret(name: string, data: Record<string, string>, type = 'Opaque'): Secret {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name }, type, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
}

function find<T>(objects: unknown[], kind: string, name: string): T {
  const o = objects.find((x) => (x as { kind: string }).kind === kind && (x as { metadata: { name: string } }).metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return structuredClone(o) as T;
}

function withRegistryCa(pod: Pod): Pod {
  const c = pod.spec.containers[0]!;
  pod.spec.volumes = [...(pod.spec.volumes ?? []), { name: 'test-registry-ca', secret: { secretName: 'test-registry-ca' } }];
  c.volumeMounts = [...(c.volumeMounts ?? []), { name: 'test-registry-ca', mountPath: `/home/kimia/.config/containers/certs.d/${cluster.registryHost}`, readOnly: true }];
  return pod;
}

async function installerRun(): Promise<{ pod: RunningPod; log: string; exitCode: number | undefined }> {
  const pod = await cluster.kubelet.runPod(find<DaemonSet>(deploy, 'DaemonSet', 'runcvm-node-installer'));
  const r = await pod.waitForExit('install', 5 * 60_000);
  return { pod, log: `${r.stdout}\n${r.stderr}`, exitCode: r.exitCode };
}

beforeAll(async () => {
  cluster = await startCluster({ gitToken: GIT_TOKEN });
  images = await buildProjectImages(cluster.registry, ['kimia', 'runcvm-installer']);
  const tag = images.images.kimia!.ref.split(':').pop()!;
  overrides = [
    { name: `${PUBLISHED_PREFIX}/kimia`, newName: `${cluster.registryHost}/${IMAGE_PREFIX}/kimia`, newTag: tag },
    { name: `${PUBLISHED_PREFIX}/runcvm-installer`, newName: `${cluster.registryHost}/${IMAGE_PREFIX}/runcvm-installer`, newTag: tag },
    // no internet: the pause container of the DaemonSet comes from the test registry (as in an air-gapped cluster)
    { name: 'registry.k8s.io/pause', newName: cluster.pauseImage.split(':').slice(0, -1).join(':'), newTag: cluster.pauseImage.split(':').pop()! },
  ];
  deploy = await kustomizeBuild(projectPath('deploy', 'kubernetes'), { setImages: overrides });
  examples = await kustomizeBuild(projectPath('deploy', 'kubernetes', 'examples'), { setImages: overrides });
  const busybox = (await pushBusyboxImage(cluster.registry)).replace(cluster.registry.host, cluster.registryHost);
  const repo = await cluster.git!.createRepo('vm-app', {
    Dockerfile: [`FROM ${busybox}`, 'RUN echo "hello from an image kimia built" > /msg', 'CMD ["cat", "/msg"]', ''].join('\n'),
  });
  repoUrl = repo.url.replace(/^http:\/\/127\.0\.0\.1:\d+/, cluster.gitBase);
  const auth = cluster.registry.auth!;
  cluster.kubelet.addSecret(secret('registry-credentials', {
    '.dockerconfigjson': JSON.stringify({ auths: { [cluster.registryHost]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } } }),
  }, 'kubernetes.io/dockerconfigjson'));
  cluster.kubelet.addSecret(secret('github-token', { 'git-token': GIT_TOKEN }));
  cluster.kubelet.addSecret(secret('test-registry-ca', { 'ca.crt': await readFile(cluster.registry.tls!.caCertPath, 'utf8') }));
  guestRelease = (await readFile(projectPath('var', 'assets', 'kernel', 'release'), 'utf8')).trim();
}, 40 * 60_000);

afterAll(async () => {
  await cluster?.close();
});

describe('deploy/kubernetes/node-installer-daemonset.yaml', () => {
  let first: Awaited<ReturnType<typeof installerRun>>;

  it('installs runcvm into the node, registers it with containerd, validates the entry and says to restart containerd', async () => {
    first = await installerRun();
    expect(first.exitCode, first.log).toBe(0);
    expect(first.log).toMatch(/node engine: containerd \(\/etc\/containerd\/config\.toml\)/);
    expect(first.log).toMatch(/runcvm 0\.\d+\.\d+ installed in \/opt\/runcvm \(payload [0-9a-f]{12}\)/);
    expect(first.log).toContain('/etc/containerd/config.toml: added [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]');
    expect(first.log).toContain('the original is saved as /etc/containerd/config.toml.bak');
    expect(first.log).toContain('restart: this node does not run systemd, so the installer cannot restart containerd: restart it yourself');
    const config = await readFile(cluster.containerdConfig, 'utf8');
    expect(config).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]');
    expect(config).toContain('BinaryName = "/opt/runcvm/bin/runcvm-runtime"');
    expect((await stat(join(cluster.nodeRoot, 'opt', 'runcvm', 'bin', 'runcvm-runtime'))).mode & 0o111).not.toBe(0);
    expect((await stat(join(cluster.nodeRoot, 'opt', 'runcvm', 'var', 'assets', 'kernel', 'vmlinux'))).size).toBeGreaterThan(1 << 20);
    expect((await stat(join(cluster.nodeRoot, 'etc', 'containerd', 'config.toml.bak'))).mode & 0o777).toBe(0o600);
  });

  it('run again (a second pod on the node), it changes nothing and restarts nothing', async () => {
    const config = await readFile(cluster.containerdConfig, 'utf8');
    const runtimeBefore = (await stat(join(cluster.nodeRoot, 'opt', 'runcvm', 'bin', 'runcvm-runtime'))).mtimeMs;
    const again = await installerRun();
    try {
      expect(again.exitCode, again.log).toBe(0);
      expect(again.log).toMatch(/runcvm 0\.\d+\.\d+ is already installed in \/opt\/runcvm/);
      expect(again.log).toMatch(/already registered; nothing to restart/);
      expect(again.log).toContain('nothing to change');
      expect(await readFile(cluster.containerdConfig, 'utf8')).toBe(config);
      expect((await stat(join(cluster.nodeRoot, 'opt', 'runcvm', 'bin', 'runcvm-runtime'))).mtimeMs).toBe(runtimeBefore);
    } finally {
      await again.pod.delete();
    }
  });

  it('containerd, restarted on that config, runs examples/runcvm-pod.yaml as a microVM on the image kimia pushed a moment before', async () => {
    await cluster.restartContainerd();
    cluster.kubelet.addRuntimeClass(find<RuntimeClass>(deploy, 'RuntimeClass', 'runcvm'));
    // build → registry
    const image = `${cluster.registryHost}/org/vm-app:1`;
    const build = await cluster.kubelet.runPod(withRegistryCa(withArgs(find<Pod>(examples, 'Pod', 'kimia-build'), { '--context': repoUrl, '--destination': image })));
    try {
      const b = await build.waitForExit('kimia', 10 * 60_000);
      expect(b.exitCode, `${b.stdout}\n${b.stderr}`).toBe(0);
      expect(b.terminationMessage.trim()).toBe((await cluster.registry.manifest('org/vm-app', '1')).digest);
    } finally {
      await build.delete();
    }
    // registry → microVM: the example pod on that image, with the image's own command after its own
    const vmPod = find<Pod>(examples, 'Pod', 'runcvm-hello');
    vmPod.spec.containers[0]!.image = image;
    vmPod.spec.containers[0]!.command = ['sh', '-c', 'cat /msg; cat /proc/version; uname -r; echo vm-ready; sleep 3600'];
    const vm = await cluster.kubelet.runPod(vmPod);
    try {
      const r = await vm.waitForLog('hello', 'vm-ready', 5 * 60_000);
      expect(r.stdout).toContain('hello from an image kimia built');
      // the guest's kernel, not the node's
      expect(r.stdout.split('\n')).toContain(guestRelease);
      const exec = await vm.exec('hello', ['uname', '-r']);
      expect(exec.stdout.trim()).toBe(guestRelease);
    } finally {
      await vm.delete();
    }
  }, 20 * 60_000);

  it('a broken node (an invalid containerd config) fails the init container with the line and the fix, and nothing is written', async () => {
    const good = await readFile(cluster.containerdConfig, 'utf8');
    const broken = good.replace('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]', '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm\nruntime_type = ');
    await writeFile(cluster.containerdConfig, broken);
    try {
      const r = await installerRun();
      try {
        expect(r.exitCode, r.log).toBe(1);
        expect(r.log).toMatch(/error: \/etc\/containerd\/config\.toml: the existing config is not valid TOML \(line \d+, column \d+/);
        expect(r.log).toMatch(/fix: fix that line first/);
        expect(await readFile(cluster.containerdConfig, 'utf8')).toBe(broken);
        const status = await r.pod.result();
        expect(status.phase).toBe('Failed');
        expect(status.containers.pause).toBeUndefined();
      } finally {
        await r.pod.delete();
      }
    } finally {
      await writeFile(cluster.containerdConfig, good);
    }
  });

  afterAll(async () => {
    await first?.pod.delete();
  });
});

describe('examples/kimia-restricted-pod.yaml: a build in a pod that passes the Pod Security Standard "restricted"', () => {
  const restrictedPod = (image: string) => {
    const pod = withRegistryCa(withArgs(find<Pod>(examples, 'Pod', 'kimia-build-restricted'), { '--context': repoUrl, '--destination': image }));
    // what the API server's PodSecurity admission would check at `enforce: restricted` (test/harness/k8s/pss.ts)
    expect(restrictedViolations(pod.spec)).toEqual([]);
    return pod;
  };

  it('under runc it fails with the guide\'s error (RuntimeDefault seccomp refuses the user namespace) and kimia names the fix', async () => {
    const pod = restrictedPod(`${cluster.registryHost}/org/restricted-runc:1`);
    delete pod.spec.runtimeClassName;
    const p = await cluster.kubelet.runPod(pod);
    try {
      const r = await p.waitForExit('kimia', 5 * 60_000);
      expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(6);
      expect(r.stderr).toContain('error: failed to create user namespace: operation not permitted');
      expect(r.stderr).toContain('add: [SETUID, SETGID]');
      expect(r.stderr).toContain('type: Unconfined');
    } finally {
      await p.delete();
    }
  });

  it('under RuntimeClass runcvm-userns it builds and pushes: the microVM is the boundary', async () => {
    cluster.kubelet.addRuntimeClass(find<RuntimeClass>(deploy, 'RuntimeClass', 'runcvm-userns'));
    const image = `${cluster.registryHost}/org/restricted-vm:1`;
    const pod = restrictedPod(image);
    // keeps runcvm's debug log of this container (evidence on failure)
    pod.spec.containers[0]!.env!.push({ name: 'RUNCVM_LOG_LEVEL', value: 'DEBUG' });
    const p = await cluster.kubelet.runPod(pod);
    try {
      // on the node, the processes that run the VM keep the pod's restrictions: no privilege escalation, the
      // runtime's seccomp profile, no capability but CAP_NET_ADMIN (the launcher's, for the pod's own network)
      const onNode = await waitFor('QEMU of the restricted pod on the node', async () => {
        const procs = (await readFile(`/sys/fs/cgroup/memory/k8s.io/${p.containerId('kimia')}/cgroup.procs`, 'utf8').catch(() => '')).split('\n').filter(Boolean);
        for (const pid of procs) {
          // started through the guest package's loader: the command line names it, not comm
          const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
          if (cmdline.includes('qemu-system')) return readFile(`/proc/${pid}/status`, 'utf8');
        }
        return false;
      }, { timeoutMs: 120_000, intervalMs: 500 });
      // runcvm's launcher (and so QEMU) is UID 0 of the container, which has no user namespace: root without
      // capabilities but CAP_NET_ADMIN, under no_new_privs and seccomp (docs/kubernetes.md "A restricted build")
      expect(onNode).toMatch(/^Uid:\s+0\s+0\s+0\s+0$/m);
      expect(onNode).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(onNode).toMatch(/^Seccomp:\s+2$/m);
      expect(onNode).toMatch(/^CapBnd:\s+0000000000001000$/m);
      expect(onNode).toMatch(/^CapEff:\s+0000000000001000$/m);
      const r = await p.waitForExit('kimia', 15 * 60_000);
      // the Dockerfile's RUN needs a user namespace with subordinate IDs (with a single-ID mapping it fails at
      // setgroups): a build that succeeds had one
      // runcvm's debug log (the launcher's and the guest's lines) says why, when the VM itself failed
      const debugTail = r.exitCode === 0 ? '' : (await readFile(join(cluster.nodeRoot, 'tmp', `runcvm-${p.containerId('kimia')}.debug`), 'utf8').catch((e: Error) => e.message)).split('\n').slice(-80).join('\n');
      expect(r.exitCode, `${r.reason} ${r.message}\n${r.stdout}\n${r.stderr}\n--- runcvm debug log (tail)\n${debugTail}`).toBe(0);
      const digest = (await cluster.registry.manifest('org/restricted-vm', '1')).digest;
      const log = `${r.stdout}\n${r.stderr}`;
      expect(log).toContain(`pushed ${image}@${digest}`);
      // inside the VM kimia runs as UID 1000 with a user namespace of subordinate IDs, as in the guide's pod
      expect(log).toMatch(/engine: buildah 1\.39/);
      expect(log).not.toMatch(/^warning: preflight/m);
      // the decision came from the node's runtime entry (handler runcvm-userns), as `runcvm plan` shows it
      const debugLog = await readFile(join(cluster.nodeRoot, 'tmp', `runcvm-${p.containerId('kimia')}.debug`), 'utf8');
      expect(debugLog).toContain('guest privileges: userns (inside the VM: CAP_SETUID and CAP_SETGID in the bounding set');
    } finally {
      await p.delete();
    }
  }, 20 * 60_000);
});

describe('afterwards', () => {
  it('the cluster leaves nothing behind: no folder, mount, process or network namespace', async () => {
    await cluster.close();
    expect(await clusterLeftovers(cluster)).toEqual([]);
  });
});
