/**
 * Helpers for tests that boot the guest kernel + initramfs under QEMU TCG or run guest-package tools in a chroot.
 *
 *   await ensureGuestAssets();                              // runs scripts/assets/10-kernel.sh + 20-guest.sh (cached)
 *   await miniRootfs(dir, { initScript: 'echo hi\n' });      // busybox-only tree with /init.sh
 *   const img = await ext4FromDir(dir, join(tmp, 'root.ext4'));
 *   const r = await bootGuest({ disks: [img], append: ['runcvm.init=/init.sh'] });   // r.lines, r.exitCode
 *
 * Every QEMU run has a timeout (SIGTERM, then SIGKILL) so a hung guest never outlives its test.
 */
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunOptions, type RunResult } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { kernelAssets, QUIET_KERNEL_PARAMS, tscEarlyKhz } from '../../src/runcvm/assets.js';

export const QEMU_TIMEOUT_MS = 120_000;

/** The absolute source paths of a guest program (`runcvm-init`, `runcvm-agent`, `runcvm-exec`, `net`), from
 * src/runcvm/guest/sources.txt, the list scripts/assets/30-runtime.sh builds from. */
export function guestSources(program: string): string[] {
  const guest = (f: string) => projectPath('src', 'runcvm', 'guest', f);
  const line = readFileSync(guest('sources.txt'), 'utf8').split('\n').find((l) => l.startsWith(`${program}: `));
  if (!line) throw new Error(`no line for ${program} in src/runcvm/guest/sources.txt`);
  return line.slice(program.length + 2).trim().split(/\s+/).map(guest);
}

/** Build (or confirm, in milliseconds when cached) the kernel assets and the guest package. */
export async function ensureGuestAssets(): Promise<void> {
  for (const script of ['scripts/assets/10-kernel.sh', 'scripts/assets/20-guest.sh']) {
    await run('bash', [projectPath(script)], { cwd: projectPath(), timeoutMs: 300_000 });
  }
}

/** A busybox-only tree: /bin/busybox + /bin/sh, /proc /sys /dev /tmp, no loader, no libc; optional /init.sh. */
export async function miniRootfs(dir: string, options: { initScript?: string; files?: Record<string, string> } = {}): Promise<string> {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc', '.runcvm/guest']) await mkdir(join(dir, d), { recursive: true });
  await copyFile('/bin/busybox', join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  await symlink('busybox', join(dir, 'bin', 'sh'));
  await writeFile(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  if (options.initScript !== undefined) {
    await writeFile(join(dir, 'init.sh'), `#!/bin/busybox sh\nexport PATH=/bin\n${options.initScript}`);
    await chmod(join(dir, 'init.sh'), 0o755);
  }
  for (const [path, content] of Object.entries(options.files ?? {})) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

/** `mke2fs -t ext4 -d DIR IMG SIZE`: an ext4 image holding the folder (an empty one when dir is undefined). */
export async function ext4FromDir(dir: string | undefined, image: string, size = '64M'): Promise<string> {
  await run('mke2fs', ['-q', '-F', '-t', 'ext4', ...(dir ? ['-d', dir] : []), image, size]);
  return image;
}

/** `debugfs -R 'cat PATH' IMG`: a file's content read from an ext4 image on the host ('' and ok=false if absent). */
export async function debugfsCat(image: string, path: string): Promise<{ ok: boolean; content: string }> {
  const r = await run('debugfs', ['-R', `cat ${path}`, image], { reject: false });
  const missing = /File not found/.test(r.stderr) || r.exitCode !== 0;
  return { ok: !missing, content: r.stdout };
}

let khz: number | undefined;
async function hostKhz(): Promise<number> {
  khz ??= tscEarlyKhz(await readFile('/proc/cpuinfo', 'utf8')) ?? 2_000_000;
  return khz;
}

export interface BootOptions {
  /** raw disk images, attached in order as /dev/vda, /dev/vdb, … */
  disks: string[];
  /** extra kernel parameters (after the quiet defaults) */
  append?: string[];
  vmlinux?: string;
  initramfs?: string;
  /** extra QEMU arguments (network devices, …) */
  qemuArgs?: string[];
  /** run QEMU through this prefix (e.g. ['ip', 'netns', 'exec', 'ns1']) */
  prefix?: string[];
  qemu?: string;
  memoryMb?: number;
  timeoutMs?: number;
  onLine?: (line: string) => void;
  /** bytes for the guest console's input (QEMU's stdin) */
  input?: string;
}

export interface BootResult extends RunResult {
  /** console lines without carriage returns, empty lines dropped */
  lines: string[];
}

export async function qemuArgv(options: BootOptions): Promise<string[]> {
  const k = kernelAssets();
  const drives = options.disks.flatMap((file, i) => [
    '-drive', `id=d${i},file=${file},format=raw,if=none`,
    '-device', `virtio-blk-device,drive=d${i}`,
  ]);
  return [
    '-M', 'microvm,pit=on', '-accel', 'tcg', '-cpu', 'max', '-m', String(options.memoryMb ?? 256), '-smp', '1',
    '-kernel', options.vmlinux ?? k.vmlinux, '-initrd', options.initramfs ?? k.initramfs,
    '-append', [...QUIET_KERNEL_PARAMS, `tsc_early_khz=${await hostKhz()}`, ...(options.append ?? [])].join(' '),
    ...drives, ...(options.qemuArgs ?? []),
    '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio',
  ];
}

/** Boot a microVM and wait for it to power off (or the timeout, which kills it). */
export async function bootGuest(options: BootOptions): Promise<BootResult> {
  const argv = [...(options.prefix ?? []), options.qemu ?? 'qemu-system-x86_64', ...(await qemuArgv(options))];
  const [file, ...args] = argv as [string, ...string[]];
  const runOptions: RunOptions = { reject: false, timeoutMs: options.timeoutMs ?? QEMU_TIMEOUT_MS, killGraceMs: 2000 };
  if (options.onLine) runOptions.onStdoutLine = options.onLine;
  if (options.input !== undefined) runOptions.input = options.input;
  const r = await run(file, args, runOptions);
  return { ...r, lines: consoleLines(r.stdout) };
}

export function consoleLines(text: string): string[] {
  return text
    .replace(/\r/g, '')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
}
