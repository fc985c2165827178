/**
 * Volumes and data disks (issue 5, item 2). Pure: facts in, plan out.
 *
 * At `create` every OCI spec mount is classified:
 *   - system: proc/sysfs/devpts/mqueue/cgroup, anything under /proc, /sys, /dev, the guest's built-in mounts —
 *     provided by the guest init itself;
 *   - copied: the engine's /etc/hosts, /etc/hostname, /etc/resolv.conf — copied into the writable disk (core);
 *   - tmpfs: a guest tmpfs with the same options (core: launch.mounts / `tmpfs=` config lines);
 *   - volume: a bind mount of a host folder or file (docker -v, named volumes, Kubernetes emptyDir/configMap/…):
 *     shared live with the VM over virtiofs;
 *   - pvc: a bind mount of a Kubernetes network volume (nfs, csi, iscsi, rbd, cephfs, glusterfs, …): shared the same
 *     way, and logged as a PVC redirect.
 * Every volume/pvc is moved, in the launcher container, from its destination to `/.runcvm/vols/<id>` (the launcher
 * container is not the workload's view: the VM is); the launcher serves that folder to the VM with virtiofsd and the
 * guest init mounts it at the original destination with the original read-only/nosuid/nodev/noexec flags.
 * A bind of a single file is moved to `/.runcvm/vols/<id>/<name>`: the folder is shared and the guest bind-mounts the
 * file onto its destination.
 *
 * `RUNCVM_DISKS=src,dst,fs,size;…` adds file-backed disks: `src` (a path in the container, usually on a volume) is
 * created sparse and formatted on first use by the launcher, reused afterwards, attached as virtio-blk and mounted at
 * `dst` in the guest.
 */
import { posix } from 'node:path';
import type { LogEntry } from '../../core/log/index.js';
import { runcvmErrors } from '../errors.js';
import { DEFAULT_NODE_SETTINGS, overCap, SettingError } from '../launch/settings.js';
import { normalizeDestination, type OciMount, type OciSpec } from '../launch/oci.js';
import type { DataDisk, DiskFs, SharedVolume, Volume, VolumeFlags } from '../launch/volume-schema.js';
import { NFS_MOUNT_OPTIONS, NFS_PORT, NFS_SERVER_IP, volumeConfigLines, flagsText, dataDiskDevice } from '../launch/guest-volumes.js';

// the guest's view of volumes (config lines, NFS mount) is part of the hand-off, defined in launch/; re-exported here
export { normalizeDestination, NFS_MOUNT_OPTIONS, NFS_PORT, NFS_SERVER_IP, volumeConfigLines, flagsText, dataDiskDevice };
export type { DataDisk, DiskFs, SharedVolume, Volume, VolumeFlags };

/** The launcher container's folder that holds every relocated volume. */
export const VOLUMES_DIR = '/.runcvm/vols';
/** Default kubelet root; RUNCVM_KUBELET_DIR overrides it (tests use a temp folder). */
export const DEFAULT_KUBELET_DIR = '/var/lib/kubelet';
/** Kubernetes volume plugins whose data lives on the network (a "true PVC"). */
export const NETWORK_VOLUME_PLUGINS = [
  'nfs', 'csi', 'iscsi', 'rbd', 'cephfs', 'glusterfs', 'fc', 'flocker', 'quobyte', 'portworx-volume', 'storageos',
  'azure-file', 'azure-disk', 'aws-ebs', 'gce-pd', 'cinder', 'vsphere-volume', 'scaleio', 'photon-pd', 'local-volume',
] as const;

/** Mount types the guest kernel/init provides itself. */
const SYSTEM_TYPES = new Set(['proc', 'sysfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2', 'devtmpfs', 'securityfs', 'debugfs', 'tracefs', 'bpf', 'hugetlbfs']);
/** Destinations the guest init always mounts itself (mirrors launch/build.ts GUEST_BUILTIN_MOUNTS). */
const BUILTIN_DESTINATIONS = new Set(['/proc', '/sys', '/sys/fs/cgroup', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/run']);
/** Engine-managed files the VM gets as copies (mirrors launch/build.ts COPIED_FILES). */
const COPIED_DESTINATIONS = new Set(['/etc/hosts', '/etc/hostname', '/etc/resolv.conf']);

export type MountClass = 'system' | 'copied' | 'tmpfs' | 'volume' | 'pvc' | 'unsupported';


export function isBindMount(m: OciMount): boolean {
  const opts = m.options ?? [];
  return m.type === 'bind' || opts.includes('bind') || opts.includes('rbind');
}

/** `/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>[/…]` with a network plugin → its name. */
export function pvcInfo(source: string, kubeletDir: string): { plugin: string; name: string } | undefined {
  const root = normalizeDestination(kubeletDir);
  const rel = normalizeDestination(source);
  if (!rel.startsWith(`${root}/pods/`)) return undefined;
  const parts = rel.slice(root.length + 1).split('/');
  // pods, <uid>, volumes, kubernetes.io~<plugin>, <name>, …
  if (parts.length < 5 || parts[2] !== 'volumes') return undefined;
  const m = /^kubernetes\.io~(.+)$/.exec(parts[3]!);
  if (!m) return undefined;
  const plugin = m[1]!;
  if (!(NETWORK_VOLUME_PLUGINS as readonly string[]).includes(plugin)) return undefined;
  return { plugin, name: parts[4]! };
}

export function classifyMount(m: OciMount, kubeletDir: string = DEFAULT_KUBELET_DIR): MountClass {
  const dest = normalizeDestination(m.destination);
  const type = m.type ?? '';
  if (SYSTEM_TYPES.has(type)) return 'system';
  if (BUILTIN_DESTINATIONS.has(dest)) return 'system';
  if (dest === '/proc' || dest.startsWith('/proc/') || dest.startsWith('/sys/') || dest.startsWith('/dev/')) return 'system';
  if (type === 'tmpfs' && !isBindMount(m)) return 'tmpfs';
  if (isBindMount(m)) {
    if (COPIED_DESTINATIONS.has(dest)) return 'copied';
    if (!m.source) return 'unsupported';
    return pvcInfo(m.source, kubeletDir) ? 'pvc' : 'volume';
  }
  return 'unsupported';
}

/** What the host says about a bind source (stat at create). Missing → treated as a folder: runc reports it. */
export type SourceKind = 'dir' | 'file' | 'missing';


export function volumeFlags(options: readonly string[] | undefined): VolumeFlags {
  const f: VolumeFlags = { readOnly: false, nosuid: false, nodev: false, noexec: false };
  for (const o of options ?? []) {
    if (o === 'ro' || o === 'rro') f.readOnly = true;
    else if (o === 'rw' || o === 'rrw') f.readOnly = false;
    else if (o === 'nosuid') f.nosuid = true;
    else if (o === 'suid') f.nosuid = false;
    else if (o === 'nodev') f.nodev = true;
    else if (o === 'dev') f.nodev = false;
    else if (o === 'noexec') f.noexec = true;
    else if (o === 'exec') f.noexec = false;
  }
  return f;
}



export const SUPPORTED_DISK_FS: readonly DiskFs[] = ['ext4', 'ext3', 'ext2'];



export interface VolumePlan {
  volumes: Volume[];
  /** new destination in the launcher container for each relocated spec mount, by original index */
  relocations: { index: number; from: string; to: string }[];
  /** one log line per PVC redirect */
  redirects: { destination: string; to: string; plugin: string; name: string }[];
}

/** RUNCVM_DISKS errors are setting errors (BAD_SETTING: the entry, the problem, the fix). */
export { SettingError as VolumeSettingError };

export interface DiskRequest {
  source: string;
  destination: string;
  fs: DiskFs;
  sizeBytes: number;
}

const DISKS_FIX = 'write RUNCVM_DISKS=SRC,DST,FS,SIZE[;SRC,DST,FS,SIZE…] with absolute paths, FS ext4 (ext3, ext2), SIZE such as 512M or 1G, e.g. RUNCVM_DISKS=/disks/data.img,/data,ext4,1G';
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
export const MIN_DISK_BYTES = 8 * 1024 * 1024;

function parseDiskSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  return Number.isFinite(n) ? Math.floor(n) : undefined;
}

/**
 * Folders a disk image may not live in: the runtime's own (/.runcvm holds the host's state, log and package mounts)
 * and the kernel's. A disk on a volume is written as its path in the container (/data/x.img), never under /.runcvm.
 */
export const RESERVED_DISK_DIRS = ['/.runcvm', '/proc', '/sys', '/dev'] as const;

export function reservedDiskDir(path: string): string | undefined {
  const n = normalizeDestination(path);
  return RESERVED_DISK_DIRS.find((d) => n === d || n.startsWith(`${d}/`));
}

/**
 * Parse RUNCVM_DISKS. Every error names the bad entry and how to write it. Sizes above the node's cap
 * (RUNCVM_MAX_DISK_SIZE) are refused with the cap and how the node admin raises it.
 */
export function parseDisksSetting(text: string | undefined, opts: { maxDiskBytes?: number } = {}): DiskRequest[] {
  if (!text || !text.trim()) return [];
  const out: DiskRequest[] = [];
  const entries = text.split(';').map((e) => e.trim()).filter(Boolean);
  const bad = (entry: string, problem: string) => new SettingError('RUNCVM_DISKS', text, `entry "${entry}": ${problem}`, DISKS_FIX);
  for (const entry of entries) {
    const parts = entry.split(',').map((p) => p.trim());
    if (parts.length !== 4) throw bad(entry, `has ${parts.length} field${parts.length === 1 ? '' : 's'}, expected 4 (SRC,DST,FS,SIZE)`);
    const [src, dst, fs, size] = parts as [string, string, string, string];
    if (!src.startsWith('/')) throw bad(entry, `SRC "${src}" is not an absolute path`);
    if (src.endsWith('/')) throw bad(entry, `SRC "${src}" names a folder, not an image file`);
    const reserved = reservedDiskDir(src);
    if (reserved) throw bad(entry, `SRC "${src}" is under ${reserved}, which belongs to the runtime or the kernel, not to the container`);
    if (!dst.startsWith('/')) throw bad(entry, `DST "${dst}" is not an absolute path`);
    if (normalizeDestination(dst) === '/') throw bad(entry, 'DST cannot be / (the root filesystem)');
    const fsName = fs.toLowerCase();
    if (!(SUPPORTED_DISK_FS as readonly string[]).includes(fsName)) {
      const why = ['xfs', 'btrfs'].includes(fsName) ? `the guest kernel and package have no ${fsName} support` : `unknown filesystem "${fs}"`;
      throw bad(entry, `${why}; supported: ${SUPPORTED_DISK_FS.join(', ')}`);
    }
    const bytes = parseDiskSize(size);
    if (bytes === undefined) throw bad(entry, `SIZE "${size}" is not a size`);
    if (bytes < MIN_DISK_BYTES) throw bad(entry, `SIZE "${size}" is below the 8M minimum`);
    const capped = overCap('RUNCVM_DISKS', text, bytes, opts.maxDiskBytes ?? DEFAULT_NODE_SETTINGS.maxDiskBytes, 'RUNCVM_MAX_DISK_SIZE', "each image file is created on the node's disk: on a volume or in the container's own layer", `entry "${entry}"`);
    if (capped) throw capped;
    out.push({ source: posix.normalize(src), destination: normalizeDestination(dst), fs: fsName as DiskFs, sizeBytes: bytes });
  }
  const dests = new Set<string>();
  for (const d of out) {
    if (dests.has(d.destination)) throw new SettingError('RUNCVM_DISKS', text, `two disks are mounted at ${d.destination}`, DISKS_FIX);
    dests.add(d.destination);
  }
  return out;
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 48);
}

function isUnder(path: string, dir: string): boolean {
  return dir === '/' ? true : path === dir || path.startsWith(`${dir}/`);
}

export interface VolumeFacts {
  /** what each bind source is on the host, by source path */
  sources: Readonly<Record<string, SourceKind>>;
  kubeletDir: string;
  /** RUNCVM_DISKS text */
  disks?: string;
  /** the node's cap on each disk image (RUNCVM_MAX_DISK_SIZE) */
  maxDiskBytes?: number;
}

export function planVolumes(spec: OciSpec, facts: VolumeFacts): VolumePlan {
  const volumes: Volume[] = [];
  const relocations: VolumePlan['relocations'] = [];
  const redirects: VolumePlan['redirects'] = [];
  const shared: SharedVolume[] = [];
  (spec.mounts ?? []).forEach((m, index) => {
    const cls = classifyMount(m, facts.kubeletDir);
    if (cls !== 'volume' && cls !== 'pvc') return;
    const n = shared.length;
    const pvc = cls === 'pvc' ? pvcInfo(m.source!, facts.kubeletDir) : undefined;
    const id = pvc ? `v${n}-${sanitize(pvc.name)}` : `v${n}`;
    const containerPath = `${VOLUMES_DIR}/${id}`;
    const destination = normalizeDestination(m.destination);
    const isFile = facts.sources[m.source!] === 'file';
    const file = isFile ? sanitize(posix.basename(destination)) || 'file' : undefined;
    const v: SharedVolume = {
      kind: 'virtiofs',
      id,
      tag: `runcvm${n}`,
      destination,
      containerPath,
      flags: volumeFlags(m.options),
      hostSource: m.source!,
      ...(file ? { file } : {}),
      ...(pvc ? { pvc } : {}),
    };
    shared.push(v);
    volumes.push(v);
    relocations.push({ index, from: m.destination, to: file ? `${containerPath}/${file}` : containerPath });
    if (pvc) redirects.push({ destination, to: containerPath, plugin: pvc.plugin, name: pvc.name });
  });
  parseDisksSetting(facts.disks, facts.maxDiskBytes === undefined ? {} : { maxDiskBytes: facts.maxDiskBytes }).forEach((d, n) => {
    // the image file lives where the container sees it: on a volume (deepest destination wins) or in the image
    const on = [...shared].filter((v) => !v.file && isUnder(d.source, v.destination)).sort((a, b) => b.destination.length - a.destination.length)[0];
    const containerPath = on ? `${on.containerPath}${d.source.slice(on.destination === '/' ? 0 : on.destination.length)}` : d.source;
    volumes.push({ kind: 'disk', id: `disk${n}`, source: d.source, containerPath, destination: d.destination, fs: d.fs, sizeBytes: d.sizeBytes });
  });
  return { volumes, relocations, redirects };
}

/**
 * Why a data disk image may not be created or opened at `resolved` (the real path of its folder, or of the file,
 * in the launcher container): symlinks in the image may point anywhere in the launcher container, whose /.runcvm
 * holds the runtime's own host mounts (state, debug log, package); only the relocated volumes under /.runcvm/vols
 * belong to the container there.
 */
export function diskPathProblem(resolved: string): string | undefined {
  const n = normalizeDestination(resolved);
  if (isUnder(n, VOLUMES_DIR)) return undefined;
  const reserved = reservedDiskDir(n);
  return reserved ? `it resolves to ${n}, under ${reserved}, which belongs to the runtime or the kernel` : undefined;
}

/** The launcher container's mounts: each volume moved to its /.runcvm/vols/<id> path, options kept. */
export function relocateVolumeMounts(spec: OciSpec, plan: Pick<VolumePlan, 'relocations'>, original: OciSpec): OciSpec {
  if (plan.relocations.length === 0) return spec;
  const originals = original.mounts ?? [];
  const moved = new Map<string, string>();
  for (const r of plan.relocations) {
    const m = originals[r.index];
    if (m) moved.set(`${m.destination}\u0000${m.source ?? ''}`, r.to);
  }
  const mounts = (spec.mounts ?? []).map((m) => {
    const to = moved.get(`${m.destination}\u0000${m.source ?? ''}`);
    return to ? { ...m, destination: to } : m;
  });
  return { ...spec, mounts };
}

/**
 * Every change the launcher container needs for the volumes: the mounts moved. (The launcher's seccomp profile is
 * runcvm's own, which allows virtiofsd's unshare(CLONE_FS): bundle/transforms LAUNCHER_SECCOMP.)
 */
export function rewriteForVolumes(spec: OciSpec, plan: Pick<VolumePlan, 'relocations' | 'volumes'>, original: OciSpec): OciSpec {
  return relocateVolumeMounts(spec, plan, original);
}

export function sharedVolumes(volumes: readonly Volume[]): SharedVolume[] {
  return volumes.filter((v): v is SharedVolume => v.kind === 'virtiofs');
}

export function dataDisks(volumes: readonly Volume[]): DataDisk[] {
  return volumes.filter((v): v is DataDisk => v.kind === 'disk');
}

/**
 * Volume transport: Firecracker has no virtiofs → always nfs; QEMU → virtiofs unless RUNCVM_VOLUME_TRANSPORT=nfs.
 * Throws SettingError (BAD_SETTING) for any other value.
 */
export function volumeTransport(hypervisor: string, setting: string | undefined): 'virtiofs' | 'nfs' {
  const value = (setting ?? '').trim().toLowerCase();
  if (value !== '' && value !== 'virtiofs' && value !== 'nfs') {
    throw new SettingError('RUNCVM_VOLUME_TRANSPORT', setting ?? '', 'it must be virtiofs or nfs', 'write RUNCVM_VOLUME_TRANSPORT=virtiofs (default with QEMU) or RUNCVM_VOLUME_TRANSPORT=nfs (always used with Firecracker)');
  }
  if (hypervisor === 'firecracker') return 'nfs';
  return value === 'nfs' ? 'nfs' : 'virtiofs';
}

/** The plan with every shared volume marked for the NFS transport (unchanged for virtiofs). */
export function withVolumeTransport(plan: VolumePlan, transport: 'virtiofs' | 'nfs'): VolumePlan {
  if (transport !== 'nfs') return plan;
  return { ...plan, volumes: plan.volumes.map((v) => (v.kind === 'virtiofs' ? { ...v, transport: 'nfs' as const } : v)) };
}

/**
 * Volumes' part of create: the plan (volumes and RUNCVM_DISKS, with their transport) and what create logs about
 * them (PVC redirects, one line per volume). Refuses volumes a backend cannot share.
 */
export function planContainerVolumes(
  spec: OciSpec,
  input: { sources: Readonly<Record<string, SourceKind>>; kubeletDir?: string | undefined; disks?: string | undefined; maxDiskBytes?: number; hypervisor: string; transport?: string | undefined },
): { plan: VolumePlan; log: LogEntry[] } {
  const kubeletDir = input.kubeletDir || DEFAULT_KUBELET_DIR;
  const transport = volumeTransport(input.hypervisor, input.transport);
  const plan = withVolumeTransport(
    planVolumes(spec, { sources: input.sources, kubeletDir, ...(input.disks !== undefined ? { disks: input.disks } : {}), ...(input.maxDiskBytes !== undefined ? { maxDiskBytes: input.maxDiskBytes } : {}) }),
    transport,
  );
  const shared = sharedVolumes(plan.volumes);
  if (shared.length > 0 && input.hypervisor !== 'qemu' && transport !== 'nfs') {
    throw runcvmErrors.fail('VOLUMES_UNSUPPORTED', { hypervisor: input.hypervisor, volumes: shared.map((v) => v.destination).join(', ') });
  }
  const log: LogEntry[] = plan.redirects.map((r) => ({ level: 'info', msg: redirectLogLine(input.hypervisor, r) }));
  for (const v of plan.volumes) {
    if (v.kind === 'virtiofs') log.push({ level: 'info', msg: 'volume', fields: { transport, destination: v.destination, source: v.hostSource, container: v.containerPath, readOnly: v.flags.readOnly, file: v.file ?? '' } });
    else log.push({ level: 'info', msg: 'data disk', fields: { source: v.source, container: v.containerPath, destination: v.destination, fs: v.fs, bytes: v.sizeBytes } });
  }
  return { plan, log };
}

/** The one-line PVC redirect message of the troubleshooting guide (`FIRECRACKER:` / `QEMU:` = the hypervisor). */
export function redirectLogLine(hypervisor: string, r: { destination: string; to: string }): string {
  return `[RunCVM-Runtime] ${hypervisor.toUpperCase()}: PVC Redirect: ${r.destination} -> ${r.to}`;
}

/** The LaunchSpec with the volumes and the data disks (after root + upper, in RUNCVM_DISKS order). */
export function withVolumesInLaunch<L extends { disks: { id: string; path: string; readOnly: boolean; role: 'root' | 'upper' | 'data' }[]; volumes?: Volume[] }>(
  launch: L,
  plan: Pick<VolumePlan, 'volumes'>,
): L {
  if (plan.volumes.length === 0) return launch;
  const disks = [...launch.disks.filter((d) => d.role !== 'data'), ...dataDisks(plan.volumes).map((d) => ({ id: d.id, path: d.containerPath, readOnly: false, role: 'data' as const }))];
  return { ...launch, disks, volumes: [...plan.volumes] };
}
