import { describe, expect, it } from 'vitest';
import { canonicalJson, launchKeyMismatch, launchRefusal, shapeDifference, templateKey, templateRequestFrom, templateVm, type TemplateKeyFacts, type TemplateRequest } from '../../../../src/runcvm/template/key.js';
import type { Hypervisor, VmPlan } from '../../../../src/runcvm/hypervisor/types.js';
import { HYPERVISORS, planVm } from '../../../../src/runcvm/hypervisor/index.js';
import { templateSetting } from '../../../../src/runcvm/launch/settings.js';
import { CONTAINER_PATHS, type LaunchSpec } from '../../../../src/runcvm/launch/schema.js';

/** a backend whose own part is its version and its machine (what QEMU's and Firecracker's templateShape give) */
function backend(version = '7.2.22', refuse?: string): Hypervisor {
  return { ...HYPERVISORS.qemu, templateShape: (vm: VmPlan) => (refuse ? { ok: false, reason: refuse } : { ok: true, shape: { version, machine: `microvm-${vm.vcpus}` } }) };
}

const FACTS: TemplateKeyFacts = { setting: 'on', assets: { vmlinuxSha256: '1'.repeat(64), initramfsSha256: '2'.repeat(64), guestPackageId: '3'.repeat(64) } };
const REQ: TemplateRequest = { hypervisor: 'qemu', accel: 'tcg', vcpus: 1, memoryMiB: 512, tscKhz: 2_400_000, nics: 1, dataDisks: 0 };

function key(vm: VmPlan = templateVm(REQ), hv: Hypervisor = backend(), facts: TemplateKeyFacts = FACTS): string {
  const k = templateKey(vm, hv, facts);
  if (!k.ok) throw new Error(k.reason);
  return k.key;
}

describe('templateKey', () => {
  it('is a sha256, the same for the same shape whatever the per-container words and paths', () => {
    const k = key();
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    const vm = templateVm(REQ);
    const own: VmPlan = {
      ...vm,
      containerId: 'other',
      cmdline: `${vm.cmdline} runcvm.net.eth0=10.0.0.2/24 runcvm.net.gw=10.0.0.1`,
      console: { socket: '/elsewhere/console.sock' },
      nics: [{ id: 'net0', tap: 'tap-x', mac: '02:00:00:00:00:99' }],
    };
    expect(key(own)).toBe(k);
    // the early-boot TSC hint follows the host's `cpu MHz`, which frequency scaling moves: not part of the shape
    expect(key(templateVm({ ...REQ, tscKhz: 2_500_123 }))).toBe(k);
    expect(key(templateVm({ ...REQ, tscKhz: undefined }))).toBe(k);
  });

  it('every field of the shape changes the key', () => {
    const base = key();
    const vm = templateVm(REQ);
    const variants: Record<string, string> = {
      'backend version': key(vm, backend('8.0.0')),
      'backend name': key(vm, { ...backend(), name: 'firecracker' }),
      vmlinux: key(vm, backend(), { ...FACTS, assets: { ...FACTS.assets!, vmlinuxSha256: '4'.repeat(64) } }),
      initramfs: key(vm, backend(), { ...FACTS, assets: { ...FACTS.assets!, initramfsSha256: '4'.repeat(64) } }),
      'guest package': key(vm, backend(), { ...FACTS, assets: { ...FACTS.assets!, guestPackageId: '4'.repeat(64) } }),
      'custom kernel': key({ ...vm, kernel: CONTAINER_PATHS.customKernel }, backend(), { ...FACTS, customKernelSha256: '5'.repeat(64) }),
      accel: key(templateVm({ ...REQ, accel: 'kvm' })),
      vcpus: key(templateVm({ ...REQ, vcpus: 2 })),
      memory: key(templateVm({ ...REQ, memoryMiB: 1024 })),
      nics: key(templateVm({ ...REQ, nics: 2 })),
      'no nic': key(templateVm({ ...REQ, nics: 0 })),
      'data disk': key(templateVm({ ...REQ, dataDisks: 1 })),
      'disk read-only': key({ ...vm, disks: vm.disks.map((d) => ({ ...d, readOnly: false })) }),
      'disk cache': key({ ...vm, disks: vm.disks.map((d) => ({ ...d, cache: 'writeback' as const })) }),
      'disk order': key({ ...vm, disks: [...vm.disks].reverse() }),
      'agent port': key({ ...vm, agent: undefined }),
      'io port': key({ ...vm, io: { ...vm.io, portName: 'other.io' } }),
      'command line': key({ ...vm, cmdline: vm.cmdline.replace('runcvm.modules=none', 'runcvm.modules=nfs') }),
    };
    for (const [what, k] of Object.entries(variants)) expect(k, what).not.toBe(base);
    expect(new Set(Object.values(variants)).size).toBe(Object.keys(variants).length);
  });

  it('refuses with a reason: off, virtiofs, break, debug, kernel debug, no templateShape, backend refusal, custom kernel, no manifest', () => {
    const vm = templateVm(REQ);
    const reason = (v: VmPlan, hv: Hypervisor = backend(), f: TemplateKeyFacts = FACTS) => {
      const k = templateKey(v, hv, f);
      return k.ok ? 'ok' : k.reason;
    };
    expect(reason(vm, backend(), { ...FACTS, setting: 'off' })).toBe('RUNCVM_TEMPLATE=off');
    expect(reason({ ...vm, shares: [{ tag: 'v0', socket: '/s' }] })).toBe('virtiofs volume (virtiofs blocks saving the VM)');
    expect(reason({ ...vm, cmdline: `${vm.cmdline} runcvm.break=initramfs` })).toBe('RUNCVM_BREAK is set');
    expect(reason({ ...vm, cmdline: `${vm.cmdline} runcvm.debug=1` })).toBe('debug logging (RUNCVM_LOG_LEVEL=DEBUG)');
    expect(reason({ ...vm, cmdline: vm.cmdline.replace('quiet ', '') })).toBe('kernel debug (RUNCVM_KERNEL_DEBUG)');
    expect(reason(vm, { ...HYPERVISORS.qemu, templateShape: undefined })).toBe('the qemu backend has no templates');
    expect(reason(vm, backend('1', 'kernel command line words a template cannot carry (RUNCVM_KERNEL_APPEND: mitigations=off)'))).toMatch(/RUNCVM_KERNEL_APPEND/);
    expect(reason({ ...vm, kernel: CONTAINER_PATHS.customKernel })).toBe('a custom kernel (RUNCVM_KERNEL)');
    expect(reason(vm, backend(), { setting: 'on' })).toMatch(/^the guest assets have no manifest/);
  });

  it('create computes the launcher\'s key: templateVm of the LaunchSpec\'s request equals planVm of the LaunchSpec', () => {
    const spec: LaunchSpec = {
      version: 1,
      containerId: 'c1',
      process: { args: ['sh'], env: ['A=1'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false, rlimits: [], noNewPrivileges: false },
      hostname: 'h',
      vm: { hypervisor: 'qemu', accel: 'auto', vcpus: 2, memoryMiB: 256 },
      kernel: { path: `${CONTAINER_PATHS.kernelDir}/vmlinux`, initrd: `${CONTAINER_PATHS.kernelDir}/initramfs.img`, append: '', debug: false },
      disks: [
        { id: 'base', path: CONTAINER_PATHS.baseDisk, readOnly: true, role: 'root' },
        { id: 'upper', path: CONTAINER_PATHS.upperDisk, readOnly: false, role: 'upper' },
      ],
      mounts: [],
      network: { mode: 'auto' },
      log: { level: 'info', file: CONTAINER_PATHS.debugLog },
      channel: { io: CONTAINER_PATHS.ioSocket, console: CONTAINER_PATHS.consoleSocket },
    };
    const launcherVm: VmPlan = { ...planVm(spec, 'tcg', { tscKhz: 2_000_000 }), nics: [{ id: 'net0', tap: 'tap-eth0', mac: '0a:58:0a:f4:00:05' }] };
    expect(launchRefusal(spec)).toBeUndefined();
    expect(key(templateVm(templateRequestFrom(spec, 'tcg', 2_000_000, 1)))).toBe(key(launcherVm));
    expect(launchRefusal({ ...spec, break: 'initramfs' })).toBe('RUNCVM_BREAK is set');
    expect(launchRefusal({ ...spec, kernel: { ...spec.kernel, append: 'mitigations=off' } })).toBe('a kernel command line append (RUNCVM_KERNEL_APPEND)');
    expect(launchRefusal({ ...spec, log: { level: 'debug' } })).toBe('debug logging (RUNCVM_LOG_LEVEL=DEBUG)');
  });

  it('RUNCVM_TEMPLATE: on/off, default off, anything else refused; canonical JSON sorts keys', () => {
    expect(templateSetting({})).toBe('off');
    expect(templateSetting({ RUNCVM_TEMPLATE: 'ON' })).toBe('on');
    expect(templateSetting({ RUNCVM_TEMPLATE: '0' })).toBe('off');
    expect(() => templateSetting({ RUNCVM_TEMPLATE: 'maybe' })).toThrow('RUNCVM_TEMPLATE="maybe" is not valid: it is neither on nor off');
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
  });
});

describe('launchKeyMismatch (the launcher\'s check of the bound template)', () => {
  it('fits the VM create keyed; names the fields that differ otherwise', () => {
    const vm = templateVm(REQ);
    const made = templateKey(vm, backend(), FACTS);
    if (!made.ok) throw new Error(made.reason);
    expect(launchKeyMismatch(vm, backend(), FACTS, made)).toBeUndefined();
    // the engine connected a second NIC after create
    expect(launchKeyMismatch(templateVm({ ...REQ, nics: 2 }), backend(), FACTS, made)).toBe('the bound template does not fit this VM (differs in nics)');
    expect(launchKeyMismatch(templateVm({ ...REQ, vcpus: 2 }), backend(), FACTS, made)).toBe('the bound template does not fit this VM (differs in backend, vcpus)');
    expect(launchKeyMismatch(vm, backend(), { ...FACTS, setting: 'off' }, made)).toBe('RUNCVM_TEMPLATE=off');
    expect(shapeDifference({ a: 1, b: [1] }, { b: [2], c: 0 })).toEqual(['a', 'b', 'c']);
  });
});
