import { describe, expect, it } from 'vitest';
import { apiError, exitError, kvmErrno, kvmError } from '../../../../../src/runcvm/hypervisor/firecracker/errors.js';
import { firecrackerCandidates } from '../../../../../src/runcvm/hypervisor/facts.js';
import { selectHypervisor, type HostFacts } from '../../../../../src/runcvm/hypervisor/index.js';

const GUIDE = 'Error: RunWithoutApiError(BuildMicroVMFromJson(StartMicroVM(Kvm(Kvm(Error(19))))))';

describe('Firecracker failures → runcvm errors', () => {
  it('the guide\'s Kvm(Error(19)) becomes a plain KVM error with cause and fix', () => {
    expect(kvmErrno(GUIDE)).toBe(19);
    const e = exitError({ exitCode: 1, signal: null, output: `some log line\n${GUIDE}` });
    expect(e.code).toBe('KVM_UNAVAILABLE');
    expect(e.exitCode).toBe(125);
    expect(e.message).toBe('firecracker cannot start the microVM: KVM is not available on this node (no /dev/kvm)');
    expect(e.causeText).toMatch(/^KVM is not available on this node \(no \/dev\/kvm\): Firecracker reported Kvm\(Error\(19\)\) \(ENODEV/);
    expect(e.fix).toContain('ls -l /dev/kvm');
    expect(e.fix).toMatch(/nested virtualization/);
    expect(e.fix).toMatch(/read\/write access to \/dev\/kvm/);
    expect(e.render().split('\n')[0]).toBe('error: firecracker cannot start the microVM: KVM is not available on this node (no /dev/kvm)');
  });

  it('the API form of the same failure (fault_message with "os error 19")', () => {
    const fault = "Start microvm error: Kvm error: Error creating KVM object: No such device (os error 19) Make sure the user launching the firecracker process is configured on the /dev/kvm file's ACL.";
    expect(apiError({ method: 'PUT', path: '/actions', status: 400, fault, version: '1.16.1' }).code).toBe('KVM_UNAVAILABLE');
  });

  it('the with-API config-file form and other errnos', () => {
    expect(kvmErrno('Error: RunWithApi(BuildFromJson(StartMicroVM(Kvm(Kvm(Error(2))))))')).toBe(2);
    expect(kvmError('Error: RunWithApi(BuildFromJson(StartMicroVM(Kvm(Kvm(Error(13))))))')?.code).toBe('KVM_NO_ACCESS');
    expect(kvmError('Start microvm error: The kernel file cannot be opened: No such file or directory (os error 2)')).toBeUndefined();
  });

  it('other API faults and exits keep Firecracker\'s words', () => {
    const e = apiError({ method: 'PUT', path: '/drives/base', status: 400, fault: 'Unable to create the virtio block device: No such file or directory (os error 2)', version: '1.16.1' });
    expect(e.code).toBe('FIRECRACKER_API');
    expect(e.message).toBe('firecracker rejected PUT /drives/base: Unable to create the virtio block device: No such file or directory (os error 2)');
    const x = exitError({ exitCode: 153, signal: null, output: 'Error: ParseArguments(bad)' });
    expect(x.code).toBe('FIRECRACKER_EXITED');
    expect(x.message).toBe('firecracker exited (exit code 153) before the microVM started: Error: ParseArguments(bad)');
  });
});

describe('hypervisor selection (each backend\'s supports(), in the registry\'s order)', () => {
  const looked = '/.runcvm/guest/bin/firecracker';
  const kvmOk = { kvmExists: true, kvmOpenable: true, cpuFlags: ['vmx'], kvmPvm: false };
  const pvm = { ...kvmOk, kvmPvm: true };
  const facts = (more: Partial<HostFacts> = {}): HostFacts => ({ kvm: kvmOk, firecrackerLookedFor: looked, ...more });
  it('explicit qemu always wins', () => {
    expect(selectHypervisor('qemu', facts({ firecrackerPath: '/fc' }))).toMatchObject({ ok: true, hypervisor: 'qemu', binds: [] });
  });
  it('explicit firecracker needs the binary and a /dev/kvm it can open, and says so plainly', () => {
    const missing = selectHypervisor('firecracker', facts());
    expect(missing.ok).toBe(false);
    if (!missing.ok) {
      expect(missing.error.message).toBe(`RUNCVM_HYPERVISOR=firecracker: firecracker is not installed on this node (looked for ${looked})`);
      expect(missing.error.fix).toContain(`at ${looked}`);
      expect(missing.error.fix).toMatch(/RUNCVM_HYPERVISOR=qemu/);
    }
    const noKvm = selectHypervisor('firecracker', facts({ firecrackerPath: '/fc', kvm: { ...kvmOk, kvmExists: false, kvmOpenable: false } }));
    expect(noKvm.ok).toBe(false);
    if (!noKvm.ok) expect(noKvm.error.code).toBe('FIRECRACKER_NEEDS_KVM');
    // asked for by name, a KVM-PVM host is left to Firecracker itself to refuse (it says why, mapped to cause and fix)
    expect(selectHypervisor('firecracker', facts({ firecrackerPath: '/fc', kvm: pvm }))).toMatchObject({ ok: true, hypervisor: 'firecracker', binds: [{ source: '/fc', destination: '/.runcvm/firecracker' }] });
  });
  it('default: firecracker when present and KVM works, else qemu, saying why', () => {
    expect(selectHypervisor(undefined, facts({ firecrackerPath: '/fc' }))).toMatchObject({ ok: true, hypervisor: 'firecracker' });
    const onPvm = selectHypervisor('auto', facts({ firecrackerPath: '/fc', kvm: pvm }));
    expect(onPvm).toMatchObject({ ok: true, hypervisor: 'qemu', binds: [] });
    expect(onPvm.ok && onPvm.reason).toMatch(/^not firecracker: .*KVM-PVM/);
    expect(selectHypervisor('auto', facts())).toMatchObject({ ok: true, hypervisor: 'qemu' });
  });
  it('looks in RUNCVM_FIRECRACKER, else the guest package then PATH', () => {
    expect(firecrackerCandidates({ RUNCVM_FIRECRACKER: '/opt/fc' }, '/g/bin')).toEqual(['/opt/fc']);
    expect(firecrackerCandidates({ PATH: '/usr/bin:/bin/' }, '/g/bin/')).toEqual(['/g/bin/firecracker', '/usr/bin/firecracker', '/bin/firecracker']);
  });
});
