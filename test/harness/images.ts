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

async function ensureDebootstrapTar(): Promise<string> {
  if (await exists(DEBOOTSTRAP_TAR)) return DEBOOTSTRAP_TAR;
  await mkdir(DEBOOTSTRAP_CACHE, { recursive: true });
  const work = await import('node:fs/promises').then((fs) => fs.mkdtemp(join(DEBOOTSTRAP_CACHE, 'build-')));
  try {
    const target = join(work, 'rootfs');
    const mirror = process.env.DEBOOTSTRAP_MIRROR || 'http://deb.debian.org/debian';
    await run('debootstrap', ['--variant=minbase', 'bookworm', target, mirror], { timeoutMs: 15 * 60_000 });
    await unmountAll(target);
    const partial = join(work, 'rootfs.tar');
    await run('tar', ['--numeric-owner', '--xattrs', '-C', target, '--exclude=./dev/*', '--exclude=./proc/*', '--exclude=./sys/*',
      '--exclude=./run/*', '--exclude=./tmp/*', '--exclude=./debootstrap', '-cf', partial, '.']);
    await rename(partial, DEBOOTSTRAP_TAR);
  } finally {
    await unmountAll(work);
    await rm(work, { recursive: true, force: true });
  }
  return DEBOOTSTRAP_TAR;
}

/** The committed image as an OCI layout (compressed once, so later pushes are plain uploads). */
/** Build the cached debootstrap OCI layout if missing (the suite's global set-up calls this once, outside any test timeout). */
export async function ensureDebootstrapOci(): Promise<string> {
  if (await exists(join(DEBOOTSTRAP_OCI, 'index.json'))) return DEBOOTSTRAP_OCI;
  return withLock(join(CACHE_DIR, 'debootstrap.lock'), async () => {
    if (await exists(join(DEBOOTSTRAP_OCI, 'index.json'))) return DEBOOTSTRAP_OCI;
    const tar = await ensureDebootstrapTar();
    const partial = `${DEBOOTSTRAP_OCI}.tmp-${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    const store = await buildahStore();
    try {
      const ctr = (await store.buildah(['from', '--isolation', 'chroot', '--name', 'harness-debian', 'scratch'])).stdout.trim();
      await store.buildah(['add', ctr, tar, '/']);
      await store.buildah(['config', '--cmd', 'bash', '--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ctr]);
      await store.buildah(['commit', '--timestamp', '0', ctr, 'localhost/harness-debian:bookworm']);
      await store.buildah(['push', 'localhost/harness-debian:bookworm', `oci:${partial}:bookworm`]);
    } finally {
      await store.close();
    }
    await rm(DEBOOTSTRAP_OCI, { recursive: true, force: true });
    await rename(partial, DEBOOTSTRAP_OCI);
    return DEBOOTSTRAP_OCI;
  });
}

/** debootstrap --variant=minbase bookworm (~200 MB) pushed to the registry; returns "HOST/NAME:bookworm". */
export async function pushDebootstrapImage(registry: StartedRegistry, name = 'debian'): Promise<string> {
  const layout = await ensureDebootstrapOci();
  const ref = refFor(registry, name, 'bookworm');
  const { args, secrets } = registryFlags(registry, '--dest-creds');
  const destArgs = args.map((a) => (a === '--cert-dir' ? '--dest-cert-dir' : a === '--tls-verify=false' ? '--dest-tls-verify=false' : a));
  await run('skopeo', ['copy', '--quiet', ...destArgs, `oci:${layout}:bookworm`, `docker://${ref}`], { secrets, timeoutMs: 10 * 60_000 });
  return ref;
}
