/**
 * What the Firecracker tests share about the schema-checking fake VMM (test/fixtures/fake-firecracker): where it is,
 * its request log, starting the driver against it, and raw API requests that bypass our client's own schema check.
 */
import { request } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CloserStack } from '../../src/core/fsx/index.js';
import { isToolError, type ToolError } from '../../src/core/errors.js';
import { projectPath } from '../../src/core/paths.js';
import { firecracker } from '../../src/runcvm/hypervisor/firecracker/index.js';
import { kernelCmdline, type HypervisorPlan, type RunningVm, type VmPlan } from '../../src/runcvm/hypervisor/index.js';

export const FAKE_FIRECRACKER = projectPath('test', 'fixtures', 'fake-firecracker', 'fake-firecracker.mjs');

/** One line of the fake's request log (FAKE_FC_LOG): what it was asked and what it answered. */
export interface FakeLogEntry {
  method: string;
  path: string;
  body?: unknown;
  status: number;
  fault?: string;
}

export function readFakeLog(path: string): FakeLogEntry[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as FakeLogEntry);
}

/** The driver's start, each VM killed by `closers`; startFails returns the ToolError a start was expected to throw. */
export function firecrackerStarter(closers: CloserStack): { start(plan: HypervisorPlan): Promise<RunningVm>; startFails(plan: HypervisorPlan): Promise<ToolError> } {
  const start = async (plan: HypervisorPlan): Promise<RunningVm> => {
    const vm = await firecracker.start(plan, { onStdout: () => undefined });
    closers.push(`kill fake firecracker ${vm.pid}`, () => vm.kill());
    return vm;
  };
  const startFails = async (plan: HypervisorPlan): Promise<ToolError> => {
    try {
      const vm = await start(plan);
      vm.kill();
    } catch (err) {
      if (isToolError(err)) return err;
      throw err;
    }
    throw new Error('start was expected to fail');
  };
  return { start, startFails };
}

export interface RawAnswer {
  status: number;
  body: { fault_message?: string; state?: string } | undefined;
}

/** A raw request that bypasses our client's own schema check, to see what the fake (like Firecracker) answers. */
export function rawApi(socketPath: string, method: string, path: string, body?: unknown): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath, method, path, headers: payload ? { 'Content-Type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as RawAnswer['body']) : undefined }));
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/**
 * A container's VmPlan for the fake: the shared test disks and kernel files in `dir`, this container's sockets in its
 * own `work` dir (Firecracker's sockets must not exist beforehand); `over` sets what a test cares about.
 */
export function fakeVmPlan(dir: string, work: string, containerId: string, over: Partial<VmPlan> = {}): VmPlan {
  return {
    containerId,
    accel: 'kvm',
    vcpus: 1,
    memoryMiB: 64,
    kernel: join(dir, 'vmlinux'),
    initrd: join(dir, 'initramfs.img'),
    cmdline: kernelCmdline({ rootDevice: '/dev/vda', upperDevice: '/dev/vdb', debug: false, kernelDebug: false, append: '' }),
    disks: [
      { id: 'base', path: join(dir, 'base.ext4'), readOnly: true },
      { id: 'upper', path: join(dir, 'upper.ext4'), readOnly: false },
    ],
    console: { socket: join(work, 'console.sock') },
    io: { socket: join(work, 'io.sock'), portName: 'runcvm.io' },
    nics: [{ id: 'net0', tap: 'tap-eth0', mac: '02:42:ac:11:00:02' }],
    ...over,
  };
}
