import { describe, expect, it } from 'vitest';
import { bootArgs, bootSource } from '../../../../../src/runcvm/hypervisor/firecracker/boot.js';
import { driveId, drives } from '../../../../../src/runcvm/hypervisor/firecracker/block.js';
import { machineConfig } from '../../../../../src/runcvm/hypervisor/firecracker/machine.js';
import { networkInterfaces } from '../../../../../src/runcvm/hypervisor/firecracker/net.js';
import { agentListenPath, vsock } from '../../../../../src/runcvm/hypervisor/firecracker/vsock.js';
import {
  firecrackerArgs, fromVmPlan, instanceId, planFirecracker, rootIndexFromCmdline,
} from '../../../../../src/runcvm/hypervisor/firecracker/plan.js';
import { requestViolations, violations, type HttpMethod } from '../../../../../src/runcvm/hypervisor/firecracker/schema.js';
import type { ApiCall, FirecrackerVmInput } from '../../../../../src/runcvm/hypervisor/firecracker/types.js';
import { HYPERVISORS, kernelCmdline, planVm, type VmPlan } from '../../../../../src/runcvm/hypervisor/index.js';
import { explainFirecrackerExit } from '../../../../../src/runcvm/hypervisor/firecracker/start.js';
import { qemuArgs } from '../../../../../src/runcvm/hypervisor/qemu/index.js';
import { buildLaunchSpec } from '../../../../../src/runcvm/launch/build.js';
import { parseSettings } from '../../../../../src/runcvm/launch/settings.js';
import type { OciSpec } from '../../../../../src/runcvm/launch/oci.js';

const CMDLINE = kernelCmdline({ rootDevice: '/dev/vda', upperDevice: '/dev/vdb', debug: false, kernelDebug: false, append: '' });

const input = (more: Partial<FirecrackerVmInput> = {}): FirecrackerVmInput => ({
  vcpus: 2,
  memoryMiB: 512,
  kernel: '/.runcvm/kernel/vmlinux',
  initrd: '/.runcvm/kernel/initramfs.img',
  cmdline: CMDLINE,
  disks: [
    { id: 'base', path: '/.runcvm/disks/base.ext4', readOnly: true, root: true },
    { id: 'upper', path: '/.runcvm/state/upper.ext4', readOnly: false, root: false },
  ],
  nics: [{ id: 'net0', tap: 'tap-eth0', mac: '02:42:AC:11:00:02' }],
  vsock: { cid: 3, udsPath: '/.runcvm/state/io.vsock' },
  ...more,
});

/** Every call is a valid request for Firecracker's API as re-expressed in our schema. */
function expectValidCalls(calls: ApiCall[]) {
  for (const c of calls) expect(requestViolations(c.method as HttpMethod, c.path, c.body), `${c.method} ${c.path}`).toEqual([]);
}

describe('boot source', () => {
  it('keeps the shared kernel command line contract and adds only Firecracker specifics', () => {
    const { calls, config } = bootSource(input());
    expectValidCalls(calls);
    const body = calls[0]!.body as { kernel_image_path: string; initrd_path: string; boot_args: string };
    expect(calls[0]).toMatchObject({ method: 'PUT', path: '/boot-source' });
    expect(body.kernel_image_path).toBe('/.runcvm/kernel/vmlinux');
    expect(body.initrd_path).toBe('/.runcvm/kernel/initramfs.img');
    const words = body.boot_args.split(' ');
    // the initramfs / guest init contract, word for word as the QEMU path passes it
    for (const w of CMDLINE.split(' ').filter((x) => !x.startsWith('reboot='))) expect(words).toContain(w);
    expect(words).toEqual(expect.arrayContaining(['console=ttyS0', 'root=/dev/vda', 'runcvm.upper=/dev/vdb', 'panic=-1', 'reboot=k', 'pci=off']));
    expect(words.filter((w) => w.startsWith('reboot='))).toEqual(['reboot=k']);
    expect(config['boot-source']).toEqual(body);
  });

  it('passes user additions (RUNCVM_KERNEL_APPEND) and debug switches through unchanged', () => {
    const cmd = kernelCmdline({ rootDevice: '/dev/vda', debug: true, kernelDebug: true, breakAt: 'initramfs', append: 'foo=bar quiet2' });
    const args = bootArgs(cmd);
    expect(args).toContain('runcvm.debug=1');
    expect(args).toContain('runcvm.break=initramfs');
    expect(args).toContain('foo=bar quiet2');
    expect(bootArgs(`${cmd} pci=on`)).not.toContain('pci=off');
  });

  it('omits initrd_path when there is no initramfs', () => {
    const body = bootSource({ kernel: '/k', cmdline: 'console=ttyS0' }).calls[0]!.body;
    expect(body).not.toHaveProperty('initrd_path');
  });
});

describe('drives', () => {
  it('root disk first as the root device, writable layer second, same files as the QEMU path', () => {
    const { calls, config } = drives(input());
    expectValidCalls(calls);
    expect(calls.map((c) => c.path)).toEqual(['/drives/base', '/drives/upper']);
    expect(config.drives).toEqual([
      { drive_id: 'base', path_on_host: '/.runcvm/disks/base.ext4', is_root_device: true, is_read_only: true, cache_type: 'Unsafe', io_engine: 'Sync' },
      { drive_id: 'upper', path_on_host: '/.runcvm/state/upper.ext4', is_root_device: false, is_read_only: false, cache_type: 'Unsafe', io_engine: 'Sync' },
    ]);
  });

  it('sanitizes ids to what Firecracker accepts and refuses ambiguous layouts', () => {
    expect(driveId('vol-1.data')).toBe('vol_1_data');
    expect(() => drives({ disks: [{ id: 'a', path: '/a', readOnly: false, root: false }] })).toThrow(/exactly one root disk/);
    expect(() => drives({ disks: [{ id: 'a', path: '/a', readOnly: false, root: false }, { id: 'b', path: '/b', readOnly: false, root: true }] })).toThrow(/must come first/);
    expect(() => drives({ disks: [{ id: 'a-1', path: '/a', readOnly: false, root: true }, { id: 'a_1', path: '/b', readOnly: false, root: false }] })).toThrow(/collide/);
  });
});

describe('network interfaces', () => {
  it('one NIC on tap-eth0 with the pod MAC', () => {
    const { calls, config } = networkInterfaces(input());
    expectValidCalls(calls);
    expect(calls).toEqual([{ method: 'PUT', path: '/network-interfaces/net0', body: { iface_id: 'net0', host_dev_name: 'tap-eth0', guest_mac: '02:42:ac:11:00:02' } }]);
    expect(config['network-interfaces']).toHaveLength(1);
  });

  it('no network → no NIC; a bad MAC is caught before it reaches Firecracker', () => {
    expect(networkInterfaces({ nics: [] }).calls).toEqual([]);
    expect(() => networkInterfaces({ nics: [{ id: 'net0', tap: 'tap-eth0', mac: '02:42:ac:11:00' }] })).toThrow(/guest_mac/);
    expect(() => networkInterfaces({ nics: [{ id: 'a-b', tap: 't1', mac: '02:00:00:00:00:01' }, { id: 'a_b', tap: 't2', mac: '02:00:00:00:00:02' }] })).toThrow(/collide/);
  });
});

describe('machine config', () => {
  it('vcpu_count and mem_size_mib from the plan, SMT off', () => {
    const { calls } = machineConfig(input());
    expectValidCalls(calls);
    expect(calls[0]!.body).toEqual({ vcpu_count: 2, mem_size_mib: 512, smt: false });
  });

  it('clamps to Firecracker\'s 1..32 vCPU range', () => {
    expect(machineConfig({ vcpus: 64, memoryMiB: 256 }).calls[0]!.body).toMatchObject({ vcpu_count: 32 });
    expect(machineConfig({ vcpus: 0, memoryMiB: 256 }).calls[0]!.body).toMatchObject({ vcpu_count: 1 });
  });

  it('follows the container cpu/memory limits (docker --cpus 3 -m 768m) through the LaunchSpec and VmPlan', () => {
    const oci: OciSpec = {
      process: { args: ['sh'], env: ['PATH=/bin'], cwd: '/' },
      root: { path: 'rootfs' },
      linux: { resources: { cpu: { quota: 300_000, period: 100_000 }, memory: { limit: 768 * 1024 * 1024 } } },
    } as OciSpec;
    const spec = buildLaunchSpec(oci, { containerId: 'abc', settings: parseSettings({ RUNCVM_HYPERVISOR: 'firecracker' }), debugLog: false });
    const plan = planVm(spec, 'kvm', {});
    const fc = planFirecracker(fromVmPlan(plan, { nics: [{ id: 'net0', tap: 'tap-eth0', mac: '02:00:00:00:00:01' }] }));
    expect(fc.configFile['machine-config']).toEqual({ vcpu_count: 3, mem_size_mib: 768, smt: false });
  });
});

describe('vsock', () => {
  it('guest CID 3 on a Unix socket; the agent listener path follows Firecracker\'s uds_path_PORT rule', () => {
    const { calls } = vsock(input());
    expectValidCalls(calls);
    expect(calls[0]!.body).toEqual({ guest_cid: 3, uds_path: '/.runcvm/state/io.vsock' });
    expect(agentListenPath('/.runcvm/state/io.vsock')).toBe('/.runcvm/state/io.vsock_1024');
    expect(() => vsock({ vsock: { cid: 2, udsPath: '/v' } })).toThrow(/guest_cid/);
  });
});

describe('the whole plan', () => {
  it('API calls in a valid order ending with InstanceStart, and an equivalent config file', () => {
    const plan = planFirecracker(input({ logger: { path: '/.runcvm/state/fc.log', level: 'Info' } }));
    expectValidCalls(plan.calls);
    expect(plan.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'PUT /logger', 'PUT /machine-config', 'PUT /boot-source', 'PUT /drives/base', 'PUT /drives/upper',
      'PUT /network-interfaces/net0', 'PUT /vsock', 'PUT /actions',
    ]);
    expect(plan.calls.at(-1)!.body).toEqual({ action_type: 'InstanceStart' });
    expect(violations('VmmConfigFile', plan.configFile)).toEqual([]);
    expect(Object.keys(plan.configFile).sort()).toEqual(['boot-source', 'drives', 'logger', 'machine-config', 'network-interfaces', 'vsock']);
    // every PUT body appears unchanged in the config file
    const cf = plan.configFile;
    expect(plan.calls.find((c) => c.path === '/boot-source')!.body).toEqual(cf['boot-source']);
    expect(plan.calls.filter((c) => c.path.startsWith('/drives/')).map((c) => c.body)).toEqual(cf.drives);
    expect(plan.calls.find((c) => c.path === '/vsock')!.body).toEqual(cf.vsock);
  });

  it('adapts the runtime core\'s VmPlan: same kernel, initrd, disks and command line as QEMU gets', () => {
    const oci = { process: { args: ['true'], env: [], cwd: '/' }, root: { path: 'rootfs' } } as unknown as OciSpec;
    const spec = buildLaunchSpec(oci, { containerId: 'c1', settings: parseSettings({}), debugLog: false });
    const vmPlan: VmPlan = planVm(spec, 'kvm', {});
    const fc = planFirecracker(fromVmPlan(vmPlan));
    const q = qemuArgs(vmPlan);
    expect(q[q.indexOf('-kernel') + 1]).toBe(fc.configFile['boot-source'].kernel_image_path);
    expect(q[q.indexOf('-initrd') + 1]).toBe(fc.configFile['boot-source'].initrd_path);
    const qemuFiles = q.filter((a) => a.startsWith('id=')).map((a) => /file=([^,]+)/.exec(a)![1]);
    expect(fc.configFile.drives.map((d) => d.path_on_host)).toEqual(qemuFiles);
    expect(fc.configFile.vsock).toEqual({ guest_cid: 3, uds_path: '/.runcvm/state/io.vsock' });
    expect(fc.configFile['network-interfaces']).toEqual([]);
    const withNic = planFirecracker(fromVmPlan({ ...vmPlan, nics: [{ id: 'net0', tap: 'tap-eth0', mac: '0A:58:0A:2A:00:07' }] }));
    expect(withNic.configFile['network-interfaces']).toEqual([{ iface_id: 'net0', host_dev_name: 'tap-eth0', guest_mac: '0a:58:0a:2a:00:07' }]);
    expect(rootIndexFromCmdline(vmPlan.cmdline)).toBe(0);
  });

  it('argv for each launch mode, with an id Firecracker accepts', () => {
    expect(firecrackerArgs({ kind: 'api', apiSocket: '/s' }, 'abc')).toEqual(['--id', 'abc', '--api-sock', '/s']);
    expect(firecrackerArgs({ kind: 'config-file', configFile: '/c.json', apiSocket: '/s' }, 'abc')).toEqual(['--id', 'abc', '--api-sock', '/s', '--config-file', '/c.json']);
    expect(firecrackerArgs({ kind: 'config-file', configFile: '/c.json' }, 'abc')).toEqual(['--id', 'abc', '--no-api', '--config-file', '/c.json']);
    expect(firecrackerArgs({ kind: 'api', apiSocket: '/s' }, 'abc', { path: '/l', level: 'Warning' })).toEqual(['--id', 'abc', '--log-path', '/l', '--level', 'Warning', '--api-sock', '/s']);
    expect(instanceId('k8s_pod.ctr')).toBe('k8s-pod-ctr');
    expect(instanceId('x'.repeat(80))).toHaveLength(64);
  });
});

describe('the backend\'s plan (what the launcher starts and `runcvm plan` prints)', () => {
  const oci = { process: { args: ['true'], env: [], cwd: '/' }, root: { path: 'rootfs' } } as unknown as OciSpec;
  const spec = buildLaunchSpec(oci, { containerId: 'c1', settings: parseSettings({ RUNCVM_HYPERVISOR: 'firecracker' }), debugLog: false });
  const plan = planVm(spec, 'kvm', {});

  it('firecracker --config-file with the API kept, a schema-valid config file, the agent on vsock', () => {
    const p = HYPERVISORS.firecracker.plan(plan);
    // a static binary: run directly, not through the guest package's loader
    expect(p.argv).toEqual([
      '/.runcvm/firecracker', '--id', 'c1', '--log-path', '/.runcvm/state/firecracker.log', '--level', 'Warning',
      '--api-sock', '/.runcvm/state/firecracker.sock', '--config-file', '/.runcvm/state/firecracker.json',
    ]);
    expect(p.files.map((f) => f.path)).toEqual(['/.runcvm/state/firecracker.json']);
    const doc: unknown = JSON.parse(p.files[0]!.content);
    expect(violations('VmmConfigFile', doc)).toEqual([]);
    expect(doc).toEqual(planFirecracker(fromVmPlan(plan)).configFile);
    // the console is Firecracker's stdout: no console socket to listen on
    expect(p.listen).toEqual({ io: '/.runcvm/state/io.vsock_1024', agent: '/.runcvm/state/io.vsock_1025' });
    expect(p.cleanup).toEqual(['/.runcvm/state/firecracker.sock', '/.runcvm/state/io.vsock']);
    expect(p.control).toBe('/.runcvm/state/firecracker.sock');
  });

  it('QEMU\'s plan has nothing of Firecracker\'s (no control socket, no files, a console socket)', () => {
    const p = HYPERVISORS.qemu.plan(plan);
    expect(p.control).toBeUndefined();
    expect(p.files).toEqual([]);
    expect(p.listen.console).toBe('/.runcvm/state/console.sock');
  });

  it('explains a Firecracker exit only when it is a KVM problem', () => {
    expect(explainFirecrackerExit({ code: 1, signal: null, output: 'Error: RunWithApi(BuildFromJson(StartMicroVM(Kvm(Kvm(Error(19))))))' })?.code).toBe('KVM_UNAVAILABLE');
    expect(explainFirecrackerExit({ code: 0, signal: null, output: '' })).toBeUndefined();
  });
});
