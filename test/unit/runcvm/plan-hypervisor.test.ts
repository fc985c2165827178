import { describe, expect, it } from 'vitest';
import { hypervisorView, renderHypervisorView } from '../../../src/runcvm/plan/plan-hypervisor.js';
import { shellQuote } from '../../../src/runcvm/plan/main.js';
import { HYPERVISORS, planVm, type VmPlan } from '../../../src/runcvm/hypervisor/index.js';
import { requestViolations, violations, type HttpMethod } from '../../../src/runcvm/hypervisor/firecracker/schema.js';
import { fromVmPlan, planFirecracker } from '../../../src/runcvm/hypervisor/firecracker/plan.js';
import { buildLaunchSpec } from '../../../src/runcvm/launch/build.js';
import { parseSettings } from '../../../src/runcvm/launch/settings.js';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';

const oci = { process: { args: ['sh', '-c', 'echo hi'], env: ['PATH=/bin'], cwd: '/' }, root: { path: 'rootfs' } } as unknown as OciSpec;
const plan = (env: Record<string, string>): VmPlan => planVm(buildLaunchSpec(oci, { containerId: 'web_1', settings: parseSettings(env), debugLog: false }), 'kvm', {});

describe('runcvm plan: the hypervisor part', () => {
  it('Firecracker: the direct command line with --id/--api-sock/--config-file, the config file, the API calls and the stop call', () => {
    const v = hypervisorView(HYPERVISORS.firecracker, plan({ RUNCVM_HYPERVISOR: 'firecracker' }));
    expect(v.name).toBe('firecracker');
    expect(v.error).toBeUndefined();
    expect(v.argv).toEqual([
      '/.runcvm/firecracker', '--id', 'web-1', '--log-path', '/.runcvm/state/firecracker.log', '--level', 'Warning',
      '--api-sock', '/.runcvm/state/firecracker.sock', '--config-file', '/.runcvm/state/firecracker.json',
    ]);
    expect(v.files?.map((f) => f.path)).toEqual(['/.runcvm/state/firecracker.json']);
    const doc = JSON.parse(v.files![0]!.content) as Record<string, unknown>;
    expect(violations('VmmConfigFile', doc)).toEqual([]);
    // the calls stand for the same configuration as the file, in an order Firecracker accepts, each schema-valid
    const calls = planFirecracker(fromVmPlan(plan({ RUNCVM_HYPERVISOR: 'firecracker' }))).calls;
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual(['PUT /machine-config', 'PUT /boot-source', 'PUT /drives/base', 'PUT /drives/upper', 'PUT /vsock', 'PUT /actions']);
    for (const c of calls) expect(requestViolations(c.method as HttpMethod, c.path, c.body)).toEqual([]);
    expect(calls.find((c) => c.path === '/boot-source')?.body).toEqual(doc['boot-source']);
    expect(calls.find((c) => c.path === '/vsock')?.body).toEqual(doc.vsock);
    expect(calls.at(-1)?.body).toEqual({ action_type: 'InstanceStart' });
    expect(v.notes?.map((n) => n.title)).toEqual([
      'the same configuration as firecracker API calls (PUT on the API socket before InstanceStart)',
      'on a stop signal before the guest connects (then SIGKILL after a bounded wait)',
    ]);
    expect(v.notes?.[0]?.lines).toEqual(calls.map((c) => `${c.method} ${c.path} ${JSON.stringify(c.body)}`));
    expect(v.notes?.[1]?.lines).toEqual(['PUT /actions {"action_type":"SendCtrlAltDel"}']);

    const text = renderHypervisorView(v, shellQuote).join('\n');
    expect(text).toContain(`# firecracker command (inside the container)\n${shellQuote(v.argv!)}\n`);
    expect(text).toContain('# firecracker file /.runcvm/state/firecracker.json (written 0600 by the launcher before the start)\n{\n');
    expect(text).toContain('PUT /actions {"action_type":"InstanceStart"}');
    expect(text).toContain('# on a stop signal before the guest connects (then SIGKILL after a bounded wait)\nPUT /actions {"action_type":"SendCtrlAltDel"}');
  });

  it('QEMU: the command through the package loader, as before, and nothing Firecracker-specific', () => {
    const p = plan({});
    const v = hypervisorView(HYPERVISORS.qemu, p);
    expect(v.argv?.slice(0, 4)).toEqual(['/.runcvm/guest/lib/ld', '--library-path', '/.runcvm/guest/lib', '/.runcvm/guest/bin/qemu-system-x86_64']);
    expect(v.argv).toEqual(HYPERVISORS.qemu.plan(p).argv);
    expect(v.files).toBeUndefined();
    expect(v.notes).toBeUndefined();
    expect(renderHypervisorView(v, shellQuote)).toEqual(['# qemu command (inside the container)', shellQuote(v.argv!), '']);
  });

  it('a plan Firecracker cannot express is shown as the reason, not a crash', () => {
    const p = plan({ RUNCVM_HYPERVISOR: 'firecracker' });
    const v = hypervisorView(HYPERVISORS.firecracker, { ...p, disks: [...p.disks].reverse(), cmdline: p.cmdline.replace('root=/dev/vda', 'root=/dev/vdb') });
    expect(v.argv).toBeUndefined();
    expect(v.error).toMatch(/root disk must be the first disk/);
    expect(renderHypervisorView(v, shellQuote)[1]).toMatch(/^not available: firecracker: the root disk/);
  });
});
