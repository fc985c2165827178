/**
 * VM templates (issue 17) on real QEMU (TCG) with the real guest kernel and initramfs.
 *
 * "template mechanics": a VM of a container's shape boots parked in its initramfs (runcvm-resume sent PARKED), is
 * saved (device state in a small stream, RAM in a sparse file), and restored: the guest takes RESUME and goes on to
 * probe its disks. A corrupted state file is refused by QEMU and reported as TEMPLATE_LOAD. Every path leaves no
 * QEMU, socket or placeholder file behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { cpuKhzFromCpuinfo } from '../../src/runcvm/hypervisor/accel.js';
import { readCpuinfo } from '../../src/runcvm/hypervisor/facts.js';
import { kernelCmdline } from '../../src/runcvm/hypervisor/index.js';
import { qemu } from '../../src/runcvm/hypervisor/qemu/index.js';
import type { VmPlan } from '../../src/runcvm/hypervisor/types.js';
import { bootAndSave, checkRestore } from '../../src/runcvm/template/boot-and-save.js';
import { isToolError } from '../../src/core/errors.js';
import { requireAssets } from './runcvm/setup.js';

const ASSETS = process.env.RUNCVM_ASSETS || projectPath('var', 'assets');

/** QEMU processes whose command line names `dir` (ours only: other suites run VMs at the same time) */
async function qemuUnder(dir: string): Promise<string[]> {
  const ps = await run('ps', ['-eo', 'pid,args'], { reject: false });
  return ps.stdout.split('\n').filter((l) => l.includes('qemu-system') && l.includes(dir));
}

describe('template mechanics (QEMU: bootAndSave, checkRestore, a refused load)', () => {
  let dir: string;
  let vm: VmPlan;
  const files = () => ({ state: join(dir, 'tmpl', 'state'), memory: join(dir, 'tmpl', 'memory') });
  const opts = (work: string) => ({ workDir: join(dir, work), guestDir: join(ASSETS, 'guest'), timeoutMs: 120_000 });

  beforeAll(async () => {
    await requireAssets();
    dir = await mkdtemp(join(tmpdir(), 'runcvm-tmpl-'));
    await run('mkdir', ['-p', join(dir, 'tmpl'), join(dir, 'build'), join(dir, 'check')]);
    const tscKhz = cpuKhzFromCpuinfo(readCpuinfo());
    // the shape planVm gives a QEMU container with a base + upper disk, the exec agent and one NIC
    vm = {
      accel: 'tcg',
      vcpus: 1,
      memoryMiB: 512,
      kernel: join(ASSETS, 'kernel', 'vmlinux'),
      initrd: join(ASSETS, 'kernel', 'initramfs.img'),
      cmdline: kernelCmdline({ rootDevice: '/dev/vda', upperDevice: '/dev/vdb', debug: false, kernelDebug: false, ...(tscKhz ? { tscKhz } : {}), tscReliable: true, modules: 'none', append: '' }),
      disks: [{ id: 'root', path: '-', readOnly: true }, { id: 'upper', path: '-', readOnly: false }],
      console: { socket: '-' },
      io: { socket: '-', portName: 'runcvm.io' },
      agent: { socket: '-', portName: 'org.runcvm.agent' },
      nics: [{ id: 'net0', tap: 'tap-eth0', mac: '52:54:00:12:34:56' }],
    };
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('boots parked and saves: a small device state, the RAM in a sparse file', async () => {
    await bootAndSave(vm, qemu, files(), opts('build'));
    const state = await stat(files().state);
    const memory = await stat(files().memory);
    expect(state.size).toBeGreaterThan(1024);
    expect(state.size).toBeLessThan(1024 * 1024); // device state only: the RAM stayed in its file
    expect(memory.size).toBe(512 * 1024 * 1024);
    expect(memory.blocks * 512).toBeLessThan(memory.size / 2); // sparse: only what the parked guest touched
    expect(await readdir(join(dir, 'build'))).toEqual([]);
    expect(await qemuUnder(dir)).toEqual([]);
  }, 180_000);

  it('restores: the guest takes RESUME and goes on to its disks', async () => {
    await checkRestore(vm, qemu, files(), opts('check'));
    expect(await readdir(join(dir, 'check'))).toEqual([]);
    expect(await qemuUnder(dir)).toEqual([]);
  }, 180_000);

  it('a corrupted state file: TEMPLATE_LOAD with QEMU\'s reason, nothing left running', async () => {
    const fh = await open(files().state, 'r+');
    const { size } = await fh.stat();
    await fh.write(randomBytes(4096), 0, 4096, Math.floor(size / 2));
    await fh.close();
    const err = await checkRestore(vm, qemu, files(), opts('check')).then(() => undefined, (e: unknown) => e);
    expect(isToolError(err) ? err.code : err).toBe('TEMPLATE_LOAD');
    expect((err as Error).message).toMatch(/could not be loaded by qemu/);
    expect(await readdir(join(dir, 'check'))).toEqual([]);
    expect(await qemuUnder(dir)).toEqual([]);
  }, 180_000);
});
