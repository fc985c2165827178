/**
 * Failures name their cause and fix, exit non-zero, and leave nothing behind: missing kernel asset (at create, seen
 * through ctr), RUNCVM_ACCEL=kvm on a host where KVM is unusable (KVM-PVM here), a hypervisor that dies (a kernel
 * file QEMU cannot load), a bad setting, firecracker when it is not installed, and an image too large for its disk;
 * and a debug-log path someone else took, which must not stop the container (guide 8).
 */
import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloserStack } from '../../src/core/fsx/index.js';
import { projectPath } from '../../src/core/paths.js';
import type { StartedContainerd } from '../harness/services/containerd.js';
import { mkext4 } from '../../src/runcvm/storage/apply.js';
import { isToolError } from '../../src/core/errors.js';
import { ctrRunIn, leftovers, startRuncvmSuite, summary, type RuntimeFixture } from './runcvm/setup.js';

const closers = new CloserStack();
let cd: StartedContainerd;
let fx: RuntimeFixture;
let image: string;
let seq = 0;

async function ctrRun(wrapper: string, cmd: string[], env: string[] = []) {
  return summary(await ctrRunIn(cd, { runtime: wrapper, image, id: `e${++seq}`, cmd, env, timeoutMs: 180_000 }));
}

describe('runcvm errors: cause and fix, non-zero exit, no leftovers', () => {
  beforeAll(async () => {
    ({ fx, cd, image } = await startRuncvmSuite(closers));
  });
  afterAll(async () => {
    await closers.close();
  });

  it('missing kernel asset: create fails, ctr shows the cause and the fix', async () => {
    const assets = join(fx.dir, 'assets-no-kernel');
    await mkdir(join(assets, 'kernel'), { recursive: true });
    await symlink(projectPath('var', 'assets', 'guest'), join(assets, 'guest'));
    const wrapper = await fx.wrapperWith('no-kernel', { RUNCVM_ASSETS: assets });
    const r = await ctrRun(wrapper, ['true']);
    expect(r.exit).not.toBe(0);
    expect(r.stderr).toContain(`guest kernel not found: ${join(assets, 'kernel', 'vmlinux')}`);
    expect(r.stderr).toContain('bash scripts/assets/10-kernel.sh');
  });

  it('RUNCVM_ACCEL=kvm where KVM is unusable: exit 125 with the reason, no silent TCG', async () => {
    const r = await ctrRun(fx.wrapper, ['echo', 'never'], ['RUNCVM_ACCEL=kvm']);
    expect(r.exit).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/RUNCVM_ACCEL=kvm but KVM is not usable here: /);
    expect(r.stderr).toMatch(/fix: .*RUNCVM_ACCEL=tcg/);
  });

  it('a hypervisor that dies: the container exits non-zero with the reason', async () => {
    // a kernel the node itself names (RUNCVM_KERNEL in the runtime's environment: any regular file of the node)
    const junk = join(fx.dir, 'junk-vmlinux');
    await writeFile(junk, 'this is not a kernel\n');
    const r = await ctrRun(await fx.wrapperWith('junk-kernel', { RUNCVM_KERNEL: junk }), ['echo', 'never']);
    expect(r.exit).toBe(125);
    expect(r.stderr).toMatch(/the hypervisor qemu exited \(exit code 1\) before the workload reported its exit status: .*kernel/i);
  });

  it('a bad setting is refused at create with its fix', async () => {
    const r = await ctrRun(fx.wrapper, ['true'], ['RUNCVM_ROOTFS_SIZE=lots']);
    expect(r.exit).not.toBe(0);
    expect(r.stderr).toContain('RUNCVM_ROOTFS_SIZE="lots" is not valid');
  });

  it('RUNCVM_HYPERVISOR=firecracker without firecracker: reported as not installed', async () => {
    const r = await ctrRun(fx.wrapper, ['true'], ['RUNCVM_HYPERVISOR=firecracker']);
    expect(r.exit).not.toBe(0);
    expect(r.stderr).toMatch(/firecracker is not installed/);
  });

  it('an image too large for its disk names the cause and the fix (mke2fs ENOSPC)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'runcvm-enospc-'));
    try {
      await writeFile(join(dir, 'big'), Buffer.alloc(8 * 1024 * 1024, 1));
      const err = await mkext4(dir, join(dir, 'x.ext4'), { bytes: 4 * 1024 * 1024, inodes: 64 }, { journal: false, label: 't', which: 'base', id: 't', usage: { bytes: 8 << 20, inodes: 2 } }).catch((e: unknown) => e);
      expect(isToolError(err) && err.code).toBe('ROOTFS_TOO_LARGE');
      expect(isToolError(err) && err.render()).toMatch(/fix: raise RUNCVM_ROOTFS_SIZE/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('guide 8: a debug-log path already taken (a symlink, a folder) neither stops the container nor is followed', async () => {
    // a symlink planted at the container's log path must not make the runtime append to (or chmod) its target
    const victim = join(fx.dir, 'victim');
    await writeFile(victim, 'untouched\n', { mode: 0o644 });
    const linkId = `e${seq + 1}`;
    const link = join(fx.logDir, `runcvm-${linkId}.debug`);
    await symlink(victim, link);
    try {
      const r = await ctrRun(fx.wrapper, ['echo', 'ran']);
      expect(r.exit, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^ran$/m);
      expect(await readFile(victim, 'utf8')).toBe('untouched\n');
      expect((await stat(victim)).mode & 0o777).toBe(0o644);
      expect((await lstat(link)).isSymbolicLink()).toBe(true);
    } finally {
      await rm(link, { force: true });
    }
    // a folder there (what made create fail before): the container runs, with DEBUG too, and the folder is left alone
    const dirId = `e${seq + 1}`;
    const taken = join(fx.logDir, `runcvm-${dirId}.debug`);
    await mkdir(taken);
    try {
      const r = await ctrRun(fx.wrapper, ['echo', 'ran'], ['RUNCVM_LOG_LEVEL=DEBUG']);
      expect(r.exit, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^ran$/m);
      expect((await stat(taken)).isDirectory()).toBe(true);
    } finally {
      await rm(taken, { recursive: true, force: true });
    }
  });

  it('every failure path cleaned up after itself', async () => {
    expect(await leftovers(fx)).toEqual({ qemu: [], state: [], logs: [], configCopies: [] });
  });
});
