import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { projectPath } from '../../../../../src/core/paths.js';
import { FIRECRACKER_API_SCHEMA } from '../../../../../src/runcvm/hypervisor/firecracker/api-schema.js';
import {
  findEndpoint, FIRECRACKER_VERSION, requestViolations, unsupportedKeywords, violations, type DefinitionName,
} from '../../../../../src/runcvm/hypervisor/firecracker/schema.js';

const problems = (def: DefinitionName, v: unknown) => violations(def, v).map((x) => (x.path ? `${x.path}: ${x.problem}` : x.problem));

describe('schemas/firecracker-api.json', () => {
  it('is the same document as the TS copy the code uses (regenerate with scripts/gen-firecracker-schema.mjs)', () => {
    const json: unknown = JSON.parse(readFileSync(projectPath('schemas', 'firecracker-api.json'), 'utf8'));
    expect(FIRECRACKER_API_SCHEMA).toEqual(json);
  });

  it('names the Firecracker release it was taken from', () => {
    expect(FIRECRACKER_VERSION).toBe('1.16.1');
    expect(FIRECRACKER_API_SCHEMA['x-firecracker'].tag).toBe('v1.16.1');
  });

  it('uses only keywords our validators implement, and every $ref resolves', () => {
    expect(unsupportedKeywords()).toEqual([]);
    const refs = JSON.stringify(FIRECRACKER_API_SCHEMA).match(/#\/definitions\/\w+/g) ?? [];
    for (const r of refs) expect(Object.keys(FIRECRACKER_API_SCHEMA.definitions)).toContain(r.split('/').pop());
  });

  it('covers the endpoints runcvm uses', () => {
    for (const [m, p] of [['GET', '/'], ['PUT', '/boot-source'], ['PUT', '/drives/rootfs'], ['PUT', '/network-interfaces/eth0'], ['PUT', '/machine-config'], ['PUT', '/vsock'], ['PUT', '/actions'], ['PUT', '/logger'], ['PUT', '/metrics']] as const) {
      expect(findEndpoint(m, p), `${m} ${p}`).toBeDefined();
    }
    expect(findEndpoint('PUT', '/drives/rootfs')?.id).toBe('rootfs');
    expect(findEndpoint('PUT', '/drives')).toBeUndefined();
  });
});

describe('the validator rejects what Firecracker rejects', () => {
  it('unknown fields (serde deny_unknown_fields)', () => {
    expect(problems('BootSource', { kernel_image_path: '/k', bootargs: 'x' })).toEqual([
      'unknown field `bootargs`, expected one of `kernel_image_path`, `initrd_path`, `boot_args`',
    ]);
    expect(problems('MachineConfiguration', { vcpu_count: 1, mem_size_mib: 128, memory: 1 })[0]).toMatch(/unknown field `memory`/);
  });

  it('wrong types', () => {
    expect(problems('MachineConfiguration', { vcpu_count: '2', mem_size_mib: 128 })).toEqual(['/vcpu_count: invalid type: expected integer, got string']);
    expect(problems('MachineConfiguration', { vcpu_count: 1.5, mem_size_mib: 128 })).toEqual(['/vcpu_count: invalid type: expected integer, got number']);
    expect(problems('Drive', { drive_id: 'r', is_root_device: 'yes', is_read_only: false, path_on_host: '/x' })).toEqual([
      '/is_root_device: invalid type: expected boolean, got string',
    ]);
    expect(problems('Drive', { drive_id: 'r', is_root_device: true, is_read_only: null, path_on_host: '/x' })).toEqual([
      '/is_read_only: invalid type: expected boolean, got null',
    ]);
  });

  it('missing required fields', () => {
    expect(problems('BootSource', { boot_args: 'console=ttyS0' })).toEqual(['missing field `kernel_image_path`']);
    expect(problems('Drive', { drive_id: 'root' })).toEqual(['missing field `is_root_device`']);
    expect(problems('NetworkInterface', { iface_id: 'eth0' })).toEqual(['missing field `host_dev_name`']);
    expect(problems('Vsock', { uds_path: '/v.sock' })).toEqual(['missing field `guest_cid`']);
    expect(problems('InstanceActionInfo', {})).toEqual(['missing field `action_type`']);
  });

  it('out-of-range and unknown enum values', () => {
    expect(problems('MachineConfiguration', { vcpu_count: 0, mem_size_mib: 128 })).toEqual(['/vcpu_count: 0 is below the minimum 1']);
    expect(problems('MachineConfiguration', { vcpu_count: 33, mem_size_mib: 128 })).toEqual(['/vcpu_count: 33 is above the maximum 32']);
    expect(problems('Vsock', { guest_cid: 2, uds_path: '/v' })).toEqual(['/guest_cid: 2 is below the minimum 3']);
    expect(problems('InstanceActionInfo', { action_type: 'Reboot' })[0]).toMatch(/unknown variant "Reboot"/);
    expect(problems('Drive', { drive_id: 'r', is_root_device: true, cache_type: 'None' })[0]).toMatch(/unknown variant "None"/);
    expect(problems('NetworkInterface', { iface_id: 'eth0', host_dev_name: 'tap0', mtu: 10 })).toEqual(['/mtu: 10 is below the minimum 68']);
  });

  it('malformed MAC addresses', () => {
    expect(problems('NetworkInterface', { iface_id: 'eth0', host_dev_name: 'tap-eth0', guest_mac: '02:42:ac:11:00:02' })).toEqual([]);
    expect(problems('NetworkInterface', { iface_id: 'eth0', host_dev_name: 'tap-eth0', guest_mac: '02-42-ac-11-00-02' })).toHaveLength(1);
    expect(problems('NetworkInterface', { iface_id: 'eth0', host_dev_name: 'tap-eth0', guest_mac: '02:42:ac:11:00' })).toHaveLength(1);
  });

  it('requests: unknown routes, a path id that differs from the body id, bad path ids, bodies where none belong', () => {
    expect(requestViolations('PUT', '/balloon', { amount_mib: 1 })[0]?.problem).toMatch(/no such endpoint/);
    expect(requestViolations('PUT', '/drives/root', { drive_id: 'other', is_root_device: true, is_read_only: true, path_on_host: '/x' })[0]?.problem).toMatch(/does not match/);
    expect(requestViolations('PUT', '/drives/ro-ot', { drive_id: 'ro-ot', is_root_device: true, is_read_only: true, path_on_host: '/x' }).length).toBeGreaterThan(0);
    expect(requestViolations('GET', '/', { x: 1 })[0]?.problem).toMatch(/takes no body/);
    expect(requestViolations('PUT', '/actions', undefined)[0]?.problem).toMatch(/needs a body/);
    expect(requestViolations('PUT', '/actions', { action_type: 'SendCtrlAltDel' })).toEqual([]);
  });

  it('the config file: boot-source and drives are required; top-level keys stay open as in Firecracker', () => {
    expect(problems('VmmConfigFile', { drives: [] })).toEqual(['missing field `boot-source`']);
    expect(problems('VmmConfigFile', { 'boot-source': { kernel_image_path: '/k' } })).toEqual(['missing field `drives`']);
    expect(problems('VmmConfigFile', { 'boot-source': { kernel_image_path: '/k' }, drives: [], balloon: null })).toEqual([]);
    expect(problems('VmmConfigFile', { 'boot-source': { kernel_image_path: '/k' }, drives: [{ drive_id: 'r' }] })).toEqual(['/drives/0: missing field `is_root_device`']);
  });
});
