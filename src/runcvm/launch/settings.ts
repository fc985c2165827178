/**
 * User settings: the RUNCVM_* variables a user puts in the container's environment (or an operator in the
 * runtime's). Parsed once here into a typed record; decisions never travel in environment variables afterwards.
 */
import { parseBool, parseEnum, parseSize } from '../../core/config.js';

export const DEFAULT_ROOTFS_SIZE = '256M';
export const SETTING_NAMES = [
  'RUNCVM_LOG_LEVEL',
  'RUNCVM_KERNEL',
  'RUNCVM_KERNEL_APPEND',
  'RUNCVM_KERNEL_DEBUG',
  'RUNCVM_HYPERVISOR',
  'RUNCVM_ROOTFS_SIZE',
  'RUNCVM_BREAK',
  'RUNCVM_ACCEL',
  'RUNCVM_DISABLE',
  'RUNCVM_DISKS',
  'RUNCVM_VOLUME_TRANSPORT',
] as const;

export interface Settings {
  logLevel: 'off' | 'error' | 'info' | 'debug';
  kernel?: string;
  kernelAppend: string;
  kernelDebug: boolean;
  hypervisor: 'qemu' | 'firecracker';
  rootfsSizeBytes: number;
  break?: string;
  accel: 'auto' | 'kvm' | 'tcg';
  disabled: boolean;
}

export class SettingError extends Error {
  constructor(
    readonly setting: string,
    readonly value: string,
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${setting}="${value}" is not valid: ${problem}`);
  }
}

function guard<T>(name: string, value: string | undefined, fix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new SettingError(name, value ?? '', (err as Error).message, fix);
  }
}

/**
 * Kernel parameters runcvm sets itself (besides every `runcvm.*` one): the guest's boot contract. The kernel and the
 * initramfs (`for arg in $(cat /proc/cmdline)`) both let a later parameter win, so one of these in
 * RUNCVM_KERNEL_APPEND would silently replace runcvm's (another root device, another PID 1, the console gone).
 */
export const RESERVED_KERNEL_PARAMS = ['root', 'rootfstype', 'rootflags', 'init', 'rdinit', 'console'] as const;

const KERNEL_APPEND_FIX =
  'keep RUNCVM_KERNEL_APPEND to plain kernel parameters such as "loglevel=7 mitigations=off", on one line, with balanced double quotes; ' +
  'runcvm sets root=, init, console= and every runcvm.* parameter itself (use RUNCVM_BREAK, RUNCVM_LOG_LEVEL or RUNCVM_KERNEL_DEBUG instead)';

/**
 * Why RUNCVM_KERNEL_APPEND cannot go on the kernel command line, or undefined when it can. The text is checked
 * with both parsers that read it: the kernel's (double quotes group words; an unbalanced quote would swallow the
 * runcvm.net.* parameters appended after it; `--` hands the rest to init as arguments) and the initramfs shell's,
 * which splits on blanks and ignores quotes, so a quoted value cannot hide a parameter from this check either.
 */
export function kernelAppendProblem(text: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (/[\x00-\x1f\x7f]/.test(text)) return 'it contains a control character (a newline or tab, for instance): the kernel command line is one line of blank-separated parameters';
  if ((text.match(/"/g) ?? []).length % 2 !== 0) return 'it has an unbalanced double quote, which would make the kernel read the parameters runcvm adds after it as part of one value';
  for (const word of text.split(' ').filter(Boolean)) {
    const bare = word.replace(/"/g, '');
    if (bare === '--') return 'it contains "--", after which the kernel passes every word to the guest init as an argument';
    const name = bare.split('=')[0] ?? '';
    if (name.toLowerCase().startsWith('runcvm.')) return `it sets ${name}, a parameter of runcvm's own boot contract`;
    if ((RESERVED_KERNEL_PARAMS as readonly string[]).includes(name)) return `it sets ${name}=, which runcvm sets itself to boot the container's root filesystem`;
  }
  return undefined;
}

/** Later sources win: typically (runtime env, container env). */
export function mergeSettingEnv(...sources: Record<string, string | undefined>[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const src of sources) {
    for (const name of SETTING_NAMES) {
      const v = src[name];
      if (v !== undefined) out[name] = v;
    }
  }
  return out;
}

function checkedKernelAppend(value: string | undefined): string {
  const text = (value ?? '').trim();
  const problem = kernelAppendProblem(text);
  if (problem) throw new SettingError('RUNCVM_KERNEL_APPEND', text, problem, KERNEL_APPEND_FIX);
  return text;
}

export function parseSettings(env: Record<string, string | undefined>): Settings {
  const level = guard('RUNCVM_LOG_LEVEL', env.RUNCVM_LOG_LEVEL, 'use RUNCVM_LOG_LEVEL=OFF, ERROR, INFO or DEBUG', () =>
    parseEnum('RUNCVM_LOG_LEVEL', env.RUNCVM_LOG_LEVEL, ['OFF', 'ERROR', 'INFO', 'DEBUG'] as const, 'ERROR'),
  );
  const sizeText = env.RUNCVM_ROOTFS_SIZE || DEFAULT_ROOTFS_SIZE;
  const rootfsSizeBytes = guard('RUNCVM_ROOTFS_SIZE', sizeText, 'use a size such as 256M, 2G or 4096M', () => parseSize(sizeText));
  if (rootfsSizeBytes < 16 * 1024 * 1024) {
    throw new SettingError('RUNCVM_ROOTFS_SIZE', sizeText, 'smaller than 16M', 'use a size of at least 16M (default 256M)');
  }
  const settings: Settings = {
    logLevel: level.toLowerCase() as Settings['logLevel'],
    kernelAppend: checkedKernelAppend(env.RUNCVM_KERNEL_APPEND),
    kernelDebug: guard('RUNCVM_KERNEL_DEBUG', env.RUNCVM_KERNEL_DEBUG, 'use RUNCVM_KERNEL_DEBUG=1 or 0', () => parseBool(env.RUNCVM_KERNEL_DEBUG)),
    hypervisor: guard('RUNCVM_HYPERVISOR', env.RUNCVM_HYPERVISOR, 'use RUNCVM_HYPERVISOR=qemu or firecracker', () =>
      parseEnum('RUNCVM_HYPERVISOR', env.RUNCVM_HYPERVISOR, ['qemu', 'firecracker'] as const, 'qemu'),
    ),
    rootfsSizeBytes,
    accel: guard('RUNCVM_ACCEL', env.RUNCVM_ACCEL, 'use RUNCVM_ACCEL=auto, kvm or tcg', () =>
      parseEnum('RUNCVM_ACCEL', env.RUNCVM_ACCEL, ['auto', 'kvm', 'tcg'] as const, 'auto'),
    ),
    disabled: guard('RUNCVM_DISABLE', env.RUNCVM_DISABLE, 'use RUNCVM_DISABLE=1 or 0', () => parseBool(env.RUNCVM_DISABLE)),
  };
  if (env.RUNCVM_KERNEL) settings.kernel = env.RUNCVM_KERNEL;
  if (env.RUNCVM_BREAK) {
    const b = env.RUNCVM_BREAK.trim();
    if (!['initramfs', 'preinit', 'prerun'].includes(b)) {
      throw new SettingError('RUNCVM_BREAK', b, 'unknown break point', 'use RUNCVM_BREAK=initramfs (shell before switch_root), preinit (shell in the guest before mounts) or prerun (shell before the workload)');
    }
    settings.break = b;
  }
  return settings;
}

/**
 * RUNCVM_GUEST_SECCOMP, a node setting (read from the runtime's own environment only, never a container's: a pod
 * author must not switch off their own sandbox): `off` runs workloads without their seccomp profile in the guest,
 * for a RuntimeClass whose VM is the boundary (Kata's disable_guest_seccomp). Unset or `on`: the profile applies, as
 * under runc. true when it applies.
 */
export function guestSeccompSetting(nodeEnv: Record<string, string | undefined>): boolean {
  const v = nodeEnv.RUNCVM_GUEST_SECCOMP;
  if (v === undefined || v === '' || v === 'on') return true;
  if (v === 'off') return false;
  throw new SettingError('RUNCVM_GUEST_SECCOMP', v, 'it is neither on nor off', "set RUNCVM_GUEST_SECCOMP=off in the runtime's own environment (the engine's runtime entry or a wrapper) to run workloads without their seccomp profile in the guest, or leave it unset");
}
