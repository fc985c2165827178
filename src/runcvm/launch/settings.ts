/**
 * Settings, by who may set them (the trust boundary between a node admin and a pod or image author):
 * - container settings (CONTAINER_SETTING_NAMES, an explicit allow-list): read from the container's environment
 *   (image ENV, pod env, `docker run -e`), with the runtime's own environment as the node's default. None of them
 *   names a host path or sizes a host resource unchecked: RUNCVM_KERNEL names a kernel inside the node-approved
 *   folder (RUNCVM_KERNELS_DIR, launch/kernel.ts), and RUNCVM_ROOTFS_SIZE / RUNCVM_DISKS sizes stay under the node's
 *   caps (RUNCVM_MAX_ROOTFS_SIZE, RUNCVM_MAX_DISK_SIZE).
 * - node settings (NODE_SETTING_NAMES): read from the runtime's own environment only (the engine's runtime entry or
 *   a wrapper the node admin writes); a container's value is never read.
 * Parsed once here into typed records; decisions never travel in environment variables afterwards. Pure.
 */
import { formatSize, parseBool, parseEnum, parseSize } from '../../core/config.js';
import { GUEST_PRIVILEGES, GUEST_PRIVILEGES_FIX, type GuestPrivileges } from './guest-privileges.js';

export const DEFAULT_ROOTFS_SIZE = '256M';
/** RUNCVM_ROOTFS_SIZE cap unless the node sets RUNCVM_MAX_ROOTFS_SIZE: the writable disk lives in the state dir (/run: RAM) */
export const DEFAULT_MAX_ROOTFS_SIZE = '16G';
/** cap of each RUNCVM_DISKS image unless the node sets RUNCVM_MAX_DISK_SIZE */
export const DEFAULT_MAX_DISK_SIZE = '64G';
/** the base-disk cache's bound unless the node sets RUNCVM_CACHE_MAX (least recently used disks beyond it are removed) */
export const DEFAULT_CACHE_MAX = '10G';
/** the folder of kernels a container may choose with RUNCVM_KERNEL, unless the node sets RUNCVM_KERNELS_DIR */
export const DEFAULT_KERNELS_DIR = '/var/lib/runcvm/kernels';
/** RUNCVM_TEMPLATE (issue 17): on = VMs start from a saved template when one fits (template/key.ts). */
export type TemplateSetting = 'on' | 'off';
/**
 * Off unless the node turns it on: a template is built by a detached QEMU on first need, which a small node (or a CI
 * machine running many VM shapes) pays for before any container gains (docs/runcvm/templates.md).
 */
export const DEFAULT_TEMPLATE_SETTING: TemplateSetting = 'off';

/** What a container may set (its environment); the runtime's environment supplies the node's defaults. */
export const CONTAINER_SETTING_NAMES = [
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

/**
 * Settings of the runtime process on the node (its own environment), never of a container: each names a host path
 * or a host resource limit. A container's value is ignored (and `runcvm lint` says so).
 */
export const NODE_SETTING_NAMES = [
  'RUNCVM_STATE_DIR', 'RUNCVM_LOG_DIR', 'RUNCVM_CACHE_DIR', 'RUNCVM_ASSETS', 'RUNCVM_GUEST_DIR', 'RUNCVM_RUNC',
  'RUNCVM_NODE', 'RUNCVM_KUBELET_DIR', 'RUNCVM_FIRECRACKER', 'RUNCVM_KVM_DEVICE', 'RUNCVM_KERNELS_DIR',
  'RUNCVM_MAX_ROOTFS_SIZE', 'RUNCVM_MAX_DISK_SIZE', 'RUNCVM_CACHE_MAX', 'RUNCVM_GUEST_PRIVILEGES', 'RUNCVM_GUEST_SECCOMP',
  'RUNCVM_TEMPLATE',
] as const;

export type Origin = 'node' | 'container';

/** RUNCVM_KERNEL as given, and by whom (a node value may name any host file; a container's only the approved folder). */
export interface KernelRequest {
  value: string;
  origin: Origin;
}

/** The node's limits on what a container may ask for. */
export interface NodeSettings {
  maxRootfsBytes: number;
  maxDiskBytes: number;
  /** the base-disk cache's bound (RUNCVM_CACHE_MAX) */
  cacheMaxBytes: number;
  /** folder of kernels containers may choose (RUNCVM_KERNEL=NAME) */
  kernelsDir: string;
  /** what the workload may do inside the VM (RUNCVM_GUEST_PRIVILEGES; launch/guest-privileges.ts) */
  guestPrivileges: GuestPrivileges;
  /** false: RUNCVM_GUEST_SECCOMP=off, workloads run without their seccomp profile in the guest (guestSeccompSetting) */
  guestSeccomp: boolean;
  /** RUNCVM_TEMPLATE: VMs start from a saved template when one fits (templateSetting) */
  template: TemplateSetting;
}

export interface Settings {
  logLevel: 'off' | 'error' | 'info' | 'debug';
  kernel?: KernelRequest;
  kernelAppend: string;
  kernelDebug: boolean;
  hypervisor: 'qemu' | 'firecracker';
  rootfsSizeBytes: number;
  break?: string;
  accel: 'auto' | 'kvm' | 'tcg';
  disabled: boolean;
}

/** How the runtime reports a SettingError (a code of runcvm/errors.ts, filled with `details`). */
export type SettingErrorCode = 'BAD_SETTING' | 'BAD_NODE_SETTING' | 'SETTING_NOT_ALLOWED' | 'SIZE_OVER_CAP';

export class SettingError extends Error {
  constructor(
    readonly setting: string,
    readonly value: string,
    readonly problem: string,
    readonly fix: string,
    readonly code: SettingErrorCode = 'BAD_SETTING',
    readonly extra: Readonly<Record<string, string>> = {},
  ) {
    super(`${setting}="${value}" is ${code === 'BAD_SETTING' || code === 'BAD_NODE_SETTING' ? 'not valid' : 'not allowed'}: ${problem}`);
  }

  /** the details of the runcvm error it becomes */
  details(): Record<string, string> {
    return { name: this.setting, value: this.value, problem: this.problem, fix: this.fix, ...this.extra };
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

/** Later sources win: typically (runtime env, container env). Only the container allow-list is read. */
export function mergeSettingEnv(...sources: Record<string, string | undefined>[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const src of sources) {
    for (const name of CONTAINER_SETTING_NAMES) {
      const v = src[name];
      if (v !== undefined) out[name] = v;
    }
  }
  return out;
}

/** Who gave each container setting: the container's env wins over the runtime's (the node's default). */
export function settingOrigins(nodeEnv: Record<string, string | undefined>, containerEnv: Record<string, string | undefined>): Record<string, Origin> {
  const out: Record<string, Origin> = {};
  for (const name of CONTAINER_SETTING_NAMES) {
    if (containerEnv[name] !== undefined) out[name] = 'container';
    else if (nodeEnv[name] !== undefined) out[name] = 'node';
  }
  return out;
}

function nodeSize(env: Record<string, string | undefined>, name: string, fallback: string): number {
  const text = env[name] || fallback;
  return guard(name, text, `set ${name} in the runtime's environment to a size such as 16G or 512G`, () => parseSize(text));
}

/** The node's limits, from the runtime's own environment only. */
export function parseNodeSettings(nodeEnv: Record<string, string | undefined>): NodeSettings {
  return {
    maxRootfsBytes: nodeSize(nodeEnv, 'RUNCVM_MAX_ROOTFS_SIZE', DEFAULT_MAX_ROOTFS_SIZE),
    maxDiskBytes: nodeSize(nodeEnv, 'RUNCVM_MAX_DISK_SIZE', DEFAULT_MAX_DISK_SIZE),
    cacheMaxBytes: nodeSize(nodeEnv, 'RUNCVM_CACHE_MAX', DEFAULT_CACHE_MAX),
    kernelsDir: nodeEnv.RUNCVM_KERNELS_DIR || DEFAULT_KERNELS_DIR,
    guestPrivileges: guard('RUNCVM_GUEST_PRIVILEGES', nodeEnv.RUNCVM_GUEST_PRIVILEGES, GUEST_PRIVILEGES_FIX, () =>
      parseEnum('RUNCVM_GUEST_PRIVILEGES', nodeEnv.RUNCVM_GUEST_PRIVILEGES, GUEST_PRIVILEGES, 'pod')),
    guestSeccomp: guestSeccompSetting(nodeEnv),
    template: templateSetting(nodeEnv),
  };
}

export const DEFAULT_NODE_SETTINGS: NodeSettings = parseNodeSettings({});

/**
 * A size a container asked for, above the node's cap: refused with the cap and how the node admin raises it.
 * `where` says what the size costs on the node.
 */
export function overCap(name: string, value: string, bytes: number, cap: number, capSetting: string, where: string, subject = 'it'): SettingError | undefined {
  if (bytes <= cap) return undefined;
  return new SettingError(
    name,
    value,
    `${subject} asks for ${formatSize(bytes)}, more than this node allows (${formatSize(cap)}, ${capSetting})`,
    `ask for at most ${formatSize(cap)}; or, as the node admin, raise the cap: set ${capSetting}=SIZE in the runtime's own environment (the engine's runtime entry or a wrapper script), never in the container's`,
    'SIZE_OVER_CAP',
    { size: formatSize(bytes), cap: formatSize(cap), capSetting, where },
  );
}

/** The container's settings: its env over the runtime's (node defaults), judged against the node's limits. */
export function readSettings(nodeEnv: Record<string, string | undefined>, containerEnv: Record<string, string | undefined>, node: NodeSettings = parseNodeSettings(nodeEnv)): Settings {
  return parseSettings(mergeSettingEnv(nodeEnv, containerEnv), { origins: settingOrigins(nodeEnv, containerEnv), node });
}

function checkedKernelAppend(value: string | undefined): string {
  const text = (value ?? '').trim();
  const problem = kernelAppendProblem(text);
  if (problem) throw new SettingError('RUNCVM_KERNEL_APPEND', text, problem, KERNEL_APPEND_FIX);
  return text;
}

export interface ParseOptions {
  /** who gave each value; a value of unknown origin counts as the container's (the less trusted) */
  origins?: Readonly<Record<string, Origin>>;
  node?: NodeSettings;
}

export function parseSettings(env: Record<string, string | undefined>, opts: ParseOptions = {}): Settings {
  const node = opts.node ?? DEFAULT_NODE_SETTINGS;
  const level = guard('RUNCVM_LOG_LEVEL', env.RUNCVM_LOG_LEVEL, 'use RUNCVM_LOG_LEVEL=OFF, ERROR, INFO or DEBUG', () =>
    parseEnum('RUNCVM_LOG_LEVEL', env.RUNCVM_LOG_LEVEL, ['OFF', 'ERROR', 'INFO', 'DEBUG'] as const, 'ERROR'),
  );
  const sizeText = env.RUNCVM_ROOTFS_SIZE || DEFAULT_ROOTFS_SIZE;
  const rootfsSizeBytes = guard('RUNCVM_ROOTFS_SIZE', sizeText, 'use a size such as 256M, 2G or 4096M', () => parseSize(sizeText));
  if (rootfsSizeBytes < 16 * 1024 * 1024) {
    throw new SettingError('RUNCVM_ROOTFS_SIZE', sizeText, 'smaller than 16M', 'use a size of at least 16M (default 256M)');
  }
  const capped = overCap('RUNCVM_ROOTFS_SIZE', sizeText, rootfsSizeBytes, node.maxRootfsBytes, 'RUNCVM_MAX_ROOTFS_SIZE', 'the writable disk is a sparse file in the state folder, /run by default: node memory');
  if (capped) throw capped;
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
  if (env.RUNCVM_KERNEL) settings.kernel = { value: env.RUNCVM_KERNEL, origin: opts.origins?.RUNCVM_KERNEL ?? 'container' };
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
  throw new SettingError('RUNCVM_GUEST_SECCOMP', v, 'it is neither on nor off', "set RUNCVM_GUEST_SECCOMP=off in the runtime's own environment (the engine's runtime entry or a wrapper) to run workloads without their seccomp profile in the guest, or leave it unset", 'BAD_NODE_SETTING');
}

/**
 * RUNCVM_TEMPLATE=on|off, a node setting (the runtime's own environment only: a template is a file of the node's
 * cache, and a pod must not choose which saved VM it starts from, nor make the node build ones).
 */
export function templateSetting(nodeEnv: Record<string, string | undefined>): TemplateSetting {
  const v = (nodeEnv.RUNCVM_TEMPLATE ?? '').trim().toLowerCase();
  if (v === '') return DEFAULT_TEMPLATE_SETTING;
  if (v === 'on' || v === '1' || v === 'true') return 'on';
  if (v === 'off' || v === '0' || v === 'false') return 'off';
  throw new SettingError('RUNCVM_TEMPLATE', nodeEnv.RUNCVM_TEMPLATE ?? '', 'it is neither on nor off', "set RUNCVM_TEMPLATE=on (start VMs from saved templates) or off in the runtime's own environment, or leave it unset (off)", 'BAD_NODE_SETTING');
}
