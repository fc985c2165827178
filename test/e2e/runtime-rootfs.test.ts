/**
 * Root filesystem: a debootstrap image (> 200 MB) and an image holding a 300 MB file (larger than the default
 * RUNCVM_ROOTFS_SIZE of 256M) run intact (same checksums as under runc: nothing truncated); the base disk is built
 * once per image and reused (the cache holds one disk per image, the second run builds nothing); the writable layer
 * honours RUNCVM_ROOTFS_SIZE and takes writes larger than the default.
 */
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloserStack } from '../../src/core/fsx/index.js';
import type { StartedContainerd } from '../harness/services/containerd.js';
import { pushDebootstrapImage } from '../harness/images.js';
import { ctrRunIn, leftovers, pushVariant, readDebugLogs, startRuncvmSuite, summary, type RuntimeFixture } from './runcvm/setup.js';

const closers = new CloserStack();
let cd: StartedContainerd;
let fx: RuntimeFixture;
let debian: string;
let bigfile: string;
let seq = 0;

async function ctrRun(rt: 'runc' | 'runcvm', image: string, cmd: string[], env: string[] = []) {
  const r = await ctrRunIn(cd, { runtime: rt === 'runcvm' ? fx.wrapper : 'runc', image, id: `r${++seq}-${rt}`, cmd, env, timeoutMs: 300_000 });
  return summary(r);
}

const disks = async () => (await readdir(fx.cacheDir)).filter((n) => n.endsWith('.ext4')).sort();

describe('runcvm root filesystem: large images, no truncation, cached base disks', () => {
  beforeAll(async () => {
    ({ fx, cd, images: [debian, bigfile] } = await startRuncvmSuite(closers, {
      images: async (reg) => [await pushDebootstrapImage(reg), await pushVariant(reg, 'bigfile', { bigFileMiB: 300 })],
      pullTimeoutMs: 300_000,
    }));
  }, 900_000);
  afterAll(async () => {
    await closers.close();
  });

  it('a debootstrap image over 200 MB runs intact, and its base disk is built once then reused', async () => {
    const cmd = ['sh', '-c', 'cat /etc/debian_version; find /usr /etc /var -type f -printf "%s\\n" | awk "{s+=\\$1} END {print s}"; find /usr /etc /var -type f -printf "%p %s %m\\n" | sort | md5sum; dpkg -l | grep -c ^ii; sha256sum /usr/bin/dpkg'];
    const runc = await ctrRun('runc', debian, cmd);
    expect(Number(runc.stdout.split('\n')[1])).toBeGreaterThan(100 * 1024 * 1024);
    const first = await ctrRun('runcvm', debian, cmd);
    expect(first).toEqual(runc);
    const afterFirst = await disks();
    expect(afterFirst).toHaveLength(1);
    const second = await ctrRun('runcvm', debian, cmd, ['RUNCVM_LOG_LEVEL=DEBUG']);
    // with DEBUG the guest console (initramfs and init step logs) is on stdout too
    expect(second.stdout).toContain(runc.stdout);
    expect(await disks()).toEqual(afterFirst);
    expect(await readDebugLogs(fx)).toContain('base disk cache hit');
  }, 900_000);

  it('a 300 MB file (larger than the default 256M) is not truncated, and 300 MB more can be written', async () => {
    const cmd = ['sh', '-c', 'ls -l /big.bin | awk "{print \\$5}"; md5sum /big.bin'];
    const runc = await ctrRun('runc', bigfile, cmd);
    expect(runc.stdout).toMatch(/^314572800\n/);
    expect(await ctrRun('runcvm', bigfile, cmd)).toEqual(runc);
    const write = await ctrRun('runcvm', bigfile, ['sh', '-c', 'dd if=/dev/zero of=/written bs=1M count=300 2>/dev/null && ls -l /written | awk "{print \\$5}"']);
    expect(write).toEqual({ exit: 0, stdout: '314572800\n', stderr: '' });
  }, 900_000);

  it('RUNCVM_ROOTFS_SIZE sets the writable size', async () => {
    const r = await ctrRun('runcvm', bigfile, ['sh', '-c', 'df -m / | tail -1 | awk "{print \\$2}"'], ['RUNCVM_ROOTFS_SIZE=1G']);
    expect(r.exit).toBe(0);
    expect(Number(r.stdout.trim())).toBeGreaterThan(900);
  }, 600_000);

  it('leaves nothing behind but the cache', async () => {
    const left = await leftovers(fx);
    // the DEBUG run keeps its debug log on purpose (RUNCVM_LOG_LEVEL=DEBUG)
    expect(left.logs.length).toBeLessThanOrEqual(1);
    expect({ ...left, logs: [] }).toEqual({ qemu: [], state: [], logs: [], configCopies: [] });
  });
});
