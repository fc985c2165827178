/**
 * A passed user-namespace probe, remembered for the next builds of this boot: the `unshare` child (and its overlay
 * mount) is the costly part of the preflight (a process start: 20-150 ms on a loaded node), and its answer cannot
 * change while nothing it depends on does. What it depends on is the key: the boot (/proc/sys/kernel/random/boot_id),
 * the UID/GID, the process's user and mount namespaces (another container is another namespace), its capability
 * sets, NoNewPrivs and seccomp mode (from /proc/self/status), max_user_namespaces, the storage driver, and the
 * storage root with the device and inode of the folder the overlay probe mounts in (another volume at the same path
 * is another key). Only a success is remembered; `check-environment` always probes for real; a build that fails in
 * Buildah forgets the entry.
 *
 * The file lives in the user's cache folder ($XDG_CACHE_HOME/kimia or $HOME/.cache/kimia, 0700), holds at most
 * MAX_ENTRIES keys of one boot (an entry from another boot is never read, and is dropped on the next write), and is
 * believed only when it is a regular file of this UID that nobody else can write.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const MAX_ENTRIES = 16;

interface CacheFile {
  v: 1;
  bootId: string;
  entries: { key: string; at: string }[];
}

/** What the namespace probe's answer depends on (see the header); read synchronously, a few small files. */
export interface NamespaceKeyInput {
  bootId: string;
  uid: number;
  gid: number;
  userNs: string;
  mntNs: string;
  /** CapEff, CapBnd, NoNewPrivs and Seccomp lines of /proc/self/status */
  status: string;
  maxUserNamespaces: string;
  storageDriver: string;
  storageRoot: string;
  /** device:inode of the folder the overlay probe mounts in (dirname of the storage root) */
  probeDir: string;
}

/** Pure: the key of one set of inputs. */
export function namespaceKey(input: NamespaceKeyInput): string {
  return createHash('sha256').update(JSON.stringify({ v: 1, ...input })).digest('hex');
}

/** Pure: the lines of /proc/self/status that decide what a namespace child may do. */
export function statusLines(status: string): string {
  return status.split('\n').filter((l) => /^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):/.test(l)).map((l) => l.replace(/\s+/g, ' ').trim()).join(';');
}

/** The key inputs of this process, or undefined when one cannot be read (then nothing is cached). */
export function readKeyInput(storage: { root: string; driver: string }, proc = '/proc'): NamespaceKeyInput | undefined {
  try {
    const probeDir = statSync(dirname(storage.root));
    return {
      bootId: readFileSync(join(proc, 'sys/kernel/random/boot_id'), 'utf8').trim(),
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      userNs: readlinkSync(join(proc, 'self/ns/user')),
      mntNs: readlinkSync(join(proc, 'self/ns/mnt')),
      status: statusLines(readFileSync(join(proc, 'self/status'), 'utf8')),
      maxUserNamespaces: readFileSync(join(proc, 'sys/user/max_user_namespaces'), 'utf8').trim(),
      storageDriver: storage.driver,
      storageRoot: storage.root,
      probeDir: `${probeDir.dev}:${probeDir.ino}`,
    };
  } catch {
    return undefined;
  }
}

/** $XDG_CACHE_HOME/kimia/preflight.json (an absolute XDG_CACHE_HOME only), else $HOME/.cache/kimia/preflight.json */
export function cacheFile(env: Record<string, string | undefined>, home: string): string {
  const base = env.XDG_CACHE_HOME?.startsWith('/') ? env.XDG_CACHE_HOME : join(home, '.cache');
  return join(base, 'kimia', 'preflight.json');
}

/** The file's content when it is ours to believe: a regular file of this UID, writable by nobody else. */
function readOwn(file: string): CacheFile | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== (process.getuid?.() ?? 0) || (st.mode & 0o022) !== 0 || st.size > 64 * 1024) return undefined;
    const parsed = JSON.parse(readFileSync(fd, 'utf8')) as Partial<CacheFile>;
    if (parsed.v !== 1 || typeof parsed.bootId !== 'string' || !Array.isArray(parsed.entries)) return undefined;
    const entries = parsed.entries.filter((e): e is { key: string; at: string } => typeof e?.key === 'string' && /^[0-9a-f]{64}$/.test(e.key) && typeof e.at === 'string');
    return { v: 1, bootId: parsed.bootId, entries };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeOwn(file: string, content: CacheFile): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, JSON.stringify(content) + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
}

/** Did a namespace probe with this key pass earlier in this boot? */
export function passedBefore(file: string, input: NamespaceKeyInput): boolean {
  const cached = readOwn(file);
  if (!cached || cached.bootId !== input.bootId) return false;
  const key = namespaceKey(input);
  return cached.entries.some((e) => e.key === key);
}

/** Remember a passed probe (newest last, at most MAX_ENTRIES, entries of other boots dropped). Never throws. */
export function rememberPass(file: string, input: NamespaceKeyInput, now = new Date()): void {
  try {
    const cached = readOwn(file);
    const key = namespaceKey(input);
    const kept = cached && cached.bootId === input.bootId ? cached.entries.filter((e) => e.key !== key) : [];
    writeOwn(file, { v: 1, bootId: input.bootId, entries: [...kept, { key, at: now.toISOString() }].slice(-MAX_ENTRIES) });
  } catch {
    /* the next build probes again */
  }
}

/** Forget a remembered probe (a build that then failed in Buildah). Never throws. */
export function forgetPass(file: string, input: NamespaceKeyInput): void {
  try {
    const cached = readOwn(file);
    if (!cached) return;
    const key = namespaceKey(input);
    if (!cached.entries.some((e) => e.key === key)) return;
    writeOwn(file, { ...cached, entries: cached.entries.filter((e) => e.key !== key) });
  } catch {
    /* nothing to forget */
  }
}
