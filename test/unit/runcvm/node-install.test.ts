import { describe, expect, it } from 'vitest';
import { planNodeInstall, type NodeFacts } from '../../../src/runcvm/install/node-plan.js';
import { InstallRefused } from '../../../src/runcvm/install/plan.js';

const base: NodeFacts = {
  hostRoot: '/host', prefix: '/opt/runcvm', payload: { dir: '/opt/runcvm-dist', id: 'a'.repeat(64), version: '0.1.0' },
  k3sConfigExists: false, containerdConfig: 'version = 2\n', systemd: false, restart: 'auto',
};

describe('runcvm node-install plan', () => {
  it('a fresh containerd node: copy the payload, add the runtime entry (and runc), report the restart it cannot do', () => {
    const p = planNodeInstall(base);
    expect(p.engine).toBe('containerd');
    expect(p.steps.map((s) => s.kind)).toEqual(['copy-payload', 'write-config']);
    expect(p.steps[0]).toMatchObject({ from: '/opt/runcvm-dist', to: '/host/opt/runcvm', staging: '/host/opt/runcvm.new', previous: '/host/opt/runcvm.previous' });
    const write = p.steps[1] as Extract<(typeof p.steps)[number], { kind: 'write-config' }>;
    expect(write.path).toBe('/host/etc/containerd/config.toml');
    expect(write.text).toContain('BinaryName = "/opt/runcvm/bin/runcvm-runtime"');
    expect(write.text).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]');
    // the second handler: the workload may use user namespaces inside the VM
    expect(write.text).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm-userns]');
    expect(write.text).toContain('BinaryName = "/opt/runcvm/bin/runcvm-runtime-userns"');
    expect(p.report.join('\n')).toMatch(/this node does not run systemd, so the installer cannot restart containerd/);
  });

  it('on a systemd node it restarts the engine through PID 1, and only when the config changed', () => {
    const p = planNodeInstall({ ...base, systemd: true });
    expect(p.steps.at(-1)).toEqual({ kind: 'restart', unit: 'containerd', argv: ['nsenter', '--target', '1', '--mount', '--uts', '--ipc', '--net', '--pid', '--', 'systemctl', 'restart', 'containerd'] });
    const written = (p.steps[1] as { text: string }).text;
    const again = planNodeInstall({ ...base, systemd: true, containerdConfig: written, installed: { id: base.payload.id, version: '0.1.0' } });
    expect(again.steps).toEqual([]);
    expect(again.changed).toBe(false);
    expect(again.report.join('\n')).toMatch(/already installed.*\n.*already registered; nothing to restart/);
  });

  it('RUNCVM_INSTALL_RESTART=never writes the entry and leaves the restart to the admin', () => {
    const p = planNodeInstall({ ...base, systemd: true, restart: 'never' });
    expect(p.steps.some((s) => s.kind === 'restart')).toBe(false);
    expect(p.report.join('\n')).toContain('sudo systemctl restart containerd');
  });

  it('k3s (its generated config.toml exists): the template, restart k3s', () => {
    const p = planNodeInstall({ ...base, k3sConfigExists: true, k3sTemplate: undefined, systemd: true });
    expect(p.engine).toBe('k3s');
    expect(p.configPath).toBe('/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl');
    const write = p.steps.find((s) => s.kind === 'write-config') as { text: string; path: string };
    expect(write.path).toBe('/host/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl');
    expect(write.text).toContain('{{ template "base" . }}');
    expect(write.text).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm]');
    expect(p.steps.at(-1)).toMatchObject({ kind: 'restart', unit: 'k3s' });
  });

  it('a new payload replaces the installed one, which stays for running VMs', () => {
    const p = planNodeInstall({ ...base, installed: { id: 'b'.repeat(64), version: '0.0.9' } });
    expect(p.steps[0]).toMatchObject({ kind: 'copy-payload', replaces: '0.0.9' });
    expect(p.report[0]).toContain('the previous 0.0.9 stays in /opt/runcvm.previous');
  });

  it('a broken config: refused with the node path, the line and the fix', () => {
    expect(() => planNodeInstall({ ...base, containerdConfig: 'version = 2\n[plugins\n' })).toThrowError(InstallRefused);
    try {
      planNodeInstall({ ...base, containerdConfig: 'version = 2\n[plugins\n' });
    } catch (err) {
      expect((err as InstallRefused).message).toMatch(/^\/etc\/containerd\/config\.toml: the existing config is not valid TOML \(line 2/);
      expect((err as InstallRefused).fix).toMatch(/fix that line first/);
    }
  });
});
