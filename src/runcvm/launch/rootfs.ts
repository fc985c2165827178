/**
 * The workload's own view of /proc, /dev and /sys in the guest (guest/rootfs.c), from config.json: the spec's mounts
 * there, in the spec's order, replayed in the workload's mount namespace instead of the guest init's (whose /dev is a
 * devtmpfs with the VM's raw disks, and whose /sys is writable), with the spec's other tmpfs mounts in their places
 * (except one a volume is mounted inside: the init mounts that one, before the volumes); the device nodes runc
 * makes in /dev; the masked and read-only paths. Pure.
 *
 * As runc: a `cgroup` mount is cgroup2 (the guest kernel's unified hierarchy, as runc mounts it on a cgroup v2 host);
 * a mount asked read-only at /dev or of a tmpfs becomes read-only after its contents exist. Differences a VM forces:
 * a bind mount from the host at /dev/shm or /dev/mqueue (Docker's, the CRI's shared IPC) becomes a fresh tmpfs or
 * mqueue of the guest (the IPC namespace cannot reach across VMs); other host binds there (device files, a
 * termination log) are not replayed; a spec without /proc, /dev or /dev/pts still gets them (the guest needs them).
 */
import { normalizeDestination, isBindMount } from '../volumes/plan.js';
import type { OciDevice, OciMount, OciSpec } from './oci.js';

/** mount(2) flags (linux/mount.h) */
export const MS = {
  RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, SYNCHRONOUS: 16, REMOUNT: 32, MANDLOCK: 64, DIRSYNC: 128, NOATIME: 1024,
  NODIRATIME: 2048, BIND: 4096, REC: 16384, SILENT: 32768, POSIXACL: 1 << 16, RELATIME: 1 << 21, I_VERSION: 1 << 23,
  STRICTATIME: 1 << 24, LAZYTIME: 1 << 25,
} as const;

/** runc's parseMountOptions table: option → [clears?, flag] */
const FLAG_OPTIONS: Record<string, [boolean, number]> = {
  acl: [false, MS.POSIXACL], async: [true, MS.SYNCHRONOUS], atime: [true, MS.NOATIME], bind: [false, MS.BIND], defaults: [false, 0],
  dev: [true, MS.NODEV], diratime: [true, MS.NODIRATIME], dirsync: [false, MS.DIRSYNC], exec: [true, MS.NOEXEC],
  iversion: [false, MS.I_VERSION], lazytime: [false, MS.LAZYTIME], loud: [true, MS.SILENT], mand: [false, MS.MANDLOCK],
  noacl: [true, MS.POSIXACL], noatime: [false, MS.NOATIME], nodev: [false, MS.NODEV], nodiratime: [false, MS.NODIRATIME],
  noexec: [false, MS.NOEXEC], noiversion: [true, MS.I_VERSION], nolazytime: [true, MS.LAZYTIME], nomand: [true, MS.MANDLOCK],
  norelatime: [true, MS.RELATIME], nostrictatime: [true, MS.STRICTATIME], nosuid: [false, MS.NOSUID], rbind: [false, MS.BIND | MS.REC],
  relatime: [false, MS.RELATIME], remount: [false, MS.REMOUNT], ro: [false, MS.RDONLY], rw: [true, MS.RDONLY],
  silent: [false, MS.SILENT], strictatime: [false, MS.STRICTATIME], suid: [true, MS.NOSUID], sync: [false, MS.SYNCHRONOUS],
};
/** propagation and runc's own extensions: nothing to pass to mount(2) for a fresh pseudo filesystem */
const IGNORED_OPTIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable', 'tmpcopyup']);

/** OCI mount options → mount(2) flags and the filesystem's data string (what runc passes). */
export function mountFlags(options: readonly string[]): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = FLAG_OPTIONS[o];
    if (f) flags = f[0] ? flags & ~f[1] : flags | f[1];
    else if (!IGNORED_OPTIONS.has(o)) data.push(o);
  }
  // a replayed mount is a new filesystem, never a bind or a remount
  return { flags: flags & ~(MS.BIND | MS.REC | MS.REMOUNT), data: data.join(',') };
}

export interface RootfsMount {
  type: string;
  source: string;
  destination: string;
  options: string[];
}

export interface RootfsDevice {
  path: string;
  /** c (and u), b, p */
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

export interface Rootfs {
  mounts: RootfsMount[];
  devices: RootfsDevice[];
  maskedPaths: string[];
  readonlyPaths: string[];
}

export class GuestSpecError extends Error {
  constructor(
    readonly problem: string,
    readonly fix: string,
  ) {
    super(problem);
  }
}

const REPLAYED_TYPES = new Set(['proc', 'sysfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2', 'tmpfs']);
const under = (dest: string, root: string) => dest === root || dest.startsWith(root === '/' ? '/' : `${root}/`);
/** the pseudo filesystems' home: the workload's namespace replays the spec's mounts there instead of init's */
export const isGuestSystemPath = (dest: string) => ['/proc', '/dev', '/sys'].some((r) => under(normalizeDestination(dest), r));
/** destinations the guest init owns whatever the spec says (its /run: launch/build.ts rootFromSpec) */
const INIT_OWNED = new Set(['/run']);

/**
 * A tmpfs at `dest` that a volume (a host bind, mounted by the guest init before the workload's namespace exists) is
 * mounted inside: the init mounts that tmpfs first (a tmpfs replayed later would hide the volume).
 */
export function holdsVolume(spec: OciSpec, dest: string): boolean {
  const d = normalizeDestination(dest);
  return (spec.mounts ?? []).some((m) => isBindMount(m) && !isGuestSystemPath(m.destination) && under(normalizeDestination(m.destination), d) && normalizeDestination(m.destination) !== '/');
}

/** runc's default devices (libcontainer/specconv AllowedDevices with a path) */
export const DEFAULT_DEVICES: readonly RootfsDevice[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
];

const FALLBACK = {
  proc: { type: 'proc', source: 'proc', destination: '/proc', options: ['nosuid', 'noexec', 'nodev'] },
  dev: { type: 'tmpfs', source: 'tmpfs', destination: '/dev', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  pts: { type: 'devpts', source: 'devpts', destination: '/dev/pts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
} as const satisfies Record<string, RootfsMount>;

/** A path the guest makes or mounts over: absolute, without `..` (it is resolved inside the VM, as root). */
function checkedPath(path: string, what: string): string {
  if (!path.startsWith('/') || path.split('/').includes('..')) {
    throw new GuestSpecError(`${what} "${path}" is not an absolute path without ".."`, `give ${what} as an absolute path inside the container, as runc requires`);
  }
  return normalizeDestination(path);
}

function replayed(m: OciMount, dest: string): RootfsMount | undefined {
  const type = m.type ?? '';
  const options = [...(m.options ?? [])];
  if (REPLAYED_TYPES.has(type) && !isBindMount(m)) {
    return { type: type === 'cgroup' ? 'cgroup2' : type, source: m.source || type, destination: dest, options };
  }
  const ro = options.includes('ro') ? ['ro'] : [];
  if (dest === '/dev/shm') return { type: 'tmpfs', source: 'shm', destination: dest, options: ['nosuid', 'noexec', 'nodev', 'mode=1777', ...ro] };
  if (dest === '/dev/mqueue') return { type: 'mqueue', source: 'mqueue', destination: dest, options: ['nosuid', 'noexec', 'nodev', ...ro] };
  return undefined;
}

function devicesFromSpec(devices: readonly OciDevice[]): RootfsDevice[] {
  const own = devices.map((d, i): RootfsDevice => {
    const path = checkedPath(d.path, `linux.devices[${i}].path`);
    const type = d.type === 'u' ? 'c' : d.type;
    if (type !== 'c' && type !== 'b' && type !== 'p') {
      throw new GuestSpecError(`linux.devices[${i}] (${d.path}) has type "${d.type}"`, 'use c (or u), b or p, as the OCI runtime spec defines');
    }
    return { path, type, major: d.major ?? 0, minor: d.minor ?? 0, fileMode: (d.fileMode ?? 0o666) & 0o7777, uid: d.uid ?? 0, gid: d.gid ?? 0 };
  });
  const paths = new Set(own.map((d) => d.path));
  // runc: a spec device replaces the default at its path; /dev/ptmx is always the link to pts/ptmx
  return [...DEFAULT_DEVICES.filter((d) => !paths.has(d.path)), ...own].filter((d) => d.path !== '/dev/ptmx');
}

export function rootfsFromSpec(spec: OciSpec): Rootfs {
  const mounts: RootfsMount[] = [];
  for (const m of spec.mounts ?? []) {
    if (isGuestSystemPath(m.destination)) {
      const r = replayed(m, checkedPath(m.destination, 'a mount destination'));
      if (r) mounts.push(r);
    } else if (m.type === 'tmpfs' && !isBindMount(m) && !INIT_OWNED.has(normalizeDestination(m.destination)) && !holdsVolume(spec, m.destination)) {
      // every other tmpfs too, so the workload's mounts keep the spec's order (runtime-tools checks it)
      mounts.push({ type: 'tmpfs', source: m.source || 'tmpfs', destination: checkedPath(m.destination, 'a mount destination'), options: [...(m.options ?? [])] });
    }
  }
  const has = (dest: string) => mounts.some((m) => m.destination === dest);
  const head: RootfsMount[] = [];
  if (!has('/proc')) head.push({ ...FALLBACK.proc, options: [...FALLBACK.proc.options] });
  if (!has('/dev')) head.push({ ...FALLBACK.dev, options: [...FALLBACK.dev.options] });
  const out = [...head, ...mounts];
  if (!has('/dev/pts')) out.splice(out.findIndex((m) => m.destination === '/dev') + 1, 0, { ...FALLBACK.pts, options: [...FALLBACK.pts.options] });
  const linux = spec.linux ?? {};
  return {
    mounts: out,
    devices: devicesFromSpec(linux.devices ?? []),
    maskedPaths: (linux.maskedPaths ?? []).map((p, i) => checkedPath(p, `linux.maskedPaths[${i}]`)),
    readonlyPaths: (linux.readonlyPaths ?? []).map((p, i) => checkedPath(p, `linux.readonlyPaths[${i}]`)),
  };
}

/** OCI linux.sysctl, checked: a key names a file under /proc/sys (dots or slashes between plain names). */
export function sysctlFromSpec(spec: OciSpec): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(spec.linux?.sysctl ?? {})) {
    if (!/^[A-Za-z0-9_-]+([./][A-Za-z0-9_:+-]+)*$/.test(key)) {
      throw new GuestSpecError(`linux.sysctl key "${key}" does not name a kernel parameter`, 'use a name as sysctl(8) prints it, e.g. net.ipv4.ip_forward');
    }
    out[key] = String(value);
  }
  return out;
}
