/**
 * The node/container trust boundary of the runtime's settings (issue 12, items 1, 5 and 6), as a hostile image or pod
 * author would try it through containerd (`ctr run --runc-binary <fixture wrapper>`):
 * - RUNCVM_KERNEL from the container's environment names a host path: outside the node-approved kernel folder it is
 *   refused at create, before the host is looked at, with one message whether the path is a file (/etc/shadow, which
 *   QEMU used to read), a folder (/, which used to mount the host root into the launcher) or missing (no existence
 *   oracle). With RUNCVM_KERNEL=/ the old runtime then let RUNCVM_DISKS create a root-owned image on a host submount
 *   through /.runcvm/kernel-custom/vmlinux/…: nothing is created now.
 * - a kernel inside the approved folder (RUNCVM_KERNELS_DIR on the node) is used; a symlink there that leads out of
 *   it is refused like any outside path.
 * - disk sizes a container asks for stay under the node's caps (RUNCVM_MAX_ROOTFS_SIZE, RUNCVM_MAX_DISK_SIZE): the
 *   old runtime made a 4 TiB sparse disk in the state folder (/run: node memory) for RUNCVM_ROOTFS_SIZE=4T.
 * - the error text names the container's debug log where RUNCVM_LOG_DIR puts it, not /tmp.
 * Every refusal happens at create: no VM starts, nothing is left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CloserStack } from '../../src/core/fsx/index.js';
import type { StartedContainerd } from '../harness/services/containerd.js';
import { ctrRunIn, leftovers, startRuncvmSuite, summary, type RuntimeFixture } from './runcvm/setup.js';

const closers = new CloserStack();
let cd: StartedContainerd;
let fx: RuntimeFixture;
let image: string;
let seq = 0;
/** a wrapper whose node approves the kernels in fx.dir/kernels */
let kernelsNode: string;
let kernelsDir: string;

async function ctrRun(env: string[], opts: { wrapper?: string; id?: string } = {}) {
  const id = opts.id ?? `trust${++seq}`;
  return { id, ...summary(await ctrRunIn(cd, { runtime: opts.wrapper ?? fx.wrapper, image, id, cmd: ['echo', 'never'], env, timeoutMs: 120_000 })) };
}

const exists = (p: string) => stat(p).then(() => true, () => false);

describe('runtime settings across the node/container boundary', () => {
  beforeAll(async () => {
    ({ fx, cd, image } = await startRuncvmSuite(closers));
    kernelsDir = join(fx.dir, 'kernels');
    await mkdir(kernelsDir);
    await writeFile(join(kernelsDir, 'junk-vmlinux'), 'this is not a kernel\n');
    await symlink('/etc/hostname', join(kernelsDir, 'escape'));
    kernelsNode = await fx.wrapperWith('kernels-node', { RUNCVM_KERNELS_DIR: kernelsDir });
  });
  afterAll(async () => {
    await closers.close();
  });

  it('a container\'s RUNCVM_KERNEL outside the approved folder is refused at create, one message for a file, a folder and a missing path', async () => {
    const texts: string[] = [];
    for (const value of ['/etc/shadow', '/', '/no/such/runcvm-kernel']) {
      const r = await ctrRun([`RUNCVM_KERNEL=${value}`]);
      expect(r.exit, r.stderr).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`RUNCVM_KERNEL="${value}" is not allowed: a container may only choose a kernel file inside the node's approved folder /var/lib/runcvm/kernels`);
      expect(r.stderr).toMatch(/fix: .*RUNCVM_KERNELS_DIR/);
      // what the host holds at the path changes nothing in the answer
      texts.push(r.stderr.split(`RUNCVM_KERNEL="${value}"`).join('RUNCVM_KERNEL=<value>').split(r.id).join('<id>'));
    }
    expect(new Set(texts).size).toBe(1);
    expect((await leftovers(fx)).qemu).toEqual([]);
  });

  it('RUNCVM_KERNEL=/ with RUNCVM_DISKS into a host submount creates nothing on the host', async () => {
    const hostDir = `/dev/shm/runcvm-trust-${process.pid}`;
    closers.push('remove the probe folder', () => rm(hostDir, { recursive: true, force: true }));
    const r = await ctrRun(['RUNCVM_KERNEL=/', `RUNCVM_DISKS=/.runcvm/kernel-custom/vmlinux${hostDir}/d/x.img,/mnt,ext4,8M`]);
    expect(r.exit).not.toBe(0);
    expect(await exists(hostDir)).toBe(false);
  });

  it('RUNCVM_DISKS may not name the runtime\'s own folders', async () => {
    const r = await ctrRun(['RUNCVM_DISKS=/.runcvm/state/x.img,/mnt,ext4,8M']);
    expect(r.exit).not.toBe(0);
    expect(r.stderr).toContain('SRC "/.runcvm/state/x.img" is under /.runcvm, which belongs to the runtime or the kernel');
  });

  it('a kernel of the approved folder is used (by name); errors name the debug log in RUNCVM_LOG_DIR, not /tmp', async () => {
    const r = await ctrRun(['RUNCVM_KERNEL=junk-vmlinux'], { wrapper: kernelsNode });
    expect(r.exit).toBe(125);
    // QEMU got the approved file: it is not a kernel, so QEMU refuses it
    expect(r.stderr).toMatch(/the hypervisor qemu exited \(exit code 1\) before the workload reported its exit status: .*kernel/i);
    expect(r.stderr).toContain(`read ${join(fx.logDir, `runcvm-${r.id}.debug`)}`);
    expect(r.stderr).not.toContain(`/tmp/runcvm-${r.id}.debug`);
  });

  it('a symlink in the approved folder that leads out of it is refused like an outside path', async () => {
    const r = await ctrRun(['RUNCVM_KERNEL=escape'], { wrapper: kernelsNode });
    expect(r.exit).not.toBe(0);
    expect(r.stderr).toContain(`RUNCVM_KERNEL="escape" is not allowed: a container may only choose a kernel file inside the node's approved folder ${kernelsDir}`);
    const up = await ctrRun([`RUNCVM_KERNEL=../../../etc/hostname`], { wrapper: kernelsNode });
    expect(up.stderr).toContain('is not allowed: a container may only choose a kernel file inside');
  });

  it('RUNCVM_ROOTFS_SIZE above the node\'s cap is refused, naming the cap and how the node admin raises it', async () => {
    const r = await ctrRun(['RUNCVM_ROOTFS_SIZE=4T']);
    expect(r.exit).not.toBe(0);
    expect(r.stderr).toContain('RUNCVM_ROOTFS_SIZE="4T" is not allowed: it asks for 4.0 TiB, more than this node allows (16 GiB, RUNCVM_MAX_ROOTFS_SIZE)');
    expect(r.stderr).toMatch(/fix: .*set RUNCVM_MAX_ROOTFS_SIZE=SIZE in the runtime's own environment/);
    // the node admin's cap is the node's to set: lowered, it applies to a size that passes by default
    const strict = await fx.wrapperWith('strict-node', { RUNCVM_MAX_ROOTFS_SIZE: '128M' });
    const s = await ctrRun(['RUNCVM_ROOTFS_SIZE=1G'], { wrapper: strict });
    expect(s.stderr).toContain('more than this node allows (128 MiB, RUNCVM_MAX_ROOTFS_SIZE)');
  });

  it('a RUNCVM_DISKS size above the node\'s cap is refused the same way', async () => {
    const r = await ctrRun(['RUNCVM_DISKS=/disks/big.img,/big,ext4,4T']);
    expect(r.exit).not.toBe(0);
    expect(r.stderr).toContain('entry "/disks/big.img,/big,ext4,4T" asks for 4.0 TiB, more than this node allows (64 GiB, RUNCVM_MAX_DISK_SIZE)');
  });

  it('leaves nothing behind', async () => {
    expect(await leftovers(fx)).toEqual({ qemu: [], state: [], logs: [], configCopies: [] });
  });
});
