/**
 * A bare Debian 12 machine, as a new user has it: `debootstrap --variant=minbase bookworm` plus Node.js and npm
 * (copied from where this machine's `node` and `npm` live) and this machine's CA certificates (the npm registry is
 * reached through them here; a user's machine has its own), nothing else. The checkout's HEAD is cloned into /root
 * (mode 0700), and commands run there as root in a root of their own: new mount, PID and UTS namespaces entered with
 * pivot_root (enter.sh; not chroot, under which user namespaces, so rootless builds, are refused), with /proc, /sys,
 * a /dev holding only null, zero, full, random, urandom, tty, net/tun and fuse (and kvm only where the host's is usable),
 * and the host's resolv.conf and hosts.
 *
 *   const m = await freshMachine({ aptCache: true, npmCache: true });
 *   const r = await m.run('cd /root/kimia && npm run demo');   // {exitCode, stdout, stderr}
 *   await m.destroy();
 *
 * The minbase tree is made once and cached as a tar outside any checkout, in the shared cache (KIMIA_RUNCVM_CACHE,
 * default /var/cache/kimia-runcvm; CI works in a fresh clone): debootstrap/bookworm-minbase.tar, built under a lock
 * and renamed into place. Optionally apt's .deb downloads and npm's cache are kept there between runs and mounted
 * into the root (apt-get still reads the archive's index and installs every package; npm ci still checks every
 * integrity); each is emptied when it grows past its bound. Every mount lives in the root's own mount namespace and
 * every process in its PID namespace: both vanish when a run ends, whatever way it ends (unshare --kill-child).
 */
import { constants as fsc } from 'node:fs';
import { access, chmod, copyFile, mkdir, mkdtemp, readdir, readlink, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { run, type RunResult } from '../../../src/core/exec/index.js';
import { projectPath } from '../../../src/core/paths.js';
import { kvmProblem } from '../../../src/runcvm/hypervisor/accel.js';
import { gatherAccelFacts } from '../../../src/runcvm/hypervisor/facts.js';
import { withLock } from '../images.js';
import { unmountAll } from '../proc.js';

export const SHARED_CACHE = process.env.KIMIA_RUNCVM_CACHE || '/var/cache/kimia-runcvm';
const DEBOOTSTRAP_DIR = join(SHARED_CACHE, 'debootstrap');
export const MINBASE_TAR = join(DEBOOTSTRAP_DIR, 'bookworm-minbase.tar');
const FRESH_CACHE = join(SHARED_CACHE, 'fresh-machine');
const APT_CACHE = join(FRESH_CACHE, 'apt-archives');
const NPM_CACHE = join(FRESH_CACHE, 'npm');
/** bounds of the download caches (a bare machine's packages are about 300 MiB, the npm tarballs about 40 MiB) */
const APT_CACHE_MAX_MIB = 1024;
const NPM_CACHE_MAX_MIB = 512;
const ENTER = projectPath('test', 'harness', 'fresh-root', 'enter.sh');
/** where the checkout is cloned inside the root: root's home, mode 0700, the natural place for a root user */
export const CLONE = '/root/kimia';

const exists = (p: string) => access(p, fsc.F_OK).then(() => true, () => false);

/** The bookworm minbase tar in the shared cache, made when missing (~40 s; one builder at a time). */
export async function ensureMinbaseTar(): Promise<string> {
  if (await exists(MINBASE_TAR)) return MINBASE_TAR;
  return withLock(join(DEBOOTSTRAP_DIR, 'bookworm.lock'), async () => {
    if (await exists(MINBASE_TAR)) return MINBASE_TAR;
    await mkdir(DEBOOTSTRAP_DIR, { recursive: true, mode: 0o755 });
    const work = await mkdtemp(join(DEBOOTSTRAP_DIR, 'build-bookworm-'));
    try {
      const target = join(work, 'rootfs');
      const mirror = process.env.DEBOOTSTRAP_MIRROR || 'http://deb.debian.org/debian';
      await run('debootstrap', ['--variant=minbase', 'bookworm', target, mirror], { timeoutMs: 15 * 60_000 });
      await unmountAll(target);
      const partial = join(work, 'rootfs.tar');
      await run('tar', ['--numeric-owner', '--xattrs', '-C', target, '--exclude=./dev/*', '--exclude=./proc/*', '--exclude=./sys/*',
        '--exclude=./run/*', '--exclude=./tmp/*', '--exclude=./debootstrap', '-cf', partial, '.']);
      await rename(partial, MINBASE_TAR);
    } finally {
      await unmountAll(work);
      await rm(work, { recursive: true, force: true });
    }
    return MINBASE_TAR;
  }, 30 * 60_000);
}

/** Where `name` is found on this process's PATH (the command, not its target). */
async function onPath(name: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const p = join(dir, name);
    if (await access(p, fsc.X_OK).then(() => true, () => false)) return p;
  }
  throw new Error(`${name} is not on PATH (${process.env.PATH ?? ''}): the fresh machine gets this machine's Node.js and npm`);
}

/** Copy a file or a tree to the same absolute path inside `root`. */
async function copyIn(root: string, path: string): Promise<void> {
  await mkdir(join(root, dirname(path)), { recursive: true });
  await run('cp', ['-a', path, join(root, path)]);
}

/** Node.js and npm exactly as this machine has them: the node binary, npm's package folder, the npm/npx commands. */
async function addNode(root: string): Promise<void> {
  await copyIn(root, await realpath(process.execPath));
  const nodeCmd = await onPath('node');
  if (resolve(nodeCmd) !== (await realpath(nodeCmd))) {
    await mkdir(join(root, dirname(nodeCmd)), { recursive: true });
    await symlink(await realpath(nodeCmd), join(root, nodeCmd)).catch(() => undefined);
  }
  for (const cmd of ['npm', 'npx']) {
    const at = await onPath(cmd);
    const target = await realpath(at); // …/lib/node_modules/npm/bin/npm-cli.js
    const pkg = resolve(dirname(target), '..');
    if (!(await exists(join(root, pkg)))) await copyIn(root, pkg);
    await mkdir(join(root, dirname(at)), { recursive: true });
    await rm(join(root, at), { force: true });
    await symlink(target, join(root, at));
  }
  // npm's own configuration: its global npmrc (PREFIX/etc/npmrc) and /etc/npmrc, which name the CA file
  const globalconfig = (await run(await onPath('npm'), ['config', 'get', 'globalconfig'], { reject: false })).stdout.trim();
  for (const f of [globalconfig, '/etc/npmrc']) if (f && (await exists(f))) await copyIn(root, f);
}

/** This machine's CA certificates: the local ones (installing ca-certificates in the root keeps them) and the bundle. */
async function addCaCertificates(root: string): Promise<void> {
  const local = '/usr/local/share/ca-certificates';
  await mkdir(join(root, local), { recursive: true });
  for (const f of (await readdir(local).catch(() => [] as string[])).filter((n) => n.endsWith('.crt'))) await copyFile(join(local, f), join(root, local, f));
  if (await exists('/etc/ssl/certs/ca-certificates.crt')) {
    await mkdir(join(root, 'etc', 'ssl', 'certs'), { recursive: true });
    await copyFile('/etc/ssl/certs/ca-certificates.crt', join(root, 'etc', 'ssl', 'certs', 'ca-certificates.crt'));
  }
}

async function sizeMib(dir: string): Promise<number> {
  const r = await run('du', ['-sm', dir], { reject: false });
  return Number(r.stdout.split(/\s/)[0]) || 0;
}

/** A download cache folder, emptied first when it has grown past its bound. */
async function boundedCache(dir: string, maxMib: number): Promise<string> {
  if ((await exists(dir)) && (await sizeMib(dir)) > maxMib) await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  return dir;
}

export interface FreshMachineOptions {
  /** keep apt's .deb downloads between runs (mounted at /var/cache/apt/archives) */
  aptCache?: boolean;
  /** keep npm's cache between runs (mounted at /root/.npm) */
  npmCache?: boolean;
}

export interface RunInRootOptions {
  /** extra mounts for this run only (enter.sh's FRESH_MOUNTS lines); replaces the cache mounts when given */
  mounts?: string[];
  /** no network at all (a new, empty network namespace) */
  noNetwork?: boolean;
  timeoutMs?: number;
}

export interface FreshMachine {
  /** the root folder on the host */
  dir: string;
  /** whether the root has the host's /dev/kvm (only when the host's KVM is usable) */
  kvm: boolean;
  /** the commit cloned into /root/kimia */
  commit: string;
  /** `bash -c SCRIPT` as root inside the machine */
  run(script: string, opts?: RunInRootOptions): Promise<RunResult>;
  destroy(): Promise<void>;
}

/** A bare Debian 12 with Node and npm, the checkout's HEAD cloned into /root/kimia (see the header). */
export async function freshMachine(opts: FreshMachineOptions = {}): Promise<FreshMachine> {
  const tar = await ensureMinbaseTar();
  // on disk, not in a tmpfs: the installed packages and the build take about 2 GB
  const dir = await mkdtemp('/var/tmp/kimia-fresh-machine-');
  const destroy = async () => {
    await unmountAll(dir); // nothing is mounted on the host side; this only guards a bug in enter.sh
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await chmod(dir, 0o755);
    await run('tar', ['--numeric-owner', '--xattrs', '-xf', tar, '-C', dir]);
    // as Debian's own container images do: dpkg skips its fsync()s (the root is thrown away; this only saves time)
    await writeFile(join(dir, 'etc', 'dpkg', 'dpkg.cfg.d', 'unsafe-io'), 'force-unsafe-io\n');
    await addNode(dir);
    await addCaCertificates(dir);
    const commit = (await run('git', ['-C', projectPath(), 'rev-parse', 'HEAD'])).stdout.trim();
    await run('git', ['clone', '--quiet', '--no-hardlinks', projectPath(), join(dir, CLONE)]);
    const cacheMounts: string[] = [];
    if (opts.aptCache) cacheMounts.push(`bind ${await boundedCache(APT_CACHE, APT_CACHE_MAX_MIB)} /var/cache/apt/archives`);
    if (opts.npmCache) cacheMounts.push(`bind ${await boundedCache(NPM_CACHE, NPM_CACHE_MAX_MIB)} /root/.npm`);
    const kvm = kvmProblem(gatherAccelFacts()) === undefined;
    return {
      dir,
      kvm,
      commit,
      async run(script, o = {}) {
        const mounts = o.mounts ?? cacheMounts;
        const ns = ['--mount', '--pid', '--uts', '--fork', '--kill-child', '--propagation', 'private', ...(o.noNetwork ? ['--net'] : [])];
        return run('unshare', [...ns, 'bash', ENTER, dir, 'bash', '-c', script], {
          reject: false,
          timeoutMs: o.timeoutMs ?? 15 * 60_000,
          env: { FRESH_KVM: kvm ? '1' : '', FRESH_MOUNTS: mounts.join('\n'), PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
          extendEnv: false,
        });
      },
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** Host processes whose root directory is inside `dir` (a run's processes, which must all be gone once it ends). */
export async function processesRootedIn(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const root = await readlink(`/proc/${pid}/root`).catch(() => '');
    if (root === dir || root.startsWith(`${dir}/`)) found.push(pid);
  }
  return found;
}

/**
 * Hold a cross-process lock until the returned release is called (withLock's folder lock, for a whole test file):
 * two fresh machines at once would share apt's download cache, whose lock apt does not wait for.
 */
export function holdLock(lockDir: string, timeoutMs = 30 * 60_000): Promise<() => Promise<void>> {
  return new Promise((acquired, failed) => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const held = withLock(lockDir, async () => {
      acquired(async () => {
        release();
        await held;
      });
      await released;
    }, timeoutMs);
    held.catch(failed);
  });
}

export const FRESH_LOCK = join(FRESH_CACHE, 'run.lock');

/** for the report of a failed run: the last lines of its output */
export function tail(r: RunResult, lines = 60): string {
  return `exit ${r.exitCode}\n--- stdout\n${r.stdout.split('\n').slice(-lines).join('\n')}\n--- stderr\n${r.stderr.split('\n').slice(-lines).join('\n')}`;
}

