/**
 * VM templates under Firecracker (issue 17): the snapshot requests against schemas/firecracker-api.json (v1.16.1),
 * the build and restore plans, the template shape and its refusals. The fake-VMM round trip is
 * test/e2e/firecracker-template.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { TEMPLATE_CMDLINE_FLAG } from '../../../../../src/runcvm/guest/contract.js';
import { firecracker } from '../../../../../src/runcvm/hypervisor/firecracker/index.js';
import { fromVmPlan, planFirecracker } from '../../../../../src/runcvm/hypervisor/firecracker/plan.js';
import { findEndpoint, requestViolations, violations } from '../../../../../src/runcvm/hypervisor/firecracker/schema.js';
import {
  drivesMismatch, firecrackerTemplateShape, PAUSE_VM, RESTORE_FILE, RESUME_VM, snapshotCreate, snapshotLoad, templateCmdline, VM_CONFIG,
  type RestoreSteps,
} from '../../../../../src/runcvm/hypervisor/firecracker/snapshot.js';
import { restoreStepsOf } from '../../../../../src/runcvm/hypervisor/firecracker/start.js';
import { parseFirecrackerVersion } from '../../../../../src/runcvm/hypervisor/firecracker/version.js';
import { kernelCmdline, type VmPlan } from '../../../../../src/runcvm/hypervisor/index.js';
import { hypervisorView, renderHypervisorView } from '../../../../../src/runcvm/plan/plan-hypervisor.js';
import type { ApiCall, VmmConfigFile } from '../../../../../src/runcvm/hypervisor/firecracker/types.js';

const valid = (c: ApiCall) => requestViolations(c.method, c.path, c.body);
const files = { state: '/.runcvm/template/state', memory: '/.runcvm/template/memory' };

function vmPlan(over: Partial<VmPlan> = {}): VmPlan {
  return {
    containerId: 'ctr-1',
    accel: 'kvm',
    vcpus: 2,
    memoryMiB: 256,
    kernel: '/.runcvm/kernel/vmlinux',
    initrd: '/.runcvm/kernel/initramfs.img',
    cmdline: kernelCmdline({ rootDevice: '/dev/vda', upperDevice: '/dev/vdb', debug: false, kernelDebug: false, append: '' }),
    disks: [
      { id: 'base', path: '/.runcvm/disks/base.ext4', readOnly: true },
      { id: 'upper', path: '/.runcvm/state/upper.ext4', readOnly: false },
    ],
    console: { socket: '/.runcvm/state/console.sock' },
    io: { socket: '/.runcvm/state/io.sock', portName: 'runcvm.io' },
    nics: [{ id: 'net0', tap: 'tap-eth0', mac: '02:42:ac:11:00:02' }],
    ...over,
  };
}

describe('the snapshot requests match Firecracker v1.16.1\'s API (our schema file)', () => {
  it('pause / resume: PATCH /vm with the Vm state enum', () => {
    expect(PAUSE_VM).toEqual({ method: 'PATCH', path: '/vm', body: { state: 'Paused' } });
    expect(RESUME_VM).toEqual({ method: 'PATCH', path: '/vm', body: { state: 'Resumed' } });
    expect(valid(PAUSE_VM)).toEqual([]);
    expect(valid(RESUME_VM)).toEqual([]);
    expect(violations('Vm', { state: 'Running' })[0]?.problem).toMatch(/unknown variant "Running"/);
  });

  it('create: a Full snapshot to the two files save() is given', () => {
    const c = snapshotCreate(files);
    expect(c).toEqual({ method: 'PUT', path: '/snapshot/create', body: { snapshot_type: 'Full', snapshot_path: files.state, mem_file_path: files.memory } });
    expect(valid(c)).toEqual([]);
    expect(violations('SnapshotCreateParams', { snapshot_path: 's' }).map((v) => v.problem)).toEqual(['missing field `mem_file_path`']);
  });

  it('load: the File memory backend (not the deprecated mem_file_path), paused, with this container\'s taps and vsock socket', () => {
    const input = fromVmPlan(vmPlan({ nics: [{ id: 'net0', tap: 'tap-eth0', mac: '02:42:ac:11:00:02' }, { id: 'net-1', tap: 'tap-eth1', mac: '02:42:ac:11:00:03' }] }));
    const l = snapshotLoad(files, input);
    expect(l).toEqual({
      method: 'PUT',
      path: '/snapshot/load',
      body: {
        snapshot_path: files.state,
        mem_backend: { backend_type: 'File', backend_path: files.memory },
        resume_vm: false,
        vsock_override: { uds_path: '/.runcvm/state/io.vsock' },
        // ids as the NIC builder sanitises them (net-1 → net_1): what the snapshot recorded
        network_overrides: [{ iface_id: 'net0', host_dev_name: 'tap-eth0' }, { iface_id: 'net_1', host_dev_name: 'tap-eth1' }],
      },
    });
    expect(valid(l)).toEqual([]);
    expect(snapshotLoad(files, fromVmPlan(vmPlan({ nics: [] }))).body).not.toHaveProperty('network_overrides');
  });

  it('the schema refuses what runcvm must never send: the deprecated mem_file_path, a load without mem_backend, unknown fields', () => {
    const base = { snapshot_path: 's', mem_backend: { backend_type: 'File', backend_path: 'm' } };
    expect(violations('SnapshotLoadParams', { ...base, mem_file_path: 'm' })[0]?.problem).toMatch(/unknown field `mem_file_path`/);
    expect(violations('SnapshotLoadParams', { snapshot_path: 's' }).map((v) => v.problem)).toEqual(['missing field `mem_backend`']);
    expect(violations('SnapshotLoadParams', { ...base, mem_backend: { backend_type: 'Anonymous', backend_path: 'm' } })[0]?.problem).toMatch(/unknown variant/);
    expect(violations('SnapshotLoadParams', { ...base, vsock_override: { uds_path: 'v', cid: 3 } })[0]?.problem).toMatch(/unknown field `cid`/);
    expect(violations('SnapshotLoadParams', { ...base, clock_realtime: true, track_dirty_pages: false })).toEqual([]);
  });

  it('the endpoints and their phases: pause and create post-boot, load pre-boot, GET /vm/config', () => {
    expect(findEndpoint('PATCH', '/vm')?.spec).toMatchObject({ body: 'Vm', phase: 'post-boot' });
    expect(findEndpoint('PUT', '/snapshot/create')?.spec).toMatchObject({ body: 'SnapshotCreateParams', phase: 'post-boot' });
    expect(findEndpoint('PUT', '/snapshot/load')?.spec).toMatchObject({ body: 'SnapshotLoadParams', phase: 'pre-boot' });
    expect(findEndpoint('GET', '/vm/config')?.spec).toMatchObject({ response: 'FullVmConfiguration' });
    expect(valid(VM_CONFIG)).toEqual([]);
    // Firecracker's answer after a restore has nulls for unset fields (its device_manager/persist.rs test shows them)
    expect(violations('FullVmConfiguration', { drives: [{ drive_id: 'base', path_on_host: '/d', is_read_only: true, partuuid: null, rate_limiter: null }], 'boot-source': { kernel_image_path: '' } })).toEqual([]);
  });
});

describe('plan(): the template build boots parked, the restore loads the snapshot', () => {
  it('build: the cold configuration with runcvm.template=1 on the boot args (once), and a note of the save calls', () => {
    const cold = firecracker.plan(vmPlan());
    const build = firecracker.plan(vmPlan({ templateBuild: { memory: '/w/memory' } }));
    const coldDoc = JSON.parse(cold.files[0]!.content) as VmmConfigFile;
    const doc = JSON.parse(build.files[0]!.content) as VmmConfigFile;
    const words = doc['boot-source'].boot_args!.split(' ');
    expect(words.filter((w) => w === TEMPLATE_CMDLINE_FLAG)).toHaveLength(1);
    expect(words.filter((w) => w !== TEMPLATE_CMDLINE_FLAG)).toEqual(coldDoc['boot-source'].boot_args!.split(' '));
    expect({ ...doc, 'boot-source': coldDoc['boot-source'] }).toEqual(coldDoc);
    expect(build.argv).toEqual(cold.argv);
    expect(build.restore).toBeUndefined();
    expect(build.notes.at(-1)?.lines).toEqual([
      'PATCH /vm {"state":"Paused"}',
      'PUT /snapshot/create {"snapshot_type":"Full","snapshot_path":"STATE","mem_file_path":"/w/memory"}',
    ]);
    expect(templateCmdline(`a ${TEMPLATE_CMDLINE_FLAG}`)).toBe(`a ${TEMPLATE_CMDLINE_FLAG}`);
  });

  it('restore: a fresh process with only its logger and API socket, the steps in one file, plan.restore set', () => {
    const p = firecracker.plan(vmPlan({ template: files }));
    expect(p.argv).toEqual(['/.runcvm/firecracker', '--id', 'ctr-1', '--log-path', '/.runcvm/state/firecracker.log', '--level', 'Warning', '--api-sock', '/.runcvm/state/firecracker.sock']);
    expect(p.argv).not.toContain('--config-file');
    expect(p.restore).toEqual(files);
    expect(p.control).toBe('/.runcvm/state/firecracker.sock');
    expect(p.cleanup).toEqual(['/.runcvm/state/firecracker.sock', '/.runcvm/state/io.vsock']);
    expect(p.listen).toEqual(firecracker.plan(vmPlan()).listen);
    expect(p.files.map((f) => f.path)).toEqual([`/.runcvm/state/${RESTORE_FILE}`]);
    const steps: RestoreSteps = restoreStepsOf(p);
    expect(steps.load).toEqual(snapshotLoad(files, fromVmPlan(vmPlan())).body);
    expect(steps.drives).toEqual([
      { drive_id: 'base', path_on_host: '/.runcvm/disks/base.ext4', is_read_only: true },
      { drive_id: 'upper', path_on_host: '/.runcvm/state/upper.ext4', is_read_only: false },
    ]);
    // what `runcvm plan` shows: the calls in the order start() sends them
    expect(p.notes[0]?.lines.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['PUT /snapshot/load', 'GET /vm/config:', 'PATCH /vm', 'GET /']);
    expect(() => firecracker.plan(vmPlan({ template: files, templateBuild: { memory: '/m' } }))).toThrow(/either restored from a template or builds one/);
  });

  it('`runcvm plan` shows the restore as it runs: the command, the steps file and the calls', () => {
    const text = renderHypervisorView(hypervisorView(firecracker, vmPlan({ template: files })), (argv) => argv.join(' ')).join('\n');
    expect(text).toContain('/.runcvm/firecracker --id ctr-1 --log-path /.runcvm/state/firecracker.log --level Warning --api-sock /.runcvm/state/firecracker.sock');
    expect(text).toContain(`# firecracker file /.runcvm/state/${RESTORE_FILE} (written 0600 by the launcher before the start)`);
    expect(text).toContain('PUT /snapshot/load {"snapshot_path":"/.runcvm/template/state","mem_backend":{"backend_type":"File","backend_path":"/.runcvm/template/memory"},"resume_vm":false');
    expect(text).toContain('PATCH /vm {"state":"Resumed"}');
  });

  it('drivesMismatch: the restored drives must be this container\'s (Firecracker has no drive override on load)', () => {
    const expected = restoreStepsOf(firecracker.plan(vmPlan({ template: files }))).drives;
    const same = { drives: expected.map((d) => ({ ...d, partuuid: null, socket: null })) };
    expect(drivesMismatch(expected, same)).toBeUndefined();
    const builder = { drives: [{ drive_id: 'base', path_on_host: '/tmp/build/base.ext4', is_read_only: true }, expected[1]] };
    expect(drivesMismatch(expected, builder)).toBe(
      "the template's drives are base=/tmp/build/base.ext4 (ro), upper=/.runcvm/state/upper.ext4; this container's are base=/.runcvm/disks/base.ext4 (ro), upper=/.runcvm/state/upper.ext4",
    );
    expect(drivesMismatch(expected, { drives: [expected[0]] })).toMatch(/template's drives are base=/);
    expect(drivesMismatch(expected, {})).toMatch(/template's drives are none/);
  });
});

describe('templateShape: Firecracker\'s part of the key', () => {
  const shapeOf = (over: Partial<VmPlan> = {}) => {
    const s = firecrackerTemplateShape(vmPlan(over));
    if (!s.ok) throw new Error(s.reason);
    return s.shape;
  };

  it('the build and a restore of the same VM have the same shape; taps, MACs, network words and the state dir do not count', () => {
    const s = shapeOf();
    expect(s).toMatchObject({ hypervisor: 'firecracker', api: '1.16.1', 'machine-config': { vcpu_count: 2, mem_size_mib: 256, smt: false }, 'network-interfaces': [{ iface_id: 'net0' }], vsock: { guest_cid: 3 } });
    expect(s.boot_args).toContain(TEMPLATE_CMDLINE_FLAG);
    expect(shapeOf({ templateBuild: { memory: '/m' } })).toEqual(s);
    expect(shapeOf({ template: files })).toEqual(s);
    expect(shapeOf({ nics: [{ id: 'net0', tap: 'tap-other', mac: '02:00:00:00:00:09' }] })).toEqual(s);
    expect(shapeOf({ cmdline: `${vmPlan().cmdline} runcvm.net.if=eth0,02:42:ac:11:00:02,1500,172.17.0.2/16 runcvm.net.dns=1.1.1.1` })).toEqual(s);
    expect(shapeOf({ io: { socket: '/elsewhere/io.sock', portName: 'runcvm.io' }, containerId: 'other' })).toEqual(s);
  });

  it('every frozen part changes it: vCPUs, memory, disk paths and read-only flags, the number of NICs, the command line', () => {
    const s = JSON.stringify(shapeOf());
    const base = vmPlan();
    for (const over of [
      { vcpus: 1 },
      { memoryMiB: 512 },
      { disks: [base.disks[0]!, { ...base.disks[1]!, path: '/other/upper.ext4' }] },
      { disks: [base.disks[0]!, { ...base.disks[1]!, readOnly: true }] },
      { disks: [base.disks[0]!] },
      { nics: [] },
      { cmdline: `${base.cmdline} tsc_early_khz=2000000` },
    ] as Partial<VmPlan>[]) {
      expect(JSON.stringify(shapeOf(over)), JSON.stringify(over)).not.toBe(s);
    }
  });

  it('refuses, with a reason, what cannot be a Firecracker template', () => {
    const reason = (over: Partial<VmPlan>) => {
      const r = firecrackerTemplateShape(vmPlan(over));
      return r.ok ? 'ok' : r.reason;
    };
    expect(reason({ accel: 'tcg' })).toBe('firecracker runs only on KVM (accel tcg)');
    expect(reason({ shares: [{ tag: 'v0', socket: '/s' }] })).toMatch(/vhost-user devices cannot be snapshotted/);
    expect(reason({ cmdline: `${vmPlan().cmdline} runcvm.break=initramfs` })).toMatch(/runcvm.break/);
    expect(reason({ cmdline: `${vmPlan().cmdline} runcvm.debug=1` })).toMatch(/debug/);
    expect(reason({ cmdline: vmPlan().cmdline.replace('root=/dev/vda', 'root=/dev/vdb') })).toMatch(/no Firecracker configuration for this VM: .*root disk must be the first/);
  });

  it('the backend offers it through the Hypervisor interface', () => {
    expect(firecracker.templateShape?.(vmPlan())).toEqual(firecrackerTemplateShape(vmPlan()));
  });
});

describe('the Firecracker version for the key', () => {
  it('parses `firecracker --version`', () => {
    expect(parseFirecrackerVersion('Firecracker v1.16.1\n\n')).toBe('1.16.1');
    expect(parseFirecrackerVersion('Firecracker v1.17.0-dev (fake)\n')).toBe('1.17.0-dev');
    expect(parseFirecrackerVersion('qemu 7.2')).toBeUndefined();
  });
});

describe('the snapshot plans use only what planFirecracker validates', () => {
  it('the restore steps\' drives are the cold configuration\'s drives', () => {
    const cold = planFirecracker(fromVmPlan(vmPlan())).configFile.drives;
    const steps = restoreStepsOf(firecracker.plan(vmPlan({ template: files })));
    expect(steps.drives).toEqual(cold.map((d) => ({ drive_id: d.drive_id, path_on_host: d.path_on_host, is_read_only: d.is_read_only })));
  });
});
