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
    kernelAppend: (env.RUNCVM_KERNEL_APPEND ?? '').trim(),
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
