/**
 * deploy/kubernetes as users apply it: every object is valid (the test kubelet's schemas, which refuse fields it does
 * not model), every image of ours is named through the one place (deploy/kubernetes/images), and our own linters
 * find no error. Plus the pure pieces of the test kubelet: kustomize's images transformer and the kubelet's CRI
 * conversions.
 */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { projectPath } from '../../../src/core/paths.js';
import { kustomizeBuild, overrideImage, splitImage } from '../../harness/k8s/kustomize.js';
import { validateObject, type KnownKind, type Pod } from '../../harness/k8s/objects.js';
import { containerConfig, expandVars, linuxResources, parseQuantity, podSandboxConfig, qosClass, runAsNonRootViolation } from '../../harness/k8s/convert.js';
import { taskRunPod } from '../../harness/k8s/tekton.js';
import { restrictedViolations } from '../../harness/k8s/pss.js';

const MODELLED = new Set(['Pod', 'Job', 'DaemonSet', 'RuntimeClass', 'Task']);

describe('deploy/kubernetes', () => {
  it('builds with kustomize into valid objects whose images of ours all come from deploy/kubernetes/images', async () => {
    const objects = [
      ...(await kustomizeBuild(projectPath('deploy', 'kubernetes'), { setImages: [{ name: 'registry.example.com/kimia-runcvm/kimia', newName: 'reg.test/p/kimia', newTag: '9.9.9' }, { name: 'registry.example.com/kimia-runcvm/runcvm-installer', newName: 'reg.test/p/runcvm-installer', newTag: '9.9.9' }] })),
      ...(await kustomizeBuild(projectPath('deploy', 'kubernetes', 'examples'), { setImages: [{ name: 'registry.example.com/kimia-runcvm/kimia', newName: 'reg.test/p/kimia', newTag: '9.9.9' }] })),
    ];
    const kinds = objects.map((o) => (o as { kind: string }).kind);
    expect(kinds).toEqual(expect.arrayContaining(['RuntimeClass', 'DaemonSet', 'Task', 'Pod', 'Job', 'CronJob']));
    for (const o of objects) {
      const kind = (o as { kind: string }).kind;
      if (MODELLED.has(kind)) validateObject(kind as KnownKind, o, `${kind} ${(o as { metadata: { name: string } }).metadata.name}`);
    }
    const text = JSON.stringify(objects);
    expect(text).not.toContain('registry.example.com/kimia-runcvm');
    expect(text).toContain('reg.test/p/kimia:9.9.9');
    expect(text).toContain('reg.test/p/runcvm-installer:9.9.9');
    expect(text).not.toContain('ghcr.io/rapidfort');
    // the Task's builder image is a parameter default: reached through images/kustomizeconfig.yaml
    const task = objects.find((o) => (o as { kind: string }).kind === 'Task') as { spec: { params: { name: string; default?: unknown }[] } };
    expect(task.spec.params.find((p) => p.name === 'BUILDER_IMAGE')!.default).toBe('reg.test/p/kimia:9.9.9');
  });

  it('the images component is the one place: every manifest names our images by the published placeholder', async () => {
    const component = await readFile(projectPath('deploy', 'kubernetes', 'images', 'kustomization.yaml'), 'utf8');
    expect(component).toContain('name: registry.example.com/kimia-runcvm/kimia');
    expect(component).toContain('name: registry.example.com/kimia-runcvm/runcvm-installer');
  });
});

describe('kustomize images transformer', () => {
  it('splits and overrides names, tags and digests (a registry port is not a tag)', () => {
    expect(splitImage('reg:5000/a/b:1.0@sha256:x')).toEqual({ name: 'reg:5000/a/b', tag: '1.0', digest: 'sha256:x' });
    expect(splitImage('reg:5000/a/b')).toEqual({ name: 'reg:5000/a/b' });
    expect(overrideImage('r.io/k:0.1.0', [{ name: 'r.io/k', newName: 'm.io/x/k', newTag: '2' }])).toBe('m.io/x/k:2');
    expect(overrideImage('r.io/k:0.1.0', [{ name: 'r.io/k', digest: 'sha256:d' }])).toBe('r.io/k@sha256:d');
    expect(overrideImage('other:1', [{ name: 'r.io/k', newTag: '2' }])).toBe('other:1');
  });
});

const pod: Pod = {
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kimia-build' },
  spec: {
    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, supplementalGroups: [2000] },
    containers: [{
      name: 'kimia', image: 'k', args: ['--dest=$(DEST)', '$$(DEST)'], env: [{ name: 'DEST', value: 'r/app' }],
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['SETUID', 'SETGID'] }, seccompProfile: { type: 'RuntimeDefault' } },
      resources: { requests: { memory: '2Gi', cpu: '1' }, limits: { memory: '8Gi', cpu: '4' } },
    }],
  },
};
const id = { name: 'kimia-build', namespace: 'default', uid: 'u1', labels: {} };

describe("the kubelet's CRI requests", () => {
  it('sandbox: namespaces, user, fsGroup as a supplemental group, seccomp unconfined unless asked', () => {
    const s = podSandboxConfig(id, pod.spec, { logDirectory: '/l', dns: { servers: [], searches: [], options: [] }, nodeHostname: 'n' });
    expect(s.linux!.security_context).toMatchObject({
      namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' }, run_as_user: { value: '1000' }, run_as_group: { value: '1000' },
      supplemental_groups: ['2000', '1000'], seccomp: { profile_type: 'Unconfined' }, privileged: false,
    });
    expect(s.labels).toMatchObject({ 'io.kubernetes.pod.name': 'kimia-build', 'io.kubernetes.pod.uid': 'u1' });
  });

  it('container: capabilities as written, no_new_privs from allowPrivilegeEscalation, seccomp, resources, $(VAR) expansion', () => {
    const c = containerConfig(id, pod.spec, pod.spec.containers[0]!, { imageRef: 'sha256:i', env: [{ name: 'DEST', value: 'r/app' }], mounts: [], nodeMemoryBytes: 16 * 2 ** 30 });
    expect(c.args).toEqual(['--dest=r/app', '$(DEST)']);
    expect(c.image).toEqual({ image: 'sha256:i' });
    expect(c.linux!.security_context).toMatchObject({
      capabilities: { add_capabilities: ['SETUID', 'SETGID'], drop_capabilities: ['ALL'] }, no_new_privs: true,
      run_as_user: { value: '1000' }, supplemental_groups: ['2000', '1000'], seccomp: { profile_type: 'RuntimeDefault' },
    });
    expect(c.linux!.security_context!.masked_paths).toContain('/proc/kcore');
    expect(c.linux!.resources).toEqual({ cpu_shares: '1024', cpu_period: '100000', cpu_quota: '400000', memory_limit_in_bytes: String(8 * 2 ** 30), oom_score_adj: '875' });
    expect(qosClass(pod.spec)).toBe('Burstable');
  });

  it('quantities, Guaranteed QoS, and allowPrivilegeEscalation unset → no_new_privs off', () => {
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('20Gi')).toBe(20 * 2 ** 30);
    expect(() => parseQuantity('lots')).toThrow(/not a Kubernetes quantity/);
    const g = { name: 'g', image: 'x', resources: { limits: { cpu: '1', memory: '1Gi' } } };
    expect(linuxResources(g, 2 ** 34, 'Guaranteed').oom_score_adj).toBe('-997');
    const c = containerConfig(id, { containers: [g] }, g, { imageRef: 'x', env: [], mounts: [], nodeMemoryBytes: 2 ** 34 });
    expect(c.linux!.security_context!.no_new_privs).toBe(false);
    expect(expandVars('$(A)-$(B)', new Map([['A', '1']]))).toBe('1-$(B)');
  });

  it('runAsNonRoot: the image user decides when the pod names none', () => {
    const spec = { securityContext: { runAsNonRoot: true }, containers: [{ name: 'c', image: 'x' }] };
    expect(runAsNonRootViolation(id, spec, spec.containers[0]!, { uid: 1000 })).toBeUndefined();
    expect(runAsNonRootViolation(id, spec, spec.containers[0]!, { uid: 0 })).toMatch(/^container has runAsNonRoot and image will run as root/);
    expect(runAsNonRootViolation(id, spec, spec.containers[0]!, { username: 'kimia' })).toMatch(/non-numeric user \(kimia\)/);
  });
});

describe('Tekton TaskRun → pod', () => {
  it('substitutes params (arrays as whole arguments), results paths and workspaces; steps keep their order', async () => {
    const [task] = (await kustomizeBuild(projectPath('deploy', 'kubernetes'))).filter((o) => (o as { kind: string }).kind === 'Task');
    const t = validateObject('Task', task);
    const p = taskRunPod(t, validateObject('TaskRun', {
      apiVersion: 'tekton.dev/v1', kind: 'TaskRun', metadata: { name: 'r1' },
      spec: { taskRef: { name: 'kimia' }, params: [{ name: 'IMAGE', value: 'r/app:1' }, { name: 'EXTRA_ARGS', value: ['--cache', '--build-arg=A=1'] }],
        workspaces: [{ name: 'dockerconfig', secret: { secretName: 'regcred' } }] },
    }));
    const build = p.spec.initContainers![0]!;
    expect(build.name).toBe('step-build-and-push');
    expect(build.args).toEqual(['--cache', '--build-arg=A=1', '--dockerfile=./Dockerfile', '--context=./', '--destination=r/app:1', '--digest-file=/tekton/results/IMAGE_DIGEST']);
    expect(build.workingDir).toBeUndefined(); // the optional source workspace is not bound
    expect(build.volumeMounts).toEqual(expect.arrayContaining([{ name: 'ws-dockerconfig', mountPath: '/home/kimia/.docker' }]));
    expect(p.spec.containers[0]!.args).toEqual(['r/app:1', '/tekton/results/IMAGE_URL']);
  });
});

describe('the Pod Security Standard "restricted" (the API server\'s PodSecurity admission, as documented)', () => {
  it('examples/kimia-restricted-pod.yaml passes it; the guide\'s kimia-build-pod does not, for the three reasons the guide needs', async () => {
    const examples = await kustomizeBuild(projectPath('deploy', 'kubernetes', 'examples'));
    const byName = (n: string) => validateObject('Pod', examples.find((o) => (o as { metadata: { name: string } }).metadata.name === n));
    const restricted = byName('kimia-build-restricted');
    expect(restricted.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    expect(restrictedViolations(restricted.spec)).toEqual([]);
    expect(restrictedViolations(byName('kimia-build').spec).map((v) => v.split(' (')[0])).toEqual(['allowPrivilegeEscalation != false', 'unrestricted capabilities', 'seccompProfile']);
  });

  it('every control of the modelled fields: host namespaces, privileged, hostPath, root, Unconfined, extra capabilities', () => {
    const ok: Pod['spec'] = {
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'c', image: 'x', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } } }],
      volumes: [{ name: 's', secret: { secretName: 's' } }, { name: 'e', emptyDir: {} }, { name: 'p', persistentVolumeClaim: { claimName: 'p' } }],
    };
    expect(restrictedViolations(ok)).toEqual([]);
    const bad: Pod['spec'] = {
      ...ok, hostNetwork: true,
      securityContext: { runAsUser: 0, seccompProfile: { type: 'Unconfined' } },
      containers: [{ name: 'c', image: 'x', securityContext: { privileged: true, capabilities: { drop: ['ALL'], add: ['SYS_ADMIN'] } } }],
      volumes: [{ name: 'h', hostPath: { path: '/' } }],
    };
    expect(restrictedViolations(bad).map((v) => v.split(' (')[0])).toEqual([
      'host namespaces', 'privileged', 'non-default capabilities', 'hostPath volumes', 'seccompProfile', 'restricted volume types',
      'allowPrivilegeEscalation != false', 'unrestricted capabilities', 'runAsNonRoot != true', 'runAsUser=0', 'seccompProfile',
    ]);
  });
});
