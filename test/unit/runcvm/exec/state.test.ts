import { describe, expect, it } from 'vitest';
import { hypervisorVerdict, stateVerdict } from '../../../../src/runcvm/exec/main.js';

describe('stateVerdict: exec only into a running container, else a message naming the state', () => {
  it('running (or unknown to runc: runc exec reports that itself) passes', () => {
    expect(stateVerdict('abc', 'running')).toBeUndefined();
    expect(stateVerdict('abc', undefined)).toBeUndefined();
  });
  it('stopped, paused, created: the exact message, exit 255 (runc\'s exec failure code), and a fix', () => {
    const s = stateVerdict('abc', 'stopped')!;
    expect(s.message).toBe('cannot exec: container abc is stopped');
    expect(s.exitCode).toBe(255);
    expect(s.render()).toBe(
      'error: cannot exec: container abc is stopped\n' +
        'cause: a command can only be run in a running container (its VM is up); a stopped container has none.\n' +
        'fix: start it again (e.g. `ctr task start abc` after `ctr task delete abc`, or `docker start abc`), then exec.',
    );
    expect(stateVerdict('abc', 'paused')!.message).toBe('cannot exec: container abc is paused');
    expect(stateVerdict('abc', 'paused')!.fix).toContain('ctr task resume abc');
    expect(stateVerdict('abc', 'created')!.fix).toContain('its VM boots at start');
  });
});

describe('hypervisorVerdict', () => {
  it('QEMU (agent port) and Firecracker (vsock port 1025) VMs are served; an unknown hypervisor gets a plain refusal', () => {
    expect(hypervisorVerdict('abc', 'qemu')).toBeUndefined();
    expect(hypervisorVerdict('abc', 'firecracker')).toBeUndefined();
    expect(hypervisorVerdict('abc', undefined)).toBeUndefined();
    const f = hypervisorVerdict('abc', 'cloud-hypervisor')!;
    expect(f.message).toBe('cannot exec in container abc: exec into cloud-hypervisor VMs is not supported');
    expect(f.exitCode).toBe(255);
    expect(f.fix).toContain('RUNCVM_HYPERVISOR=qemu or firecracker');
  });
});
