/**
 * The template key (issue 17; docs/dev/notes/templates.md 3.2). Pure. A template fits a VM when everything that
 * shaped the saved VM is equal: the hypervisor and the backend's own part (`Hypervisor.templateShape`: its machine,
 * its device shape, its version), the kernel, initramfs and guest package (by hash), accel, vCPUs, memory,
 * the disks (count, order, read-only, cache), the NIC count, the io and agent ports, and the template command line
 * (the cold boot's without the per-container words that travel in the RESUME frame, and without `tsc_early_khz`: the
 * host's `cpu MHz` it comes from moves with frequency scaling, and it only steers the early boot a restored VM has
 * already done). The key is the
 * sha256 of the shape's canonical JSON. The same function serves create (which binds the template's folder), the
 * builder (`runcvm template build`) and the launcher (which checks the bound template is the one its VM needs).
 * A VM that cannot use a template gets the reason instead, logged at info as `template: cold boot (<reason>)`.
 */
import { createHash } from 'node:crypto';
import { TEMPLATE_CMDLINE_FLAG } from '../guest/contract.js';
import { planVm } from '../hypervisor/index.js';
import type { Hypervisor, HypervisorName, VmPlan } from '../hypervisor/types.js';
import { CONTAINER_PATHS, LAUNCH_SPEC_VERSION, type LaunchSpec } from '../launch/schema.js';
import type { TemplateSetting } from '../launch/settings.js';

/** bumped whenever what a template holds changes without the shape showing it (old templates then never match) */
export const TEMPLATE_SHAPE_VERSION = 1;

/** The node's assets by hash (template/facts.ts reads them; the launcher reads the same files in its container). */
export interface TemplateAssets {
  vmlinuxSha256: string;
  initramfsSha256: string;
  /** sha256 of the guest package's manifest.json: QEMU's build and every binary the guest runs */
  guestPackageId: string;
}

export interface TemplateKeyFacts {
  setting: TemplateSetting;
  /** undefined: the assets have no manifest (an old build): no template */
  assets?: TemplateAssets;
  /** RUNCVM_KERNEL's file by hash, when the VM boots one (unknown: no template) */
  customKernelSha256?: string;
}

export type TemplateKey = { ok: true; key: string; shape: Record<string, unknown> } | { ok: false; reason: string };

/** JSON with object keys sorted at every level: one shape, one text, one key. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * Words of a cold boot's command line that do not shape a template: the container's own (they travel in RESUME) and
 * the early-boot TSC hint (read from /proc/cpuinfo at each start; it may differ between two reads).
 */
const PER_CONTAINER_WORD = /^(runcvm\.net\.|tsc_early_khz=)/;

export function templateCmdlineWords(cmdline: string): string[] {
  return cmdline.split(/\s+/).filter((w) => w && !PER_CONTAINER_WORD.test(w) && w !== TEMPLATE_CMDLINE_FLAG);
}

/** Why this VM's command line rules a template out (the words a saved guest could not take after its boot). */
function cmdlineRefusal(words: readonly string[]): string | undefined {
  if (words.some((w) => w.startsWith('runcvm.break='))) return 'RUNCVM_BREAK is set';
  if (words.some((w) => w.startsWith('runcvm.debug='))) return 'debug logging (RUNCVM_LOG_LEVEL=DEBUG)';
  if (!words.includes('quiet')) return 'kernel debug (RUNCVM_KERNEL_DEBUG)';
  return undefined;
}

/** The key of the template that fits `vm` on backend `hv`, or why it boots cold. */
export function templateKey(vm: VmPlan, hv: Hypervisor, facts: TemplateKeyFacts): TemplateKey {
  if (facts.setting === 'off') return { ok: false, reason: 'RUNCVM_TEMPLATE=off' };
  if (vm.shares && vm.shares.length > 0) return { ok: false, reason: 'virtiofs volume (virtiofs blocks saving the VM)' };
  const words = templateCmdlineWords(vm.cmdline);
  const refused = cmdlineRefusal(words);
  if (refused) return { ok: false, reason: refused };
  if (!hv.templateShape) return { ok: false, reason: `the ${hv.name} backend has no templates` };
  const custom = vm.kernel !== `${CONTAINER_PATHS.kernelDir}/vmlinux`;
  if (custom && !facts.customKernelSha256) return { ok: false, reason: 'a custom kernel (RUNCVM_KERNEL)' };
  if (!facts.assets) return { ok: false, reason: 'the guest assets have no manifest with hashes (rebuild them: bash scripts/setup.sh)' };
  const backend = hv.templateShape(vm);
  if (!backend.ok) return { ok: false, reason: backend.reason };
  const shape: Record<string, unknown> = {
    version: TEMPLATE_SHAPE_VERSION,
    hypervisor: hv.name,
    backend: backend.shape,
    kernel: custom ? { customSha256: facts.customKernelSha256 } : { vmlinuxSha256: facts.assets.vmlinuxSha256 },
    initramfsSha256: facts.assets.initramfsSha256,
    guestPackage: facts.assets.guestPackageId,
    accel: vm.accel,
    vcpus: vm.vcpus,
    memoryMiB: vm.memoryMiB,
    disks: vm.disks.map((d) => ({ readOnly: d.readOnly, cache: d.readOnly ? null : (d.cache ?? null) })),
    nics: (vm.nics ?? []).length,
    io: vm.io.portName,
    agent: vm.agent ? vm.agent.portName : null,
    cmdline: words.join(' '),
  };
  return { ok: true, key: createHash('sha256').update(canonicalJson(shape)).digest('hex'), shape };
}

/**
 * What a template build needs to make the same VM as a container's launcher: the parts of the LaunchSpec that shape
 * the VM. `runcvm template build` takes them as flags; create derives them from the LaunchSpec.
 */
export interface TemplateRequest {
  hypervisor: HypervisorName;
  accel: 'kvm' | 'tcg';
  vcpus: number;
  memoryMiB: number;
  tscKhz?: number;
  /** NICs the launcher will hand to the VM */
  nics: number;
  /** RUNCVM_DISKS data disks (after the root and writable disks) */
  dataDisks: number;
}

/** Why a LaunchSpec always boots cold, from what create knows (the launcher sees the same in its VmPlan). */
export function launchRefusal(spec: LaunchSpec): string | undefined {
  if (spec.break) return 'RUNCVM_BREAK is set';
  if (spec.log.level === 'debug') return 'debug logging (RUNCVM_LOG_LEVEL=DEBUG)';
  if (spec.kernel.debug) return 'kernel debug (RUNCVM_KERNEL_DEBUG)';
  if (spec.kernel.append.trim()) return 'a kernel command line append (RUNCVM_KERNEL_APPEND)';
  if (spec.kernel.path !== `${CONTAINER_PATHS.kernelDir}/vmlinux`) return 'a custom kernel (RUNCVM_KERNEL)';
  const vols = spec.volumes ?? [];
  if (vols.some((v) => v.kind === 'virtiofs' && v.transport !== 'nfs')) return 'virtiofs volume (virtiofs blocks saving the VM)';
  if (vols.some((v) => v.kind === 'virtiofs')) return 'NFS volume (templates cover no NFS client yet)';
  return undefined;
}

/** The request of a container's VM (create: from its LaunchSpec, the accel decision and the NICs it will have). */
export function templateRequestFrom(spec: LaunchSpec, accel: 'kvm' | 'tcg', tscKhz: number | undefined, nics: number): TemplateRequest {
  return {
    hypervisor: spec.vm.hypervisor,
    accel,
    vcpus: spec.vm.vcpus,
    memoryMiB: spec.vm.memoryMiB,
    ...(tscKhz ? { tscKhz } : {}),
    nics,
    dataDisks: spec.disks.filter((d) => d.role === 'data').length,
  };
}

/**
 * The VM a request describes, exactly as the launcher plans it (planVm of a LaunchSpec of that shape, its NICs and
 * data disks as network/setup.ts and volumes/apply.ts add them), with the launcher's in-container paths.
 */
export function templateVm(req: TemplateRequest): VmPlan {
  const spec: LaunchSpec = {
    version: LAUNCH_SPEC_VERSION,
    containerId: 'template',
    process: { args: [], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false, rlimits: [], noNewPrivileges: false },
    hostname: '',
    vm: { hypervisor: req.hypervisor, accel: req.accel, vcpus: req.vcpus, memoryMiB: req.memoryMiB },
    kernel: { path: `${CONTAINER_PATHS.kernelDir}/vmlinux`, initrd: `${CONTAINER_PATHS.kernelDir}/initramfs.img`, append: '', debug: false },
    disks: [
      { id: 'base', path: CONTAINER_PATHS.baseDisk, readOnly: true, role: 'root' },
      { id: 'upper', path: CONTAINER_PATHS.upperDisk, readOnly: false, role: 'upper' },
      ...Array.from({ length: req.dataDisks }, (_, n) => ({ id: `disk${n}`, path: `/.runcvm/vols/disk${n}.img`, readOnly: false, role: 'data' as const })),
    ],
    mounts: [],
    network: { mode: req.nics > 0 ? 'auto' : 'none' },
    log: { level: 'error' },
    channel: { io: CONTAINER_PATHS.ioSocket, console: CONTAINER_PATHS.consoleSocket },
  };
  const vm = planVm(spec, req.accel, req.tscKhz ? { tscKhz: req.tscKhz } : {});
  // data disks run writeback (volumes/apply.ts withVolumes)
  const disks = vm.disks.map((d) => (d.id.startsWith('disk') ? { ...d, cache: 'writeback' as const } : d));
  // the MAC is the template's placeholder: each container's own arrives in RESUME
  const nics = Array.from({ length: req.nics }, (_, n) => ({ id: `net${n}`, tap: `tap-eth${n}`, mac: `52:54:00:00:00:${(n + 1).toString(16).padStart(2, '0')}` }));
  return { ...vm, disks, ...(nics.length ? { nics } : {}) };
}

/** The top-level fields in which two shapes differ (for a cold-boot reason a person can act on). */
export function shapeDifference(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k])).sort();
}

/**
 * The launcher's check (tmplvm's planRestore should call it after verifyTemplate): does the template create bound
 * (its manifest's key and shape) fit the VM the launcher is about to run? Create keyed the VM from what it could see
 * (say, no NIC yet when the engine connects one after create); undefined when it fits, else the cold-boot reason.
 */
export function launchKeyMismatch(vm: VmPlan, hv: Hypervisor, facts: TemplateKeyFacts, bound: { key: string; shape: Record<string, unknown> }): string | undefined {
  const k = templateKey(vm, hv, facts);
  if (!k.ok) return k.reason;
  if (k.key === bound.key) return undefined;
  const fields = shapeDifference(k.shape, bound.shape);
  return `the bound template does not fit this VM (differs in ${fields.length ? fields.join(', ') : 'its key'})`;
}
