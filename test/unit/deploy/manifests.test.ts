import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../../../src/core/paths.js';
import { readManifests, extractPodSpecs, getIn } from '../../../src/core/k8s/index.js';
import { lintRuncvm } from '../../../src/runcvm/lint/rules.js';
import { kimiaTargets, lintKimia } from '../../../src/kimia/lint/rules.js';

const DEPLOY = projectPath('deploy', 'kubernetes');
const files = [
  ...readdirSync(DEPLOY).filter((f) => f.endsWith('.yaml')).map((f) => join(DEPLOY, f)),
  ...readdirSync(join(DEPLOY, 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => join(DEPLOY, 'examples', f)),
];
const load = (file: string) => {
  const parsed = readManifests(readFileSync(file, 'utf8'));
  expect(parsed.errors, file).toEqual([]);
  return { file, objects: parsed.objects };
};

describe('shipped manifests', () => {
  it('the RuntimeClass is named runcvm, handler runcvm, with pod overhead', () => {
    const [rc] = load(join(DEPLOY, 'runtimeclass.yaml')).objects;
    expect(rc).toMatchObject({ kind: 'RuntimeClass', name: 'runcvm', value: { handler: 'runcvm', overhead: { podFixed: { memory: '160Mi', cpu: '250m' } } } });
  });

  it('the node installer is a privileged DaemonSet whose init container runs runcvm node-install on the node root', () => {
    const ds = load(join(DEPLOY, 'node-installer-daemonset.yaml')).objects[0]!;
    expect(ds.kind).toBe('DaemonSet');
    // the engine restart goes through the node's PID 1 (node-install decides containerd or k3s: test/unit/runcvm/node-install.test.ts)
    expect(getIn(ds.value, ['spec', 'template', 'spec', 'hostPID'])).toBe(true);
    const [pod] = extractPodSpecs([ds]);
    const init = pod!.initContainers[0]!;
    expect(init.image).toMatch(/\/runcvm-installer:/);
    expect(getIn(init.value, ['securityContext', 'privileged'])).toBe(true);
    expect(init.command).toEqual(['/opt/runcvm-dist/bin/runcvm', 'node-install', '--host-root', '/host']);
    const mounts = (getIn(init.value, ['volumeMounts']) as { mountPath: string }[]).map((m) => m.mountPath).sort();
    expect(mounts).toEqual(['/host/etc/containerd', '/host/opt', '/host/run', '/host/var/lib/rancher/k3s/agent/etc/containerd']);
  });

  it('every manifest passes runcvm lint (with the RuntimeClass) and kimia lint with no error or warning', () => {
    const all = files.map(load);
    expect(all.length).toBeGreaterThanOrEqual(6);
    expect(lintRuncvm(all)).toEqual([]);
    // the restricted pod is no mistake under RuntimeClass runcvm-userns: one info says why (test/unit/kimia/lint)
    expect(lintKimia(kimiaTargets(all)).map((f) => `${f.level} ${f.rule}`)).toEqual(['info kimia/restricted-in-vm']);
    // and each example is checked by the rules that apply to it (the installer is no kimia container)
    expect(kimiaTargets(all).map((t) => t.pod.name).sort()).toEqual(['kimia-build', 'kimia-build-job', 'kimia-build-restricted', 'kimia-nightly']);
    expect(extractPodSpecs(all.flatMap((f) => f.objects)).filter((p) => p.runtimeClassName?.value === 'runcvm').map((p) => p.name).sort()).toEqual(['runcvm-hello', 'runcvm-web']);
  });

  it('each runcvm example alone only warns that the RuntimeClass must exist (exit 0)', () => {
    for (const f of files.filter((x) => x.includes('examples/runcvm'))) {
      const findings = lintRuncvm([load(f)]);
      expect(findings.map((x) => x.rule), f).toEqual(['runcvm/runtimeclass-missing']);
    }
  });
});
