/**
 * Where the guest assets live and what the initramfs expects, for the runtime to import.
 *
 *   const k = kernelAssets();                 // { vmlinux, initramfs, release, manifestPath }
 *   assertAssetsPresent();                    // throws NO_KERNEL / NO_GUEST_PACKAGE naming the file and the fix
 *   initramfsCmdline({ root: '/dev/vda', upper: '/dev/vdb' })  // ['root=/dev/vda', 'runcvm.upper=/dev/vdb']
 *
 * Built by scripts/assets/10-kernel.sh (kernel/) and scripts/assets/20-guest.sh (guest/); the contract of both is
 * docs/dev/guest-boot.md. Only `kernelAssets` (reads the one-line release file) and `assertAssetsPresent` (stats
 * files) touch the filesystem; everything else is pure.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assetsDir } from '../core/paths.js';
import { runcvmErrors } from './errors.js';

/** Where the runtime mounts the guest package inside every container. */
export const GUEST_PREFIX = '/.runcvm/guest';
/** The bundled glibc loader: `${GUEST_LOADER} ${guestBin('x')} args…` runs a packaged tool in any image. */
export const GUEST_LOADER = `${GUEST_PREFIX}/lib/ld`;
/** QEMU finds its data relative to its binary; passing `-L` with this is harmless and explicit. */
export const GUEST_QEMU_DATA = `${GUEST_PREFIX}/share/qemu`;
/** Default init the initramfs switch_roots into (kernel parameter runcvm.init overrides it). */
export const DEFAULT_GUEST_INIT = `${GUEST_PREFIX}/bin/runcvm-init`;

export function guestBin(name: string): string {
  return `${GUEST_PREFIX}/bin/${name}`;
}

export interface KernelAssets {
  vmlinux: string;
  initramfs: string;
  /** e.g. 6.1.0-56-cloud-amd64; '' when the release file is missing (assets not built) */
  release: string;
  manifestPath: string;
}

export function kernelAssets(dir: string = assetsDir()): KernelAssets {
  const k = join(dir, 'kernel');
  let release = '';
  try {
    release = readFileSync(join(k, 'release'), 'utf8').trim();
  } catch {
    /* not built yet: assertAssetsPresent says what to run */
  }
  return { vmlinux: join(k, 'vmlinux'), initramfs: join(k, 'initramfs.img'), release, manifestPath: join(k, 'manifest.json') };
}

export function guestPackageDir(dir: string = assetsDir()): string {
  return join(dir, 'guest');
}

/** Files of the guest package the launcher cannot work without (relative to guestPackageDir). */
export const REQUIRED_GUEST_FILES = ['lib/ld', 'bin/qemu-system-x86_64', 'share/qemu/bios-microvm.bin', 'manifest.json'] as const;

/** Pure check: given which paths exist, the first problem, or undefined when all assets are there. */
export function missingAsset(
  dir: string,
  exists: (path: string) => boolean,
  guestFiles: readonly string[] = REQUIRED_GUEST_FILES,
): { kind: 'kernel' | 'guest'; path: string; missing: string } | undefined {
  for (const path of [join(dir, 'kernel', 'vmlinux'), join(dir, 'kernel', 'initramfs.img')]) {
    if (!exists(path)) return { kind: 'kernel', path, missing: path.split('/').pop() ?? path };
  }
  const g = guestPackageDir(dir);
  for (const rel of guestFiles) {
    const path = join(g, rel);
    if (!exists(path)) return { kind: 'guest', path: g, missing: rel };
  }
  return undefined;
}

/**
 * Throws the runtime's NO_KERNEL or NO_GUEST_PACKAGE error (message names the missing file, fix names the command)
 * unless the kernel, initramfs and guest package are all built.
 */
export function assertAssetsPresent(dir: string = assetsDir(), exists: (path: string) => boolean = existsSync): void {
  const problem = missingAsset(dir, exists);
  if (!problem) return;
  if (problem.kind === 'kernel') {
    throw runcvmErrors.fail('NO_KERNEL', {
      path: problem.path,
      reason: `${problem.missing} has not been built (assets folder ${dir}); run \`npm run setup\` or \`bash scripts/assets/10-kernel.sh\``,
    });
  }
  throw runcvmErrors.fail('NO_GUEST_PACKAGE', { path: problem.path, missing: problem.missing });
}

/** Kernel command-line parameters understood by the initramfs /init (docs/dev/guest-boot.md). */
export interface InitramfsOptions {
  /** ext4 root device; default /dev/vda */
  root?: string;
  /** filesystem of the root device; default ext4 */
  rootfstype?: string;
  /** extra mount options for the root device */
  rootflags?: string;
  /** ext4 device holding upper/ and work/: the root becomes a read-only lower layer under an overlay */
  upper?: string;
  /** program exec'd as PID 1 after switch_root; default /.runcvm/guest/bin/runcvm-init */
  init?: string;
  /** print each step as "[runcvm-initramfs] …" (otherwise the initramfs prints nothing) */
  debug?: boolean;
  /** drop to a busybox shell on the console before switch_root */
  breakInitramfs?: boolean;
  /** optional module groups to load besides core: e.g. ['nfs']; [] loads core only; undefined loads all */
  moduleGroups?: readonly string[];
}

/** Optional module groups the initramfs carries (core always loads). */
export const MODULE_GROUPS = ['nfs', 'vsock', '9p'] as const;

const SAFE_PARAM = /^[A-Za-z0-9_./:,=+@-]+$/;

/** Parameters for the kernel command line (no defaults repeated); throws on values that would split the line. */
export function initramfsCmdline(options: InitramfsOptions = {}): string[] {
  const out: string[] = [];
  const add = (key: string, value: string | undefined) => {
    if (value === undefined) return;
    if (!SAFE_PARAM.test(value)) throw new Error(`kernel parameter ${key}=${JSON.stringify(value)} may not contain spaces, quotes or shell characters`);
    out.push(`${key}=${value}`);
  };
  add('root', options.root);
  add('rootfstype', options.rootfstype);
  add('rootflags', options.rootflags);
  add('runcvm.upper', options.upper);
  add('runcvm.init', options.init);
  if (options.moduleGroups !== undefined) add('runcvm.modules', options.moduleGroups.length ? options.moduleGroups.join(',') : 'none');
  if (options.breakInitramfs) out.push('runcvm.break=initramfs');
  if (options.debug) out.push('runcvm.debug=1');
  return out;
}

/** Kernel parameters that keep the console silent apart from the workload (see guest-boot.md). */
export const QUIET_KERNEL_PARAMS = ['console=ttyS0', 'quiet', 'loglevel=0', 'pci=off', 'panic=-1'] as const;

/** tsc_early_khz from /proc/cpuinfo text (TCG guests hang intermittently without it); undefined if not found. */
export function tscEarlyKhz(cpuinfo: string): number | undefined {
  const m = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(cpuinfo);
  if (!m?.[1]) return undefined;
  const khz = Math.round(Number(m[1]) * 1000);
  return Number.isFinite(khz) && khz > 0 ? khz : undefined;
}
