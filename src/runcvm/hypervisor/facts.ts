/** Host facts for the accelerator decision, read where the hypervisor will run (launcher, or `runcvm plan`). */
import { closeSync, constants as fsc, existsSync, openSync, readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { cpuFlagsFromCpuinfo, cpuKhzFromCpuinfo, type AccelFacts } from './accel.js';
import { runcvmErrors } from '../errors.js';

/** The KVM device inside a runcvm container (the runtime passes the node's device in under this path). */
export const KVM_DEVICE = '/dev/kvm';

/**
 * The node's KVM device: RUNCVM_KVM_DEVICE from the runtime's own environment (the engine's configuration, never a
 * container's env, so a container cannot point the runtime at another host file), default /dev/kvm. A node admin
 * uses it where the device lives elsewhere; the tests point it at a missing path, an unusable file or a stand-in to
 * set the node's KVM state themselves, whatever the machine has.
 */
export function kvmDevicePath(nodeEnv: Record<string, string | undefined>): string {
  const value = nodeEnv.RUNCVM_KVM_DEVICE;
  if (!value) return KVM_DEVICE;
  if (!isAbsolute(value)) {
    throw runcvmErrors.fail('BAD_NODE_SETTING', { name: 'RUNCVM_KVM_DEVICE', value, problem: 'not an absolute path', fix: "set it to the absolute path of the node's KVM device in the runtime's environment, or unset it (default /dev/kvm)" });
  }
  return value;
}

export function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

export function gatherAccelFacts(cpuinfo = readCpuinfo(), device = KVM_DEVICE): AccelFacts {
  const kvmExists = existsSync(device);
  let kvmOpenable = false;
  if (kvmExists) {
    try {
      closeSync(openSync(device, fsc.O_RDWR));
      kvmOpenable = true;
    } catch {
      kvmOpenable = false;
    }
  }
  return { kvmDevice: device, kvmExists, kvmOpenable, cpuFlags: cpuFlagsFromCpuinfo(cpuinfo), kvmPvm: existsSync('/sys/module/kvm_pvm') };
}

export function tscKhz(cpuinfo = readCpuinfo()): number | undefined {
  return cpuKhzFromCpuinfo(cpuinfo);
}
