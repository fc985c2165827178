/**
 * kimia as Kubernetes users run it: our kimia image (built by `npm run images` with our own kimia), the manifests of
 * deploy/kubernetes with the image set through deploy/kubernetes/images (kustomize), started by the test kubelet
 * (test/harness/kubelet.ts) through containerd's CRI plugin exactly as the kubelet would, in a pod network.
 *
 * What the test changes in examples/kimia-build-pod.yaml, and nothing else: the image (the kustomize images entry),
 * the --context (the test Git server) and --destination (the test registry) values, and one volume for the test
 * registry's private CA at $HOME/.config/containers/certs.d/HOST:PORT (a real registry's certificate is signed by a
 * CA the image already trusts). The Secrets are the ones the example names, made as `kubectl create secret` would.
 *
 * Proves: the pod builds a Git context through --git-token-file and pushes to an htpasswd + TLS registry with the
 * credentials of the Secret mounted at /home/kimia/.docker; the digest it writes (termination message, Tekton
 * result) is the registry's; each of the guide's misconfigurations made in that pod fails with the guide's error and
 * kimia's fix; the image holds no compiler, test file or dev dependency.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { projectPath } from '../../src/core/paths.js';
import { pushBusyboxImage } from '../harness/images.js';
import { keepEvidence } from '../harness/evidence.js';
import { clusterLeftovers, startCluster, type Cluster } from '../harness/k8s/cluster.js';
import { buildProjectImages, IMAGE_PREFIX, PUBLISHED_PREFIX, type ProjectImages } from '../harness/k8s/project-images.js';
import { kustomizeBuild } from '../harness/k8s/kustomize.js';
import { validateObject, withArgs, type Job, type Pod, type Secret, type Task, type TaskRun } from '../harness/k8s/objects.js';
import { RESULTS_VOLUME, taskRunPod } from '../harness/k8s/tekton.js';
import type { RunningPod } from '../harness/kubelet.js';

const GIT_TOKEN = `ghp_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
let cluster: Cluster;
let images: ProjectImages;
let kimiaImage: string;
let repoUrl: string;
let examples: unknown[];

keepEvidence(() => [cluster?.containerd.logPath ? { logPath: cluster.containerd.logPath, name: 'containerd.log' } : undefined]);

function secret(name: string, type: string, data: Record<string, string>): Secret {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name }, type, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
}

/** A fresh copy of an example object by kind and name (as kustomize built it). */
function example<T>(kind: string, name: string): T {
  const o = examples.find((x) => (x as { kind: string; metadata: { name: string } }).kind === kind && (x as { metadata: { name: string } }).metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in deploy/kubernetes/examples`);
  return structuredClone(o) as T;
}

/** The test registry's CA where containers/image looks for a registry's CA (the one test-only addition). */
function withRegistryCa(pod: Pod): Pod {
  const c = pod.spec.containers[0]!;
  pod.spec.volumes = [...(pod.spec.volumes ?? []), { name: 'test-registry-ca', secret: { secretName: 'test-registry-ca' } }];
  c.volumeMounts = [...(c.volumeMounts ?? []), { name: 'test-registry-ca', mountPath: `/home/kimia/.config/containers/certs.d/${cluster.registryHost}`, readOnly: true }];
  return pod;
}

beforeAll(async () => {
  cluster = await startCluster({ gitToken: GIT_TOKEN, kubelet: { ephemeralStorage: 'tmpfs' } });
  images = await buildProjectImages(cluster.registry, ['kimia']);
  const tag = images.images.kimia!.ref.split(':').pop()!;
  kimiaImage = `${cluster.registryHost}/${IMAGE_PREFIX}/kimia:${tag}`;
  examples = await kustomizeBuild(projectPath('deploy', 'kubernetes', 'examples'), {
    setImages: [{ name: `${PUBLISHED_PREFIX}/kimia`, newName: `${cluster.registryHost}/${IMAGE_PREFIX}/kimia`, newTag: tag }],
  });
  const busybox = await pushBusyboxImage(cluster.registry);
  const from = busybox.replace(cluster.registry.host, cluster.registryHost);
  const repo = await cluster.git!.createRepo('app', {
    Dockerfile: [`FROM ${from}`, 'RUN echo built-by-kimia > /hello && id -u > /build-uid', 'HEALTHCHECK --interval=30s CMD true', 'CMD ["cat", "/hello"]', ''].join('\n'),
  });
  repoUrl = repo.url.replace(/^http:\/\/127\.0\.0\.1:\d+/, cluster.gitBase);
  const auth = cluster.registry.auth!;
  const dockerconfigjson = JSON.stringify({ auths: { [cluster.registryHost]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } } });
  cluster.kubelet.addSecret(secret('registry-credentials', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': dockerconfigjson }));
  cluster.kubelet.addSecret(secret('github-token', 'Opaque', { 'git-token': GIT_TOKEN }));
  cluster.kubelet.addSecret(secret('test-registry-ca', 'Opaque', { 'ca.crt': await readFile(cluster.registry.tls!.caCertPath, 'utf8') }));
}, 40 * 60_000);

afterAll(async () => {
  await cluster?.close();
});

describe('the kimia image', () => {
  it('is built and pushed by npm run images with our kimia, which reports its layers and size', () => {
    expect(images.output).toMatch(new RegExp(`^${images.images.kimia!.ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}@sha256:[0-9a-f]{64}: \\d+ layers, [\\d.]+ MiB compressed$`, 'm'));
    expect(images.output).toMatch(/apt-get install/);
    expect(images.output).toMatch(/COPY .* \/opt\/kimia\//);
  });
});

describe('examples/kimia-build-pod.yaml', () => {
  it('builds a Git context with --git-token-file and pushes to the TLS + htpasswd registry with the Secret at /home/kimia/.docker', async () => {
    const before = cluster.git!.requests.length;
    const pod = await cluster.kubelet.runPod(withRegistryCa(withArgs(example<Pod>('Pod', 'kimia-build'), {
      '--context': repoUrl, '--destination': `${cluster.registryHost}/org/app:1.0`,
    })));
    try {
      const r = await pod.waitForCompletion(15 * 60_000);
      const k = r.containers.kimia!;
      expect(k.exitCode, `${k.stdout}\n${k.stderr}`).toBe(0);
      expect(r.phase).toBe('Succeeded');
      const pushed = await cluster.registry.manifest('org/app', '1.0');
      // --digest-file=/dev/termination-log: the container's termination message is the registry's digest
      expect(k.terminationMessage.trim()).toBe(pushed.digest);
      const log = `${k.stdout}\n${k.stderr}`;
      expect(log).toMatch(/engine: buildah 1\.39\.\d+/);
      expect(log).toContain(`done: ${cluster.registryHost}/org/app:1.0@${pushed.digest}`);
      // the token reached the Git server, and no secret reached the log
      expect(cluster.git!.requests.slice(before).some((q) => q.authorized)).toBe(true);
      expect(log).not.toContain(GIT_TOKEN);
      expect(log).not.toContain(cluster.registry.auth!.password);
      // BUILDAH_FORMAT=docker in the pod: HEALTHCHECK kept
      expect(pushed.contentType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    } finally {
      await pod.delete();
    }
  });
});

async function runToEnd(object: unknown, timeoutMs = 10 * 60_000) {
  const pod: RunningPod = await cluster.kubelet.runPod(object);
  try {
    const result = await pod.waitForCompletion(timeoutMs);
    return { pod, result };
  } finally {
    await pod.delete();
  }
}

describe('the kimia image, run as a pod', () => {
  it('holds kimia, Buildah 1.39, Node.js 20 and the build user, and no compiler, test file or dev dependency', async () => {
    const script = [
      'echo "id=$(id -u):$(id -g) home=$HOME user=$USER isolation=$BUILDAH_ISOLATION format=${BUILDAH_FORMAT-unset}"',
      'kimia version', 'node --version', 'cat /etc/subuid /etc/subgid', 'getcap /usr/bin/newuidmap /usr/bin/newgidmap',
      'stat -c "%a %U %n" /usr/bin/newuidmap /usr/bin/newgidmap', 'cat /home/kimia/.config/containers/storage.conf',
      'echo ---files', 'find /opt/kimia -type f | sort',
      'echo ---tools', 'for n in gcc cc c++ g++ clang tcc ld as make tsc esbuild vitest eslint npm npx git buildah; do command -v $n || echo "no $n"; done',
      'echo ---forbidden',
      // Debian's own nodejs packages keep their modules (and their @types) in /usr/share/nodejs: not ours
      'find / -xdev -path /usr/share/nodejs -prune -o \\( -name "*.test.*" -o -name "*.spec.*" -o -name typescript -o -name vitest -o -name esbuild -o -name eslint -o -name "@types" -o -name "@vitest" -o -name "tsconfig*.json" \\) -print 2>/dev/null',
      'find /opt/kimia \\( -name "*.ts" -o -name "*.map" -o -name node_modules \\) -print',
      'echo ---end',
    ].join('\n');
    const { result } = await runToEnd({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kimia-image-contents' },
      spec: {
        restartPolicy: 'Never', securityContext: { runAsNonRoot: true },
        containers: [{ name: 'look', image: kimiaImage, command: ['sh', '-c', script] }],
      },
    });
    const c = result.containers.look!;
    expect(c.exitCode, c.stderr).toBe(0);
    const out = c.stdout;
    expect(out).toContain('id=1000:1000 home=/home/kimia user=kimia isolation=chroot format=unset');
    expect(out).toMatch(/^engine: buildah 1\.39\.\d+ \(\/usr\/bin\/buildah\)$/m);
    expect(out).toMatch(/^v20\.\d+\.\d+$/m);
    expect(out).toMatch(/^kimia:100000:65536$/m);
    expect(out).toMatch(/^\/usr\/bin\/newuidmap cap_setuid=ep$/m);
    expect(out).toMatch(/^\/usr\/bin\/newgidmap cap_setgid=ep$/m);
    expect(out).toMatch(/^755 root \/usr\/bin\/newuidmap$/m);
    const files = out.split('---files\n')[1]!.split('\n---tools')[0]!.split('\n');
    expect(files).toContain('/opt/kimia/bin/kimia');
    expect(files).toContain('/opt/kimia/package.json');
    expect(files).toContain('/opt/kimia/dist/kimia/main.js');
    expect(files.filter((f) => !/^\/opt\/kimia\/(bin\/kimia|package\.json|dist\/kimia\/[\w.-]+\.js)$/.test(f))).toEqual([]);
    const tools = out.split('---tools\n')[1]!.split('\n---forbidden')[0]!.split('\n');
    for (const t of ['gcc', 'cc', 'c++', 'g++', 'clang', 'tcc', 'ld', 'as', 'make', 'tsc', 'esbuild', 'vitest', 'eslint', 'npm', 'npx']) expect(tools).toContain(`no ${t}`);
    expect(tools).toContain('/usr/bin/git');
    expect(out.split('---forbidden\n')[1]!.split('---end')[0]!.trim()).toBe('');
  });
});

/** The example's cache volume as a PersistentVolumeClaim: a cache that outlives the pod (see the fsGroup test). */
function withCacheClaim(pod: Pod): Pod {
  pod.spec.volumes = pod.spec.volumes!.map((v) => (v.name === 'build-cache' ? { name: 'build-cache', persistentVolumeClaim: { claimName: `kimia-cache-${Math.random().toString(36).slice(2, 8)}` } } : v));
  return pod;
}

describe("the guide's misconfigurations, made in examples/kimia-build-pod.yaml, fail with the guide's error and kimia's fix", () => {
  const buildPod = () => withRegistryCa(withArgs(example<Pod>('Pod', 'kimia-build'), { '--context': repoUrl, '--destination': `${cluster.registryHost}/org/misconfig:1` }));
  const kimiaOf = (p: Pod) => p.spec.containers[0]!;

  async function expectGuideFailure(pod: Pod, message: string, fix: string[]) {
    const { result } = await runToEnd(pod);
    const k = result.containers.kimia!;
    expect(result.phase).toBe('Failed');
    expect(k.exitCode, `${k.stdout}\n${k.stderr}`).toBe(6);
    expect(k.stderr).toContain(`error: ${message}`);
    for (const f of fix) expect(k.stderr).toContain(f);
    // found before any work: no clone, no pull
    expect(k.stdout + k.stderr).not.toMatch(/fetching Git context|pulling /);
    return k;
  }

  it('no fsGroup, with the cache on a PersistentVolumeClaim: "failed to write to cache directory", fix fsGroup', async () => {
    const pod = withCacheClaim(buildPod());
    delete pod.spec.securityContext!.fsGroup;
    const k = await expectGuideFailure(pod, 'failed to write to cache directory: permission denied', ['fsGroup: 1000']);
    expect(k.stderr).toContain('not writable by UID 1000');
  });

  it('the same pod with fsGroup builds: the kubelet gives the claim to group 1000', async () => {
    const { result } = await runToEnd(withCacheClaim(buildPod()));
    expect(result.containers.kimia!.exitCode, result.containers.kimia!.stderr).toBe(0);
  });

  it('no fsGroup with the example\'s emptyDir cache still builds: the kubelet makes every emptyDir world-writable (0777)', async () => {
    const pod = buildPod();
    delete pod.spec.securityContext!.fsGroup;
    const { result } = await runToEnd(pod);
    expect(result.containers.kimia!.exitCode, result.containers.kimia!.stderr).toBe(0);
  });

  it('no SETUID/SETGID: "permission denied while trying to connect", fix the capabilities', async () => {
    const pod = buildPod();
    kimiaOf(pod).securityContext!.capabilities = { drop: ['ALL'] };
    const k = await expectGuideFailure(pod, 'permission denied while trying to connect', ['add: [SETUID, SETGID]']);
    expect(k.stderr).toContain('SETUID and SETGID dropped from the bounding set');
  });

  it('allowPrivilegeEscalation: false: "permission denied while trying to connect", fix allowPrivilegeEscalation: true', async () => {
    const pod = buildPod();
    kimiaOf(pod).securityContext!.allowPrivilegeEscalation = false;
    const k = await expectGuideFailure(pod, 'permission denied while trying to connect', ['allowPrivilegeEscalation: true']);
    expect(k.stderr).toContain('NoNewPrivs');
  });

  it('the secret at /kaniko/.docker: kimia names the path it reads', async () => {
    const pod = buildPod();
    kimiaOf(pod).volumeMounts!.find((m) => m.name === 'docker-config')!.mountPath = '/kaniko/.docker';
    await expectGuideFailure(pod, 'docker config found at /kaniko/.docker (the Kaniko path), but kimia reads /home/kimia/.docker', ['mountPath: /home/kimia/.docker']);
  });

  it('too little ephemeral storage (simulated: the emptyDir is a tmpfs of the limit): "no space left on device", fix the limit', async () => {
    const pod = buildPod();
    kimiaOf(pod).resources!.limits!['ephemeral-storage'] = '256Mi';
    const k = await expectGuideFailure(pod, 'error building: no space left on device', ['ephemeral-storage: "20Gi"']);
    expect(k.stderr).toMatch(/Insufficient ephemeral storage: only 2\d\d(\.\d)? MiB free/);
  });
});

describe('deploy/kubernetes/tekton/kimia-task.yaml', () => {
  it("runs as Kaniko's catalog task does: IMAGE_DIGEST is the registry's digest, IMAGE_URL the image", async () => {
    const [task] = (await kustomizeBuild(projectPath('deploy', 'kubernetes'), {
      setImages: [{ name: `${PUBLISHED_PREFIX}/kimia`, newName: `${cluster.registryHost}/${IMAGE_PREFIX}/kimia`, newTag: kimiaImage.split(':').pop()! }],
    })).filter((o) => (o as { kind: string }).kind === 'Task') as Task[];
    const t = validateObject('Task', task);
    expect(t.spec.params!.find((p) => p.name === 'BUILDER_IMAGE')!.default).toBe(kimiaImage);
    // the test registry's CA, as for the pod
    t.spec.volumes = [{ name: 'test-registry-ca', secret: { secretName: 'test-registry-ca' } }];
    t.spec.steps[0]!.volumeMounts = [{ name: 'test-registry-ca', mountPath: `/home/kimia/.config/containers/certs.d/${cluster.registryHost}`, readOnly: true }];
    const image = `${cluster.registryHost}/org/tekton-app:1`;
    const run: TaskRun = validateObject('TaskRun', {
      apiVersion: 'tekton.dev/v1', kind: 'TaskRun', metadata: { name: 'kimia-run-1' },
      spec: {
        taskRef: { name: 'kimia' },
        params: [{ name: 'IMAGE', value: image }, { name: 'CONTEXT', value: repoUrl }, { name: 'EXTRA_ARGS', value: ['--git-token-file=/secrets/git-token'] }],
        workspaces: [
          { name: 'dockerconfig', secret: { secretName: 'registry-credentials', items: [{ key: '.dockerconfigjson', path: 'config.json' }] } },
          { name: 'git-credentials', secret: { secretName: 'github-token' } },
        ],
        podTemplate: { securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 } },
      },
    });
    const pod = await cluster.kubelet.runPod(taskRunPod(t, run));
    try {
      const result = await pod.waitForCompletion(10 * 60_000);
      const build = result.containers['step-build-and-push']!;
      expect(build.exitCode, `${build.stdout}\n${build.stderr}`).toBe(0);
      expect(result.phase).toBe('Succeeded');
      const digest = (await cluster.registry.manifest('org/tekton-app', '1')).digest;
      expect((await pod.readVolumeFile(RESULTS_VOLUME, 'IMAGE_DIGEST')).trim()).toBe(digest);
      expect(await pod.readVolumeFile(RESULTS_VOLUME, 'IMAGE_URL')).toBe(image);
    } finally {
      await pod.delete();
    }
  });
});

describe('examples/kimia-job.yaml', () => {
  it('a plain Job builds and pushes', async () => {
    const job = example<Job>('Job', 'kimia-build-job');
    const spec = job.spec.template.spec;
    const c = spec.containers[0]!;
    c.args = c.args!.map((a) => (a.startsWith('--context=') ? `--context=${repoUrl}` : a.startsWith('--destination=') ? `--destination=${cluster.registryHost}/org/job-app:1` : a));
    spec.volumes!.push({ name: 'test-registry-ca', secret: { secretName: 'test-registry-ca' } });
    c.volumeMounts!.push({ name: 'test-registry-ca', mountPath: `/home/kimia/.config/containers/certs.d/${cluster.registryHost}`, readOnly: true });
    const { result } = await runToEnd(job);
    const k = result.containers.kimia!;
    expect(k.exitCode, k.stderr).toBe(0);
    const digest = (await cluster.registry.manifest('org/job-app', '1')).digest;
    expect(`${k.stdout}\n${k.stderr}`).toContain(`@${digest}`);
  });
});

describe('afterwards', () => {
  it('the cluster leaves nothing behind: no folder, mount, process or network namespace', async () => {
    await cluster.close();
    expect(await clusterLeftovers(cluster)).toEqual([]);
  });
});
