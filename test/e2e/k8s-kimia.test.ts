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
import { join } from 'node:path';
import { projectPath } from '../../src/core/paths.js';
import { pushBusyboxImage } from '../harness/images.js';
import { keepEvidence } from '../harness/evidence.js';
import { startCluster, type Cluster } from '../harness/k8s/cluster.js';
import { buildProjectImages, IMAGE_PREFIX, PUBLISHED_PREFIX, type ProjectImages } from '../harness/k8s/project-images.js';
import { kustomizeBuild } from '../harness/k8s/kustomize.js';
import type { Pod, Secret } from '../harness/k8s/objects.js';

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

/** The user's own values in the example's args: --context and --destination. */
function withArgs(pod: Pod, values: Record<string, string>): Pod {
  const c = pod.spec.containers[0]!;
  c.args = (c.args ?? []).map((a) => {
    const flag = a.split('=')[0]!;
    return flag in values ? `${flag}=${values[flag]}` : a;
  });
  return pod;
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

void join;
