/** Machine: vCPUs and memory from the container's cpu/memory limits (already in the VmPlan). Pure. */
import { assertValid } from './schema.js';
import type { DevicePlan, FirecrackerVmInput, MachineConfigBody } from './types.js';

/** Firecracker's vCPU range (its API rejects more). */
export const FIRECRACKER_MAX_VCPUS = 32;

export function machineConfig(input: Pick<FirecrackerVmInput, 'vcpus' | 'memoryMiB'>): DevicePlan {
  const body: MachineConfigBody = {
    vcpu_count: Math.min(FIRECRACKER_MAX_VCPUS, Math.max(1, Math.floor(input.vcpus))),
    mem_size_mib: Math.max(1, Math.floor(input.memoryMiB)),
    smt: false,
  };
  assertValid('MachineConfiguration', body, 'machine-config');
  return { calls: [{ method: 'PUT', path: '/machine-config', body }], config: { 'machine-config': body } };
}
