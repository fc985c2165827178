import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { projectPath } from '../../../../src/core/paths.js';
import { InstallRefused, containerdMajor, planContainerd, planDocker, planK3sTemplate } from '../../../../src/runcvm/install/plan.js';
import { findRuntimeEntries, hasK3sBase, headerKey, parseTomlText, stripGoTemplate } from '../../../../src/runcvm/install/runtime-config.js';

const fx = (n: string) => readFileSync(projectPath('test', 'fixtures', 'runcvm', 'install', n), 'utf8');
const BIN = '/opt/runcvm/bin/runcvm-runtime';

function toml(text: string): Record<string, unknown> {
  const p = parseTomlText(text);
  if (!p.ok) throw new Error(`line ${p.line}: ${p.message}`);
  return p.value;
}

describe('planContainerd', () => {
  it('containerd 1.x (version = 2): adds the grpc.v1.cri runtime and keeps the rest', () => {
    const before = fx('containerd1.toml');
    const plan = planContainerd(before, { binaryName: BIN });
    expect(plan.changed).toBe(true);
    expect(plan.section).toBe('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]');
    expect(plan.text.startsWith(before)).toBe(true);
    expect(plan.text).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]\nruntime_type = "io.containerd.runc.v2"\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm.options]\nBinaryName = "/opt/runcvm/bin/runcvm-runtime"\n');
    const parsed = toml(plan.text);
    expect(findRuntimeEntries(parsed)).toEqual([{ plugin: 'io.containerd.grpc.v1.cri', runtimeType: 'io.containerd.runc.v2', binaryName: BIN }]);
    expect(parsed.root).toBe('/var/lib/containerd');
    expect(plan.text).toContain('SystemdCgroup = true');
    expect(plan.restart).toBe('sudo systemctl restart containerd');
  });

  it('containerd 2.x (version = 3): uses io.containerd.cri.v1.runtime', () => {
    const plan = planContainerd(fx('containerd2.toml'), { binaryName: BIN });
    expect(plan.section).toBe('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm]');
    expect(findRuntimeEntries(toml(plan.text))[0]).toMatchObject({ plugin: 'io.containerd.cri.v1.runtime', binaryName: BIN });
    expect(toml(plan.text)).toMatchObject({ plugins: { 'io.containerd.cri.v1.runtime': { containerd: { default_runtime_name: 'runc' } } } });
  });

  it('keeps the default runtime: adds runc when the config names no runtimes (containerd would drop its built-in map)', () => {
    const plan = planContainerd('version = 2\n', { binaryName: BIN });
    const runtimes = (toml(plan.text) as { plugins: Record<string, { containerd: { runtimes: Record<string, { runtime_type: string }> } }> }).plugins['io.containerd.grpc.v1.cri']!.containerd.runtimes;
    expect(Object.keys(runtimes).sort()).toEqual(['runc', 'runcvm']);
    expect(runtimes.runc!.runtime_type).toBe('io.containerd.runc.v2');
    expect(plan.actions.join('\n')).toContain('default runtime entry "runc"');
    // a config that already has runc gets only runcvm
    expect(planContainerd(fx('containerd1.toml'), { binaryName: BIN }).text.match(/runtimes\.runc\]/g)).toHaveLength(1);
  });

  it('an empty or missing config takes its version from `containerd --version`', () => {
    const v1 = planContainerd('', { binaryName: BIN, containerdVersion: 'containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3' });
    expect(v1.text.startsWith('version = 2\n')).toBe(true);
    expect(v1.configVersion).toBe(2);
    const v2 = planContainerd('', { binaryName: BIN, containerdVersion: 'containerd containerd.io v2.0.4 1a43cb6a' });
    expect(v2.text.startsWith('version = 3\n')).toBe(true);
    expect(v2.section).toContain('io.containerd.cri.v1.runtime');
  });

  it('is idempotent: a second install changes nothing', () => {
    for (const start of [fx('containerd1.toml'), fx('containerd2.toml'), '']) {
      const first = planContainerd(start, { binaryName: BIN, containerdVersion: '1.6.20' });
      const second = planContainerd(first.text, { binaryName: BIN });
      expect(second.changed).toBe(false);
      expect(second.text).toBe(first.text);
    }
  });

  it('replaces a wrong entry (runtime_type = "runcvm", old BinaryName) instead of duplicating it', () => {
    const plan = planContainerd(fx('wrong-runtime-type.toml'), { binaryName: BIN });
    expect(plan.actions[0]).toContain('replaced');
    expect(plan.text.match(/runtimes\.runcvm\]/g)).toHaveLength(1);
    expect(plan.text).not.toContain('runtime_type = "runcvm"');
    expect(toml(plan.text)).toMatchObject({ plugins: { 'io.containerd.grpc.v1.cri': { cni: { bin_dir: '/usr/lib/cni' } } } });
  });

  it('refuses invalid TOML with its line, and version 1 configs', () => {
    expect(() => planContainerd(fx('invalid.toml'), { binaryName: BIN })).toThrow(/not valid TOML \(line 2/);
    expect(() => planContainerd('[plugins.cri]\nx = 1\n', { binaryName: BIN })).toThrow(InstallRefused);
  });

  it('refuses when the result would not parse (runcvm defined inline) and writes nothing', () => {
    const inline = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes]\n  runcvm = { runtime_type = "runcvm" }\n';
    expect(() => planContainerd(inline, { binaryName: BIN })).toThrow(/would not parse|does not hold/);
  });

  it('reads the containerd major version', () => {
    expect(containerdMajor('containerd github.com/containerd/containerd 1.6.20~ds1 x')).toBe(1);
    expect(containerdMajor('containerd containerd.io v2.1.0 abc')).toBe(2);
    expect(containerdMajor('garbage')).toBeUndefined();
  });
});

describe('planK3sTemplate', () => {
  it('writes {{ template "base" . }} first, then the v3 section', () => {
    const plan = planK3sTemplate('', { binaryName: BIN });
    expect(plan.text.split('\n')[0]).toBe('{{ template "base" . }}');
    expect(plan.text).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm]');
    expect(findRuntimeEntries(toml(stripGoTemplate(plan.text)))[0]).toMatchObject({ runtimeType: 'io.containerd.runc.v2', binaryName: BIN });
    expect(plan.restart).toBe('sudo systemctl restart k3s');
    expect(planK3sTemplate(plan.text, { binaryName: BIN }).changed).toBe(false);
  });

  it('repairs a template without the base line and with runtime_type = "runcvm" (single-quoted header)', () => {
    const plan = planK3sTemplate(fx('k3s-no-base.toml.tmpl'), { binaryName: BIN });
    expect(hasK3sBase(plan.text)).toBe(true);
    expect(plan.actions.join('\n')).toContain('{{ template "base" . }}');
    expect(plan.text).not.toContain('runtime_type = "runcvm"');
    expect(plan.text.match(/runtimes\.runcvm\]/g)).toHaveLength(1);
  });

  it('keeps other template content and Go template lines', () => {
    const start = '{{ template "base" . }}\n\n{{ if .NodeConfig.AgentConfig.Snapshotter }}\n{{ end }}\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/reg"\n';
    const plan = planK3sTemplate(start, { binaryName: BIN });
    expect(plan.text.startsWith(start)).toBe(true);
  });
});

describe('planDocker', () => {
  it('adds runtimes.runcvm.path and keeps other keys and runtimes', () => {
    const plan = planDocker(fx('daemon.json'), { runtimePath: BIN });
    const json = JSON.parse(plan.text) as { runtimes: Record<string, { path: string }>; 'log-driver': string };
    expect(json.runtimes.runcvm).toEqual({ path: BIN });
    expect(json.runtimes.other).toEqual({ path: '/usr/bin/other' });
    expect(json['log-driver']).toBe('json-file');
    expect(plan.restart).toBe('sudo systemctl restart docker');
    expect(planDocker(plan.text, { runtimePath: BIN }).changed).toBe(false);
    expect(planDocker('', { runtimePath: BIN }).text).toBe(`{\n  "runtimes": {\n    "runcvm": {\n      "path": "${BIN}"\n    }\n  }\n}\n`);
  });

  it('refuses invalid JSON with its line', () => {
    expect(() => planDocker('{\n  "a": 1,\n  oops\n}', { runtimePath: BIN })).toThrow(/line 3/);
  });
});

describe('runtime-config helpers', () => {
  it('splits quoted table headers', () => {
    expect(headerKey(`[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runcvm]`)).toEqual(['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes', 'runcvm']);
    expect(headerKey('[[array]]')).toBeUndefined();
  });
});
