/**
 * The guest assets end to end: the guest package runs its tools in images with no glibc (busybox-only, musl-only),
 * directly and through the bundled loader; the kernel + initramfs boot under QEMU TCG into an ext4 root, with and
 * without the overlay upper disk, silently unless asked, and fail fast (power off, one error line) instead of hanging.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../../src/core/exec/index.js';
import { guestPackageDir, kernelAssets, GUEST_LOADER, guestBin } from '../../src/runcvm/assets.js';
import { killMatching } from '../harness/proc.js';
import { bootGuest, debugfsCat, ensureGuestAssets, ext4FromDir, miniRootfs, qemuArgv } from './guest-helpers.js';

let tmp = '';

beforeAll(async () => {
  await ensureGuestAssets();
  tmp = await mkdtemp(join(tmpdir(), 'guest-assets-'));
});

afterAll(async () => {
  if (!tmp) return;
  await killMatching(tmp); // a QEMU that outlived its test (its argv names files under tmp)
  await rm(tmp, { recursive: true, force: true });
});

/**
 * Run argv inside `rootfs` (chroot, private mount namespace) with the guest package bind-mounted at /.runcvm/guest,
 * /dev bound, extra `binds` (host dir → path inside), and an empty environment apart from PATH=/bin.
 */
async function inChroot(rootfs: string, argv: string[], binds: [string, string][] = [], timeoutMs = 60_000): Promise<RunResult> {
  const script = [
    'set -e',
    'r=$1; g=$2; shift 2',
    'mount --bind "$g" "$r/.runcvm/guest"',
    'mount --rbind /dev "$r/dev"',
    'while [ "$1" != "--" ]; do mkdir -p "$r$2"; mount --bind "$1" "$r$2"; shift 2; done',
    'shift',
    'c=$(command -v chroot)',
    'exec env -i PATH=/bin HOME=/ "$c" "$r" "$@"',
  ].join('\n');
  return run('unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', rootfs, guestPackageDir(), ...binds.flat(), '--', ...argv], {
    reject: false,
    timeoutMs,
    killGraceMs: 2000,
  });
}

const sha256File = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

describe('guest package: tools run in any image', () => {
  const checks: { name: string; argv: string[]; expect: RegExp }[] = [
    { name: 'qemu', argv: [guestBin('qemu-system-x86_64'), '--version'], expect: /QEMU emulator version \d+/ },
    { name: 'node', argv: [guestBin('node'), '-e', 'console.log(1+1)'], expect: /^2$/m },
    { name: 'ip', argv: [guestBin('ip'), '-V'], expect: /iproute2/ },
    { name: 'mke2fs', argv: [guestBin('mke2fs'), '-V'], expect: /mke2fs \d/ },
  ];

  async function assertTools(rootfs: string): Promise<void> {
    for (const c of checks) {
      for (const form of ['direct', 'loader'] as const) {
        const argv = form === 'direct' ? c.argv : [GUEST_LOADER, ...c.argv];
        const r = await inChroot(rootfs, argv);
        expect(r.exitCode, `${c.name} (${form}): ${r.stderr}`).toBe(0);
        expect(`${r.stdout}${r.stderr}`, `${c.name} (${form})`).toMatch(c.expect);
      }
    }
  }

  it('busybox-only rootfs (no loader, no libc): qemu, node, ip, mke2fs run directly and via lib/ld', async () => {
    const rootfs = await miniRootfs(join(tmp, 'bb'));
    expect(existsSync(join(rootfs, 'lib64'))).toBe(false);
    expect(existsSync(join(rootfs, 'lib'))).toBe(false);
    // the image itself cannot run a dynamic host binary: proves the package does not lean on the image
    await copyFile('/bin/ip', join(rootfs, 'bin', 'host-ip'));
    const bare = await inChroot(rootfs, ['/bin/host-ip', '-V']);
    expect(bare.exitCode).not.toBe(0);
    await assertTools(rootfs);
  });

  it('musl-only rootfs: the same tools run (independent of the image libc)', async () => {
    const rootfs = await miniRootfs(join(tmp, 'musl'));
    await mkdir(join(rootfs, 'lib'), { recursive: true });
    const muslLibc = '/usr/lib/x86_64-linux-musl/libc.so';
    expect(existsSync(muslLibc), 'apt-get install musl (listed in scripts/setup.sh)').toBe(true);
    await copyFile(muslLibc, join(rootfs, 'lib', 'ld-musl-x86_64.so.1'));
    const musl = await inChroot(rootfs, ['/lib/ld-musl-x86_64.so.1']);
    expect(musl.stderr).toMatch(/musl libc/); // the image's own loader works and is musl
    expect(existsSync(join(rootfs, 'lib', 'libc.so.6'))).toBe(false);
    await assertTools(rootfs);
  });

  it('QEMU from the package boots the guest inside a busybox-only chroot (loader form)', async () => {
    const rootfs = await miniRootfs(join(tmp, 'bb-qemu'));
    const vmroot = await miniRootfs(join(tmp, 'bb-qemu-vm'), { initScript: 'echo CHROOT-QEMU-MARKER\npoweroff -f\n' });
    const img = await ext4FromDir(vmroot, join(tmp, 'bb-qemu-root.ext4'), '16M');
    await mkdir(join(tmp, 'bb-qemu-disk'));
    await copyFile(img, join(tmp, 'bb-qemu-disk', 'root.ext4'));
    const k = kernelAssets();
    const argv = await qemuArgv({
      disks: ['/disk/root.ext4'],
      vmlinux: '/kernel/vmlinux',
      initramfs: '/kernel/initramfs.img',
      append: ['runcvm.init=/init.sh'],
    });
    const r = await inChroot(
      rootfs,
      [GUEST_LOADER, guestBin('qemu-system-x86_64'), ...argv],
      [
        [join(k.vmlinux, '..'), '/kernel'],
        [join(tmp, 'bb-qemu-disk'), '/disk'],
      ],
      120_000,
    );
    expect(r.timedOut).toBe(false);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.replace(/\r/g, '').trim()).toBe('CHROOT-QEMU-MARKER');
  });
});

describe('kernel + initramfs under QEMU TCG', () => {
  const initScript = [
    'echo guest-wrote > /written.txt',
    'echo changed-in-guest > /lower.txt',
    'sync',
    "echo \"BOOT-MARKER root=$(awk '$2 == \"/\" {t = $3} END {print t}' /proc/mounts)\"",
    'poweroff -f',
    '',
  ].join('\n');

  async function rootImage(name: string): Promise<string> {
    const dir = await miniRootfs(join(tmp, name), { initScript, files: { 'lower.txt': 'from-lower\n' } });
    return ext4FromDir(dir, join(tmp, `${name}.ext4`), '32M');
  }

  it('boots the ext4 root rw; prints only the marker (initramfs silent without runcvm.debug)', async () => {
    const img = await rootImage('plain');
    const r = await bootGuest({ disks: [img], append: ['runcvm.init=/init.sh'] });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.lines).toEqual(['BOOT-MARKER root=ext4']);
    expect((await debugfsCat(img, '/written.txt')).content).toBe('guest-wrote\n');
  });

  it('runcvm.upper: the root is a read-only lower layer, writes land on the upper disk', async () => {
    const lower = await rootImage('lower');
    const upper = await ext4FromDir(undefined, join(tmp, 'upper.ext4'), '32M');
    const before = await sha256File(lower);
    const r = await bootGuest({ disks: [lower, upper], append: ['runcvm.init=/init.sh', 'runcvm.upper=/dev/vdb'] });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.lines).toEqual(['BOOT-MARKER root=overlay']);
    expect(await debugfsCat(upper, '/upper/written.txt')).toEqual({ ok: true, content: 'guest-wrote\n' });
    expect(await debugfsCat(upper, '/upper/lower.txt')).toEqual({ ok: true, content: 'changed-in-guest\n' });
    expect((await debugfsCat(lower, '/written.txt')).ok).toBe(false);
    expect(await debugfsCat(lower, '/lower.txt')).toEqual({ ok: true, content: 'from-lower\n' });
    expect(await sha256File(lower)).toBe(before); // mounted read-only: not one byte changed
  });

  it('runcvm.init pointing at a missing file: one error line, QEMU powers off (no hang)', async () => {
    const img = await rootImage('noinit');
    const r = await bootGuest({ disks: [img], append: ['runcvm.init=/no/such/init'] });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.lines).toEqual(['[runcvm-initramfs] error: init /no/such/init not found on the root filesystem (runcvm.init=/no/such/init)']);
  });

  it('a root device that is not ext4: one error line, power-off', async () => {
    const junk = join(tmp, 'junk.img');
    await writeFile(junk, Buffer.alloc(4 * 1024 * 1024));
    const r = await bootGuest({ disks: [junk], append: ['runcvm.init=/init.sh'] });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.lines).toEqual(['[runcvm-initramfs] error: cannot mount root device /dev/vda as ext4 (rw): not a valid ext4 filesystem?']);
  });

  it('runcvm.break=initramfs gives a console shell before switch_root; exiting it continues the boot', async () => {
    const img = await rootImage('break');
    // leading newlines absorb what the UART drops while the kernel initialises it
    const input = `${'\n'.repeat(64)}echo IN-BREAK-$((40 + 2))\nexit\n`;
    const r = await bootGuest({ disks: [img], append: ['runcvm.init=/init.sh', 'runcvm.break=initramfs'], input });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.lines).toContain('IN-BREAK-42');
    expect(r.lines.at(-1)).toBe('BOOT-MARKER root=ext4');
  });

  it('a missing root device with runcvm.debug=1: steps are traced, then the error line and power-off', async () => {
    const img = await rootImage('noroot');
    const r = await bootGuest({ disks: [img], append: ['runcvm.init=/init.sh', 'root=/dev/vdz', 'runcvm.debug=1'] });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.lines.every((l) => l.startsWith('[runcvm-initramfs] '))).toBe(true);
    expect(r.lines).toContain('[runcvm-initramfs] insmod virtio_blk.ko');
    expect(r.lines.at(-1)).toMatch(/^\[runcvm-initramfs\] error: root device \/dev\/vdz not found/);
  });
});
