import { describe, expect, it } from 'vitest';
import { readManifests, type Finding } from '../../../../src/core/k8s/index.js';
import { lintRuncvm } from '../../../../src/runcvm/lint/rules.js';
import { closestSetting, judgeSetting } from '../../../../src/runcvm/lint/settings.js';
import { parseSettings, SettingError } from '../../../../src/runcvm/launch/settings.js';

/** A runcvm pod (with a RuntimeClass and limits, so the only findings come from its env). */
function podWithEnv(env: Record<string, string>): string {
  const lines = Object.entries(env).map(([k, v]) => `    - name: ${k}\n      value: ${JSON.stringify(v)}\n`).join('');
  return `apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: runcvm
handler: runcvm
overhead:
  podFixed:
    memory: 160Mi
---
apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  runtimeClassName: runcvm
  containers:
  - name: app
    image: busybox
    env:
${lines}    resources:
      limits:
        memory: 512Mi
`;
}

function lint(env: Record<string, string>): Finding[] {
  return lintRuncvm([{ file: 'pod.yaml', objects: readManifests(podWithEnv(env)).objects }]);
}

describe('runcvm lint: RUNCVM_* values judged by the runtime\'s own parsers', () => {
  it('a RUNCVM_ROOTFS_SIZE that parses but is below the runtime\'s 16M minimum is an error (create would refuse it)', () => {
    expect(() => parseSettings({ RUNCVM_ROOTFS_SIZE: '8M' })).toThrow(SettingError);
    const [f, ...rest] = lint({ RUNCVM_ROOTFS_SIZE: '8M' });
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ rule: 'runcvm/rootfs-size', level: 'error' });
    expect(f!.message).toContain('smaller than 16M');
    expect(f!.message).toContain('refuses to create the container');
    expect(lint({ RUNCVM_ROOTFS_SIZE: '2G' })).toEqual([]);
  });

  it('every setting the guide and REFERENCE name is accepted with a good value', () => {
    expect(lint({
      RUNCVM_LOG_LEVEL: 'debug', RUNCVM_ROOTFS_SIZE: '256M', RUNCVM_HYPERVISOR: 'firecracker', RUNCVM_KERNEL: 'vmlinux-6.12',
      RUNCVM_KERNEL_APPEND: 'loglevel=7', RUNCVM_KERNEL_DEBUG: '1', RUNCVM_BREAK: 'prerun', RUNCVM_ACCEL: 'tcg',
      RUNCVM_DISKS: '/disks/data.img,/data,ext4,1G', RUNCVM_VOLUME_TRANSPORT: 'nfs', RUNCVM_DISABLE: '0',
    })).toEqual([]);
    // an empty value means the default to the runtime: not an error
    expect(lint({ RUNCVM_LOG_LEVEL: '' })).toEqual([]);
  });

  it('bad values of the other settings fail with the runtime\'s own problem and fix', () => {
    const cases: [string, string, string, string][] = [
      ['RUNCVM_HYPERVISOR', 'kvm', 'qemu, firecracker', 'RUNCVM_HYPERVISOR=qemu or firecracker'],
      ['RUNCVM_BREAK', 'shell', 'unknown break point', 'RUNCVM_BREAK=initramfs'],
      ['RUNCVM_KERNEL_DEBUG', 'maybe', 'not a boolean', 'RUNCVM_KERNEL_DEBUG=1 or 0'],
      ['RUNCVM_ACCEL', 'hvf', 'auto, kvm, tcg', 'RUNCVM_ACCEL=auto, kvm or tcg'],
      ['RUNCVM_DISKS', '/disks/data.img,/data,xfs,1G', 'no xfs support', 'RUNCVM_DISKS=SRC,DST,FS,SIZE'],
      ['RUNCVM_VOLUME_TRANSPORT', '9p', 'virtiofs or nfs', 'RUNCVM_VOLUME_TRANSPORT=nfs'],
    ];
    for (const [name, value, problem, fix] of cases) {
      const fs = lint({ [name]: value });
      expect(fs, name).toHaveLength(1);
      expect(fs[0], name).toMatchObject({ rule: 'runcvm/setting-invalid', level: 'error', line: 20 });
      expect(fs[0]!.message, name).toContain(`${name}="${value}"`);
      expect(fs[0]!.message, name).toContain(problem);
      expect(fs[0]!.fix, name).toContain(fix);
    }
  });

  it('a misspelt RUNCVM_ name warns with the nearest setting; node-side names say where they belong', () => {
    const [typo] = lint({ RUNCVM_LOGLEVEL: 'DEBUG' });
    expect(typo).toMatchObject({ rule: 'runcvm/setting-unknown', level: 'warn' });
    expect(typo!.message).toContain('the runtime reads no RUNCVM_LOGLEVEL');
    expect(typo!.fix).toContain('did you mean RUNCVM_LOG_LEVEL?');
    const [node] = lint({ RUNCVM_LOG_DIR: '/var/log/runcvm' });
    expect(node).toMatchObject({ rule: 'runcvm/setting-unknown', level: 'warn' });
    expect(node!.message).toContain('a setting of the runtime on the node');
    expect(node!.fix).toContain('environment of the engine');
    // a pod cannot switch off its own seccomp sandbox: RUNCVM_GUEST_SECCOMP is the node's
    const [seccomp] = lint({ RUNCVM_GUEST_SECCOMP: 'off' });
    expect(seccomp).toMatchObject({ rule: 'runcvm/setting-unknown', level: 'warn' });
    expect(seccomp!.message).toContain('RUNCVM_GUEST_SECCOMP is a setting of the runtime on the node');
    // nor choose (or make the node build) the saved VM it starts from: RUNCVM_TEMPLATE is the node's
    const [template] = lint({ RUNCVM_TEMPLATE: 'on' });
    expect(template).toMatchObject({ rule: 'runcvm/setting-unknown', level: 'warn' });
    expect(template!.message).toContain('RUNCVM_TEMPLATE is a setting of the runtime on the node');
    // the node's KVM device cannot be chosen by a pod
    expect(judgeSetting('RUNCVM_KVM_DEVICE', '/dev/null')).toMatchObject({ kind: 'node-only' });
    // other variables are the workload's business
    expect(judgeSetting('MYSQL_ROOT_PASSWORD', 'x')).toBeUndefined();
  });

  it('closestSetting only suggests near names', () => {
    expect(closestSetting('RUNCVM_ROOTFSSIZE')).toBe('RUNCVM_ROOTFS_SIZE');
    expect(closestSetting('RUNCVM_HYPERVISER')).toBe('RUNCVM_HYPERVISOR');
    expect(closestSetting('RUNCVM_SOMETHING_ELSE')).toBeUndefined();
  });

  it('RUNCVM_KERNEL from a pod: a file of the approved folder passes; elsewhere only if the node approves it; `..` never', () => {
    expect(lint({ RUNCVM_KERNEL: '/var/lib/runcvm/kernels/vmlinux-6.12' })).toEqual([]);
    const [outside] = lint({ RUNCVM_KERNEL: '/etc/shadow' });
    expect(outside).toMatchObject({ rule: 'runcvm/kernel-unapproved', level: 'warn' });
    expect(outside!.message).toContain('create refuses it unless the node\'s RUNCVM_KERNELS_DIR holds it');
    const [up] = lint({ RUNCVM_KERNEL: '../../etc/shadow' });
    expect(up).toMatchObject({ rule: 'runcvm/setting-invalid', level: 'error' });
  });
});
