import { describe, expect, it } from 'vitest';
import { cpuFlagsFromCpuinfo, cpuKhzFromCpuinfo, decideAccel, kvmProblem, type AccelFacts } from '../../../src/runcvm/hypervisor/accel.js';

const CPUINFO_PVM = 'processor\t: 0\nvendor_id\t: GenuineIntel\ncpu MHz\t\t: 2199.998\nflags\t\t: fpu vme de pse tsc msr pae hypervisor lahf_lm\n';
const CPUINFO_VMX = 'processor\t: 0\ncpu MHz\t\t: 3000.000\nflags\t\t: fpu vme vmx ept\n';
const good: AccelFacts = { kvmExists: true, kvmOpenable: true, cpuFlags: cpuFlagsFromCpuinfo(CPUINFO_VMX), kvmPvm: false };

describe('accelerator decision', () => {
  it('KVM when usable, TCG otherwise (with the reason), TCG when forced', () => {
    expect(decideAccel('auto', good)).toEqual({ ok: true, accel: 'kvm', reason: 'KVM is usable' });
    expect(decideAccel('tcg', good)).toEqual({ ok: true, accel: 'tcg', reason: 'RUNCVM_ACCEL=tcg' });
    const noKvm = { ...good, kvmExists: false, kvmOpenable: false };
    const d = decideAccel('auto', noKvm);
    expect(d).toMatchObject({ ok: true, accel: 'tcg' });
    expect(d.reason).toMatch(/\/dev\/kvm does not exist.*TCG/);
  });
  it('RUNCVM_ACCEL=kvm refuses TCG and says why', () => {
    expect(decideAccel('kvm', { ...good, kvmPvm: true })).toEqual({ ok: false, reason: expect.stringMatching(/KVM-PVM/) });
  });
  it('each problem is named: missing, not openable, no vmx/svm, PVM', () => {
    expect(kvmProblem({ ...good, kvmExists: false })).toMatch(/does not exist/);
    expect(kvmProblem({ ...good, kvmOpenable: false })).toMatch(/cannot be opened/);
    expect(kvmProblem({ ...good, cpuFlags: cpuFlagsFromCpuinfo(CPUINFO_PVM) })).toMatch(/neither vmx nor svm/);
    expect(kvmProblem({ ...good, kvmPvm: true })).toMatch(/KVM-PVM/);
    expect(kvmProblem(good)).toBeUndefined();
  });
  it('reads flags and the TSC frequency from cpuinfo', () => {
    expect(cpuFlagsFromCpuinfo(CPUINFO_VMX)).toContain('vmx');
    expect(cpuKhzFromCpuinfo(CPUINFO_PVM)).toBe(2199998);
    expect(cpuKhzFromCpuinfo('nothing')).toBeUndefined();
  });
});

describe('the node KVM device (RUNCVM_KVM_DEVICE, runtime env only)', () => {
  it('defaults to /dev/kvm, takes an absolute path, refuses a relative one with the fix', async () => {
    const { kvmDevicePath } = await import('../../../src/runcvm/hypervisor/facts.js');
    expect(kvmDevicePath({})).toBe('/dev/kvm');
    expect(kvmDevicePath({ RUNCVM_KVM_DEVICE: '' })).toBe('/dev/kvm');
    expect(kvmDevicePath({ RUNCVM_KVM_DEVICE: '/srv/kvm' })).toBe('/srv/kvm');
    expect(() => kvmDevicePath({ RUNCVM_KVM_DEVICE: 'dev/kvm' })).toThrow(/RUNCVM_KVM_DEVICE="dev\/kvm" is not valid: not an absolute path/);
  });
  it('the facts are read from that path, and each problem names it', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { gatherAccelFacts } = await import('../../../src/runcvm/hypervisor/facts.js');
    const dir = mkdtempSync(join(tmpdir(), 'kvm-facts-'));
    try {
      writeFileSync(join(dir, 'kvm'), '');
      const standIn = gatherAccelFacts(CPUINFO_VMX, join(dir, 'kvm'));
      expect(standIn).toMatchObject({ kvmDevice: join(dir, 'kvm'), kvmExists: true, kvmOpenable: true });
      expect(kvmProblem({ ...standIn, kvmPvm: false })).toBeUndefined();
      const missing = gatherAccelFacts(CPUINFO_VMX, join(dir, 'none'));
      expect(kvmProblem(missing)).toBe(`${join(dir, 'none')} does not exist`);
      const folder = gatherAccelFacts(CPUINFO_VMX, dir);
      expect(folder).toMatchObject({ kvmExists: true, kvmOpenable: false });
      expect(kvmProblem(folder)).toMatch(new RegExp(`^${dir} cannot be opened read/write`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
