/**
 * Test images built without the internet and pushed to a harness registry.
 *
 *   const ref = await pushBusyboxImage(reg);            // "127.0.0.1:PORT/busybox:latest" (cmd ["sh"])
 *   const big = await pushDebootstrapImage(reg);        // "127.0.0.1:PORT/debian:bookworm" (~200 MB, cached)
 *   const rootfs = await busyboxRootfs(join(tmp, 'rootfs'));  // a folder for OCI bundles
 *
 * The busybox rootfs has /etc/passwd (root, nobody, app uid 1000 gid 1000), /etc/group (app, extra gid 2000 with
 * member app), /tmp 1777. Caches live in var/cache/ (busybox-rootfs/, debootstrap/) and are rebuilt when missing;
 * a lock folder serialises concurrent builders (several test files may ask at once).
 * buildah always runs with `--storage-driver vfs --root/--runroot` under a temp dir (never the host's storage) and
 * `BUILDAH_ISOLATION=chroot`.
 */
import { chmod, chown, copyFile, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { run, type RunOptions, type RunResult } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import type { StartedRegistry } from './services/registry.js';
import { unmountAll } from './proc.js';

export const CACHE_DIR = projectPath('var', 'cache');
/**
 * Caches that outlive a checkout (a fresh clone, a CI workspace wiped between runs): the Debian 13 base tree and the
 * layer cache of the images built by `npm run images`. `KIMIA_RUNCVM_CACHE` moves it; root's default is under
 * /var/cache, another user's under ~/.cache. Bounded: one tree and one OCI layout per Debian suite, and the image
 * build cache, which kimia itself keeps (one storage folder).
 */
export function sharedCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.KIMIA_RUNCVM_CACHE) return env.KIMIA_RUNCVM_CACHE;
  if (process.getuid?.() === 0) return '/var/cache/kimia-runcvm';
  return join(env.XDG_CACHE_HOME || join(env.HOME || '/tmp', '.cache'), 'kimia-runcvm');
}
const BUSYBOX_CACHE = join(CACHE_DIR, 'busybox-rootfs');
const DEBOOTSTRAP_CACHE = join(CACHE_DIR, 'debootstrap');
const DEBOOTSTRAP_TAR = join(DEBOOTSTRAP_CACHE, 'bookworm-minbase.tar');
const DEBOOTSTRAP_OCI = join(DEBOOTSTRAP_CACHE, 'bookworm-minbase.oci');

const exists = (p: string) => stat(p).then(() => true, () => false);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Cross-process lock: a folder holding the owner's pid; a dead owner's lock is taken over. */
export async function withLock<T>(lockDir: string, fn: () => Promise<T>, timeoutMs = 15 * 60_000): Promise<T> {
  await mkdir(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => ''));
      if (owner && !pidAlive(owner)) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for lock ${lockDir} (held by pid ${owner || '?'})`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'app:x:1000:1000:app:/home/app:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');
const GROUP = ['root:x:0:', 'app:x:1000:', 'extra:x:2000:app', 'nogroup:x:65534:', ''].join('\n');

async function buildBusyboxTree(dir: string): Promise<void> {
  const busybox = (await run('sh', ['-c', 'command -v busybox'])).stdout.trim() || '/bin/busybox';
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'root', 'home/app', 'var', 'run', 'tmp']) {
    await mkdir(join(dir, d), { recursive: true });
  }
  await copyFile(busybox, join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  const applets = (await run(busybox, ['--list-full'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  for (const applet of applets) {
    if (applet === 'bin/busybox') continue;
    await symlink('/bin/busybox', join(dir, applet)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
  await writeFile(join(dir, 'etc', 'passwd'), PASSWD, { mode: 0o644 });
  await writeFile(join(dir, 'etc', 'group'), GROUP, { mode: 0o644 });
  await chmod(join(dir, 'tmp'), 0o1777);
  await chmod(join(dir, 'root'), 0o700);
  // as root only; a rootless build keeps the caller's ownership
  await chown(join(dir, 'home', 'app'), 1000, 1000).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPERM') throw err;
  });
}

async function ensureBusyboxCache(): Promise<string> {
  if (await exists(join(BUSYBOX_CACHE, 'bin', 'busybox'))) return BUSYBOX_CACHE;
  return withLock(`${BUSYBOX_CACHE}.lock`, async () => {
    if (await exists(join(BUSYBOX_CACHE, 'bin', 'busybox'))) return BUSYBOX_CACHE;
    const temp = `${BUSYBOX_CACHE}.tmp-${process.pid}`;
    await rm(temp, { recursive: true, force: true });
    await buildBusyboxTree(temp);
    await rm(BUSYBOX_CACHE, { recursive: true, force: true });
    await rename(temp, BUSYBOX_CACHE);
    return BUSYBOX_CACHE;
  });
}

/** Fill `dir` (created if needed) with the busybox rootfs; returns `dir`. */
export async function busyboxRootfs(dir: string): Promise<string> {
  const cache = await ensureBusyboxCache();
  await mkdir(dir, { recursive: true });
  await run('cp', ['-a', `${cache}/.`, `${dir}/`]);
  return dir;
}

/** A throwaway buildah store (vfs, chroot isolation) under a temp dir. */
export interface BuildahStore extends AsyncDisposable {
  dir: string;
  buildah(args: string[], opts?: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

export async function buildahStore(): Promise<BuildahStore> {
  const closers = new CloserStack();
  const dir = await tempDir('harness-buildah', closers);
  closers.push('unmount buildah store', () => unmountAll(dir));
  const globals = ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'vfs'];
  const close = async () => {
    await closers.close();
  };
  return {
    dir,
    buildah: (args, opts = {}) =>
      run('buildah', [...globals, ...args], { ...opts, env: { BUILDAH_ISOLATION: 'chroot', TMPDIR: dir, ...opts.env } }),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Flags for buildah/skopeo to reach this registry (TLS: --cert-dir, plain: --tls-verify=false, creds). */
export function registryFlags(registry: StartedRegistry, credsFlag = '--creds'): { args: string[]; secrets: string[] } {
  const args = registry.tls ? ['--cert-dir', registry.tls.certDir] : ['--tls-verify=false'];
  const secrets: string[] = [];
  if (registry.auth) {
    args.push(credsFlag, `${registry.auth.username}:${registry.auth.password}`);
    secrets.push(registry.auth.password);
  }
  return { args, secrets };
}

function refFor(registry: StartedRegistry, name: string, defaultTag: string): string {
  const last = name.split('/').pop() ?? name;
  return `${registry.host}/${last.includes(':') ? name : `${name}:${defaultTag}`}`;
}

/** busybox image (cmd ["sh"]) pushed to the registry; returns "HOST/NAME:latest". */
export async function pushBusyboxImage(registry: StartedRegistry, name = 'busybox'): Promise<string> {
  const rootfs = await ensureBusyboxCache();
  const ref = refFor(registry, name, 'latest');
  const store = await buildahStore();
  try {
    const ctr = (await store.buildah(['from', '--isolation', 'chroot', '--name', 'harness-busybox', 'scratch'])).stdout.trim();
    await store.buildah(['copy', ctr, `${rootfs}/.`, '/']);
    await store.buildah(['config', '--cmd', 'sh', '--env', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ctr]);
    await store.buildah(['commit', '--timestamp', '0', ctr, 'localhost/harness-busybox:latest']);
    const { args, secrets } = registryFlags(registry);
    await store.buildah(['push', ...args, 'localhost/harness-busybox:latest', `docker://${ref}`], { secrets });
  } finally {
    await store.close();
  }
  return ref;
}

export type DebianSuite = 'bookworm' | 'trixie';

interface DebianCache {
  dir: string;
  tar: string;
  oci: string;
  lock: string;
}

/** bookworm stays where the suite always kept it (var/cache); trixie lives in the shared cache outside the checkout. */
function debianCache(suite: DebianSuite): DebianCache {
  if (suite === 'bookworm') return { dir: DEBOOTSTRAP_CACHE, tar: DEBOOTSTRAP_TAR, oci: DEBOOTSTRAP_OCI, lock: join(CACHE_DIR, 'debootstrap.lock') };
  const dir = join(sharedCacheDir(), 'debootstrap');
  return { dir, tar: join(dir, `${suite}-minbase.tar`), oci: join(dir, `${suite}-minbase.oci`), lock: join(dir, `${suite}.lock`) };
}

/**
 * What the official `debian:*-slim` images leave out (their /etc/dpkg/dpkg.cfg.d exclusions): documentation, man
 * pages and translations of packages installed later. Written into the trixie tree so that an image built on it
 * is as lean as one built on the public slim image.
 */
const SLIM_DPKG_EXCLUDES = [
  '# like debian:*-slim: no documentation, man pages or translations from packages installed later',
  'path-exclude /usr/share/doc/*',
  'path-include /usr/share/doc/*/copyright',
  'path-exclude /usr/share/man/*',
  'path-exclude /usr/share/info/*',
  'path-exclude /usr/share/locale/*',
  'path-include /usr/share/locale/locale.alias',
  'path-exclude /usr/share/lintian/*',
  '',
].join('\n');

async function ensureDebootstrapTar(suite: DebianSuite): Promise<string> {
  const cache = debianCache(suite);
  if (await exists(cache.tar)) return cache.tar;
  await mkdir(cache.dir, { recursive: true });
  const work = await import('node:fs/promises').then((fs) => fs.mkdtemp(join(cache.dir, 'build-')));
  try {
    const target = join(work, 'rootfs');
    const mirror = process.env.DEBOOTSTRAP_MIRROR || 'http://deb.debian.org/debian';
    await run('debootstrap', ['--variant=minbase', suite, target, mirror], { timeoutMs: 15 * 60_000 });
    await unmountAll(target);
    if (suite !== 'bookworm') {
      await writeFile(join(target, 'etc', 'dpkg', 'dpkg.cfg.d', 'slim'), SLIM_DPKG_EXCLUDES, { mode: 0o644 });
      // apt's package lists are 50+ MB; an image build runs `apt-get update` first anyway
      await run('sh', ['-c', 'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb', 'sh', target]);
    }
    const partial = join(work, 'rootfs.tar');
    await run('tar', ['--numeric-owner', '--xattrs', '-C', target, '--exclude=./dev/*', '--exclude=./proc/*', '--exclude=./sys/*',
      '--exclude=./run/*', '--exclude=./tmp/*', '--exclude=./debootstrap', '-cf', partial, '.']);
    await rename(partial, cache.tar);
  } finally {
    await unmountAll(work);
    await rm(work, { recursive: true, force: true });
  }
  return cache.tar;
}

/**
 * Build the cached debootstrap OCI layout if missing (compressed once, so later pushes are plain uploads). The
 * suite's global set-up calls this once per suite, outside any test timeout.
 */
export async function ensureDebootstrapOci(suite: DebianSuite = 'bookworm'): Promise<string> {
  const cache = debianCache(suite);
  if (await exists(join(cache.oci, 'index.json'))) return cache.oci;
  return withLock(cache.lock, async () => {
    if (await exists(join(cache.oci, 'index.json'))) return cache.oci;
    const tar = await ensureDebootstrapTar(suite);
    const partial = `${cache.oci}.tmp-${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    const store = await buildahStore();
    try {
      const ctr = (await store.buildah(['from', '--isolation', 'chroot', '--name', 'harness-debian', 'scratch'])).stdout.trim();
      await store.buildah(['add', ctr, tar, '/']);
      await store.buildah(['config', '--cmd', 'bash', '--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ctr]);
      await store.buildah(['commit', '--timestamp', '0', ctr, `localhost/harness-debian:${suite}`]);
      await store.buildah(['push', `localhost/harness-debian:${suite}`, `oci:${partial}:${suite}`]);
    } finally {
      await store.close();
    }
    await rm(cache.oci, { recursive: true, force: true });
    await rename(partial, cache.oci);
    return cache.oci;
  });
}

/** Copy an OCI layout's image to `ref` in the registry (skopeo, the registry's TLS and credentials). */
async function copyLayoutToRegistry(registry: StartedRegistry, layout: string, tag: string, ref: string): Promise<void> {
  const { args, secrets } = registryFlags(registry, '--dest-creds');
  const destArgs = args.map((a) => (a === '--cert-dir' ? '--dest-cert-dir' : a === '--tls-verify=false' ? '--dest-tls-verify=false' : a));
  await run('skopeo', ['copy', '--quiet', ...destArgs, `oci:${layout}:${tag}`, `docker://${ref}`], { secrets, timeoutMs: 10 * 60_000 });
}

/**
 * debootstrap --variant=minbase trixie with the slim images' dpkg exclusions (~110 MB), pushed to the registry;
 * returns "HOST/NAME:trixie-slim". The suite's stand-in for the public `debian:trixie-slim`.
 */
export async function pushTrixieImage(registry: StartedRegistry, name = 'debian'): Promise<string> {
  const layout = await ensureDebootstrapOci('trixie');
  const ref = refFor(registry, name, 'trixie-slim');
  await copyLayoutToRegistry(registry, layout, 'trixie', ref);
  return ref;
}

/** debootstrap --variant=minbase bookworm (~200 MB) pushed to the registry; returns "HOST/NAME:bookworm". */
export async function pushDebootstrapImage(registry: StartedRegistry, name = 'debian'): Promise<string> {
  const layout = await ensureDebootstrapOci('bookworm');
  const ref = refFor(registry, name, 'bookworm');
  await copyLayoutToRegistry(registry, layout, 'bookworm', ref);
  return ref;
}
