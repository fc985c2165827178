import { describe, expect, it } from 'vitest';
import { HYPERVISORS, planVm } from '../../../../../src/runcvm/hypervisor/index.js';
import { instanceId } from '../../../../../src/runcvm/hypervisor/firecracker/plan.js';
import { EXEC_VSOCK_PORT } from '../../../../../src/runcvm/hypervisor/firecracker/vsock.js';
import { EXEC_PATHS } from '../../../../../src/runcvm/agent/exec.js';
import { buildLaunchSpec } from '../../../../../src/runcvm/launch/build.js';
import { parseSettings } from '../../../../../src/runcvm/launch/settings.js';
import type { OciSpec } from '../../../../../src/runcvm/launch/oci.js';

const oci = { process: { args: ['true'], env: [], cwd: '/' }, root: { path: 'rootfs' } } as unknown as OciSpec;
const planFor = (containerId: string, hypervisor: 'firecracker' | 'qemu') =>
  planVm(buildLaunchSpec(oci, { containerId, settings: parseSettings({ RUNCVM_HYPERVISOR: hypervisor }), debugLog: false }), 'kvm', {});
const idArg = (args: string[]) => args[args.indexOf('--id') + 1];

/** Firecracker's own check of --id (validate_instance_id): 1 to 64 bytes, alphanumeric or '-'. */
const firecrackerAccepts = (id: string) => Buffer.byteLength(id) >= 1 && Buffer.byteLength(id) <= 64 && /^[A-Za-z0-9-]+$/.test(id);

describe('instanceId: a container id made acceptable to Firecracker', () => {
  it('keeps ids Firecracker accepts as they are (docker / Kubernetes ids are 64 hex digits)', () => {
    const docker = 'f'.repeat(24) + '0123456789abcdef'.repeat(2) + '89abcdef';
    expect(docker).toHaveLength(64);
    expect(instanceId(docker)).toBe(docker);
    expect(instanceId('web-1')).toBe('web-1');
  });
  it("replaces what containerd allows and Firecracker does not ('.', '_', non-ASCII) and truncates to 64", () => {
    expect(instanceId('fc_boot.1')).toBe('fc-boot-1');
    expect(instanceId('café')).toBe('caf-');
    expect(instanceId('a'.repeat(100))).toBe('a'.repeat(64));
    expect(instanceId('')).toBe('runcvm');
    for (const id of ['fc_boot.1', 'x'.repeat(200), 'é'.repeat(40), 'k8s_POD_web_default_0', '', '...']) expect(firecrackerAccepts(instanceId(id)), id).toBe(true);
  });
});

describe('the launcher path gets the container id, the API socket and the exec port', () => {
  it('--id is the sanitised container id (no longer the fixed "runcvm")', () => {
    expect(planFor('fc_boot.1', 'firecracker').containerId).toBe('fc_boot.1');
    expect(idArg(HYPERVISORS.firecracker.plan(planFor('fc_boot.1', 'firecracker')).argv)).toBe('fc-boot-1');
    // a plan made for no container keeps a valid id
    const { containerId: _c, ...anonymous } = planFor('x', 'firecracker');
    expect(idArg(HYPERVISORS.firecracker.plan(anonymous).argv)).toBe('runcvm');
  });

  it('Firecracker: API socket for the orderly shutdown, exec agent on <uds_path>_1025 next to io on _1024', () => {
    const plan = planFor('c1', 'firecracker');
    const p = HYPERVISORS.firecracker.plan(plan);
    expect(p.control).toBe('/.runcvm/state/firecracker.sock');
    expect(p.argv[p.argv.indexOf('--api-sock') + 1]).toBe(p.control);
    expect(EXEC_VSOCK_PORT).toBe(1025);
    expect(p.listen.io).toBe('/.runcvm/state/io.vsock_1024');
    expect(p.listen.agent).toBe('/.runcvm/state/io.vsock_1025');
    // the uds path itself is Firecracker's (removed first); the launcher's listeners are the _PORT paths
    expect(p.cleanup).toContain('/.runcvm/state/io.vsock');
    // no agent in the plan: no exec port
    const { agent: _a, ...noAgent } = plan;
    expect(HYPERVISORS.firecracker.plan(noAgent).listen.agent).toBeUndefined();
  });

  it('QEMU: no control socket, the exec mux on the agent port chardev', () => {
    const plan = planFor('c1', 'qemu');
    const p = HYPERVISORS.qemu.plan(plan);
    expect(p.control).toBeUndefined();
    expect(p.listen.agent).toBe(EXEC_PATHS.portSocket);
    expect(p.argv.join(' ')).not.toContain('c1'); // QEMU's argv does not depend on the containerId field
  });
});
