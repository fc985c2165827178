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

  it('the node installer is a privileged DaemonSet that runs runcvm install --containerd or --k3s', () => {
    const ds = load(join(DEPLOY, 'node-installer-daemonset.yaml')).objects[0]!;
    expect(ds.kind).toBe('DaemonSet');
    const [pod] = extractPodSpecs([ds]);
    const init = pod!.initContainers[0]!;
    expect(getIn(init.value, ['securityContext', 'privileged'])).toBe(true);
    const script = init.command.join(' ');
    expect(script).toContain('runcvm install --k3s');
    expect(script).toContain('runcvm install --containerd');
    expect(script).toContain('systemctl restart');
  });

  it('every manifest passes runcvm lint (with the RuntimeClass) and kimia lint with no finding at all', () => {
    const all = files.map(load);
    expect(all.length).toBeGreaterThanOrEqual(6);
    expect(lintRuncvm(all)).toEqual([]);
    expect(lintKimia(kimiaTargets(all))).toEqual([]);
    // and each example is checked by the rules that apply to it
    expect(kimiaTargets(all).map((t) => t.pod.name).sort()).toEqual(['kimia-build', 'kimia-nightly']);
    expect(extractPodSpecs(all.flatMap((f) => f.objects)).filter((p) => p.runtimeClassName?.value === 'runcvm').map((p) => p.name).sort()).toEqual(['runcvm-hello', 'runcvm-web']);
  });

  it('each runcvm example alone only warns that the RuntimeClass must exist (exit 0)', () => {
    for (const f of files.filter((x) => x.includes('examples/runcvm'))) {
      const findings = lintRuncvm([load(f)]);
      expect(findings.map((x) => x.rule), f).toEqual(['runcvm/runtimeclass-missing']);
    }
  });
});
