/**
 * VM templates under Firecracker (issue 17; docs/dev/notes/templates.md §3.7), through its snapshot API. Pure.
 * - Build: the normal boot with TEMPLATE_CMDLINE_FLAG on the boot args; `save` pauses the VM (PATCH /vm), writes the
 *   state and memory files (PUT /snapshot/create, Full) and ends the process.
 * - Restore: a fresh process configured with nothing but its logger (--log-path), then PUT /snapshot/load (memory
 *   backend File: Firecracker maps the file MAP_PRIVATE, so idle VMs share its unchanged pages) with resume_vm, and
 *   this container's taps and vsock socket as overrides. Drives have no override: Firecracker reopens them at the
 *   paths the snapshot recorded, so those paths are part of the template's shape.
 * Firecracker's rules (docs/snapshotting/snapshot-support.md, v1.16.1): pause and create are post-boot only, create
 * needs the VM Paused; load only before any resource other than the logger and metrics is configured, and a failed
 * load ends the process.
 */
import { TEMPLATE_CMDLINE_FLAG } from '../../guest/contract.js';
import type { TemplateFiles, TemplateShape, VmPlan } from '../types.js';
import { networkInterfaces } from './net.js';
import { fromVmPlan, planFirecracker } from './plan.js';
import { assertValid, FIRECRACKER_VERSION } from './schema.js';
import type { ApiCall, FirecrackerVmInput, SnapshotCreateBody, SnapshotLoadBody, VmStateBody } from './types.js';

/** the restore plan's file: the load request start.ts sends, and the drives it then expects (RestoreSteps) */
export const RESTORE_FILE = 'firecracker-restore.json';

export function vmState(state: VmStateBody['state']): ApiCall {
  const body: VmStateBody = { state };
  assertValid('Vm', body, `vm ${state}`);
  return { method: 'PATCH', path: '/vm', body };
}

export const PAUSE_VM: ApiCall = vmState('Paused');
export const RESUME_VM: ApiCall = vmState('Resumed');
export const VM_CONFIG: ApiCall = { method: 'GET', path: '/vm/config' };

/** Full: the memory file holds the whole guest RAM (a Diff one would need a base to merge into). */
export function snapshotCreate(to: TemplateFiles): ApiCall {
  const body: SnapshotCreateBody = { snapshot_type: 'Full', snapshot_path: to.state, mem_file_path: to.memory };
  assertValid('SnapshotCreateParams', body, 'snapshot/create');
  return { method: 'PUT', path: '/snapshot/create', body };
}

/**
 * The load request of a restore. `resume_vm: false`: the drives are checked (GET /vm/config) before the guest runs,
 * then PATCH /vm Resumed. `network_overrides`: the template's NICs (same ids: they are in the shape) on this
 * container's taps. `vsock_override`: this container's vsock socket, wherever the builder's was. Not sent:
 * `clock_realtime` (it only moves kvmclock, needs host Linux ≥ 5.16, and the guest sets its wall clock from RESUME
 * anyway), `track_dirty_pages` (no diff snapshots are taken of a restored VM).
 */
export function snapshotLoad(from: TemplateFiles, input: Pick<FirecrackerVmInput, 'nics' | 'vsock'>): ApiCall {
  const body: SnapshotLoadBody = {
    snapshot_path: from.state,
    mem_backend: { backend_type: 'File', backend_path: from.memory },
    resume_vm: false,
    vsock_override: { uds_path: input.vsock.udsPath },
  };
  // the ids as the NIC builder sanitises them, which is what the snapshot recorded
  const nics = networkInterfaces(input).config['network-interfaces'] ?? [];
  if (nics.length) body.network_overrides = nics.map((n) => ({ iface_id: n.iface_id, host_dev_name: n.host_dev_name }));
  assertValid('SnapshotLoadParams', body, 'snapshot/load');
  return { method: 'PUT', path: '/snapshot/load', body };
}

/** A drive as the restored VM must have it: Firecracker reopened it at the path the snapshot recorded. */
export interface ExpectedDrive {
  drive_id: string;
  path_on_host: string;
  is_read_only: boolean;
}

/** What start() does for a restore, as data (the plan's RESTORE_FILE). */
export interface RestoreSteps {
  load: SnapshotLoadBody;
  drives: ExpectedDrive[];
}

export function restoreSteps(from: TemplateFiles, input: FirecrackerVmInput): RestoreSteps {
  const drives = planFirecracker(input).configFile.drives.map((d) => ({ drive_id: d.drive_id, path_on_host: d.path_on_host, is_read_only: d.is_read_only }));
  return { load: snapshotLoad(from, input).body as SnapshotLoadBody, drives };
}

/**
 * Why the restored VM's drives (GET /vm/config) are not this container's, or undefined. Drives have no load override:
 * a template built with other disk paths would run this container on the builder's disks (or fail to open them).
 */
export function drivesMismatch(expected: readonly ExpectedDrive[], config: unknown): string | undefined {
  const got = ((config as { drives?: unknown } | null)?.drives ?? []) as { drive_id: string; path_on_host?: string | null; is_read_only?: boolean | null }[];
  const show = (ds: readonly { drive_id: string; path_on_host?: string | null; is_read_only?: boolean | null }[]) =>
    ds.map((d) => `${d.drive_id}=${d.path_on_host ?? '?'}${d.is_read_only ? ' (ro)' : ''}`).join(', ') || 'none';
  const same =
    got.length === expected.length &&
    expected.every((e, i) => got[i]?.drive_id === e.drive_id && got[i]?.path_on_host === e.path_on_host && Boolean(got[i]?.is_read_only) === e.is_read_only);
  return same ? undefined : `the template's drives are ${show(got)}; this container's are ${show(expected)}`;
}

/** The template build's command line: the shared one, parked (the initramfs waits for RESUME before disks and NICs). */
export function templateCmdline(cmdline: string): string {
  const words = cmdline.split(/\s+/).filter(Boolean);
  return words.includes(TEMPLATE_CMDLINE_FLAG) ? words.join(' ') : [...words, TEMPLATE_CMDLINE_FLAG].join(' ');
}

/** The per-container words of the command line (constraint 5 of the design): the network reaches the guest in RESUME. */
const PER_CONTAINER_WORD = /^runcvm\.net\./;

/**
 * Firecracker's part of the template key: everything the snapshot freezes, as Firecracker's own request bodies. The
 * binary's version is not known here (this is pure): `readFirecrackerVersion` (version.ts) gives it to the key at
 * create, and Firecracker itself refuses a snapshot of another data version at load (→ TEMPLATE_LOAD → cold boot).
 */
export function firecrackerTemplateShape(vm: VmPlan): TemplateShape {
  if (vm.accel !== 'kvm') return { ok: false, reason: `firecracker runs only on KVM (accel ${vm.accel})` };
  // Firecracker has no virtiofs, and it refuses to snapshot a VM with vhost-user devices (its snapshot docs)
  if (vm.shares?.length) return { ok: false, reason: 'shared folders (vhost-user devices cannot be snapshotted by Firecracker)' };
  const words = vm.cmdline.split(/\s+/).filter(Boolean);
  if (words.some((w) => w.startsWith('runcvm.break='))) return { ok: false, reason: 'runcvm.break is set (the break shell must run in a cold boot)' };
  if (words.includes('runcvm.debug=1')) return { ok: false, reason: 'debug logging (runcvm.debug=1 on the kernel command line)' };
  let input: FirecrackerVmInput;
  let config: ReturnType<typeof planFirecracker>['configFile'];
  try {
    input = fromVmPlan({ ...vm, cmdline: templateCmdline(words.filter((w) => !PER_CONTAINER_WORD.test(w)).join(' ')) });
    config = planFirecracker(input).configFile;
  } catch (err) {
    return { ok: false, reason: `no Firecracker configuration for this VM: ${(err as Error).message}` };
  }
  const shape: Record<string, unknown> = {
    hypervisor: 'firecracker',
    api: FIRECRACKER_VERSION,
    'machine-config': config['machine-config'],
    // the kernel and initramfs are in guest memory (their hashes are in the key from the asset manifest): only the
    // command line the guest booted with is Firecracker's to freeze
    boot_args: config['boot-source'].boot_args,
    // reopened at these paths on load (no override exists): a container whose disks live elsewhere needs another template
    drives: config.drives,
    // taps come from network_overrides and MACs from RESUME: only the set of NICs is frozen
    'network-interfaces': (config['network-interfaces'] ?? []).map((n) => ({ iface_id: n.iface_id })),
    vsock: { guest_cid: config.vsock?.guest_cid },
  };
  return { ok: true, shape };
}
