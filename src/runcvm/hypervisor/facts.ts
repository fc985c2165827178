/** Host facts for the accelerator decision, read where the hypervisor will run (launcher, or `runcvm plan`). */
import { closeSync, constants as fsc, existsSync, openSync, readFileSync } from 'node:fs';
import { cpuFlagsFromCpuinfo, cpuKhzFromCpuinfo, type AccelFacts } from './accel.js';

export function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

export function gatherAccelFacts(cpuinfo = readCpuinfo()): AccelFacts {
  const kvmExists = existsSync('/dev/kvm');
  let kvmOpenable = false;
  if (kvmExists) {
    try {
      closeSync(openSync('/dev/kvm', fsc.O_RDWR));
      kvmOpenable = true;
    } catch {
      kvmOpenable = false;
    }
  }
  return { kvmExists, kvmOpenable, cpuFlags: cpuFlagsFromCpuinfo(cpuinfo), kvmPvm: existsSync('/sys/module/kvm_pvm') };
}

export function tscKhz(cpuinfo = readCpuinfo()): number | undefined {
  return cpuKhzFromCpuinfo(cpuinfo);
}
