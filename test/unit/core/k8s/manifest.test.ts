import { describe, expect, it } from 'vitest';
import { extractPodSpecs, readManifests, formatFinding, lintExitCode, formatJson } from '../../../../src/core/k8s/index.js';
import { fixture, lineWith } from './fixture.js';

describe('readManifests', () => {
  const text = fixture('multi-doc.yaml');
  const parsed = readManifests(text);

  it('yields every non-empty document with kind and name', () => {
    expect(parsed.errors).toEqual([]);
    expect(parsed.objects.map((o) => [o.kind, o.name, o.index])).toEqual([
      ['Pod', 'web', 0],
      ['Deployment', 'dep', 1],
      ['CronJob', 'cron', 2],
      ['RuntimeClass', 'runcvm', 3],
    ]);
  });

  it('answers the line of any path, key lines for maps and item lines for sequences', () => {
    const pod = parsed.objects[0]!;
    expect(pod.line).toBe(lineWith(text, 'apiVersion: v1'));
    expect(pod.lineOf(['spec', 'securityContext', 'fsGroup'])).toBe(lineWith(text, 'fsGroup: 1000'));
    expect(pod.lineOf(['spec', 'containers', 0])).toBe(lineWith(text, '- name: app'));
    expect(pod.lineOf(['spec', 'containers', 0, 'env', 0, 'value'])).toBe(lineWith(text, 'value: "1"'));
    expect(pod.lineOf(['spec', 'initContainers', 0, 'command', 2])).toBe(lineWith(text, 'command: ["sh"'));
    // a missing leaf answers its nearest existing parent
    expect(pod.lineOf(['spec', 'containers', 0, 'resources', 'limits'])).toBe(lineWith(text, '- name: app'));
    const cron = parsed.objects[2]!;
    expect(cron.lineOf(['spec', 'jobTemplate', 'spec', 'template', 'spec', 'containers', 0, 'image'])).toBe(lineWith(text, 'image: busybox', 3));
  });

  it('reports invalid YAML with its line and yields nothing from that document', () => {
    const bad = readManifests(fixture('invalid.yaml'));
    expect(bad.errors.length).toBeGreaterThan(0);
    expect(bad.errors[0]!.line).toBeGreaterThanOrEqual(7);
    expect(bad.objects).toEqual([]);
  });

  it('treats an empty file as no objects', () => {
    expect(readManifests('')).toEqual({ objects: [], errors: [] });
    expect(readManifests('---\n---\n').objects).toEqual([]);
  });
});

describe('extractPodSpecs', () => {
  const text = fixture('multi-doc.yaml');
  const pods = extractPodSpecs(readManifests(text).objects);

  it('finds the pod template of every workload kind and skips other kinds', () => {
    expect(pods.map((p) => [p.kind, p.name, p.path.join('.')])).toEqual([
      ['Pod', 'web', 'spec'],
      ['Deployment', 'dep', 'spec.template.spec'],
      ['CronJob', 'cron', 'spec.jobTemplate.spec.template.spec'],
    ]);
  });

  it('gives containers, init containers, env, mounts, volumes and security context with lines', () => {
    const web = pods[0]!;
    expect(web.securityContext?.value).toEqual({ fsGroup: 1000 });
    expect(web.securityContext?.line).toBe(lineWith(text, 'securityContext:'));
    expect(web.initContainers.map((c) => [c.name, c.init, c.command])).toEqual([['init', true, ['sh', '-c', 'true']]]);
    const app = web.containers[0]!;
    expect(app.line).toBe(lineWith(text, '- name: app'));
    expect(app.env).toEqual([{ name: 'A', value: '1', path: ['spec', 'containers', 0, 'env', 0], line: lineWith(text, '- name: A') }]);
    expect(app.volumeMounts[0]).toMatchObject({ name: 'data', mountPath: '/data', line: lineWith(text, '- name: data') });
    expect(web.volumes[0]).toMatchObject({ name: 'data', line: lineWith(text, '- name: data', 2) });
    expect(pods[2]!.containers[0]!.line).toBe(lineWith(text, '- name: c'));
  });

  it('ignores documents whose pod spec is missing', () => {
    const { objects } = readManifests('kind: Deployment\nmetadata: {name: x}\n');
    expect(extractPodSpecs(objects)).toEqual([]);
  });
});

describe('findings', () => {
  it('renders FILE:LINE: level rule: message then the fix, and exits 1 only on errors', () => {
    const f = { file: 'p.yaml', line: 3, level: 'warn' as const, rule: 'x/y', message: 'msg', fix: 'a\nb' };
    expect(formatFinding(f)).toBe('p.yaml:3: warn x/y: msg\n  fix: a\n       b');
    expect(lintExitCode([f])).toBe(0);
    expect(lintExitCode([f, { ...f, level: 'error' }])).toBe(1);
    expect(JSON.parse(formatJson([f])).summary).toEqual({ errors: 0, warnings: 1, infos: 0 });
  });
});
