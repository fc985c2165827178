/**
 * Shared set-up for the runcvm e2e tests: build the runtime pieces (30-runtime.sh), make private state/cache/log
 * folders and a wrapper that points bin/runcvm-runtime at them, and check at the end that nothing was left behind
 * (no QEMU process, no state dir, no config.json copy, no debug log).
 *
 * The common suite set-up (fixture + registry + images + containerd or dockerd) is startRuncvmSuite /
 * startRuncvmDockerSuite. A missing guest asset or a missing dockerd is an error, never a skip: `npm test` builds
 * the assets and installs docker.io (scripts/setup.sh), so a suite that could skip instead would be one that
 * cannot fail.
 */
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunResult } from '../../../src/core/exec/index.js';
import { CloserStack, tempDir } from '../../../src/core/fsx/index.js';
import { projectPath } from '../../../src/core/paths.js';
import { buildahStore, busyboxRootfs, pushBusyboxImage, registryFlags } from '../../harness/images.js';
import { startContainerd, type StartedContainerd } from '../../harness/services/containerd.js';
import { requireDockerd, startDockerd, type StartedDockerd } from '../../harness/services/dockerd.js';
export { requireDockerd };
import { startRegistry, type StartedRegistry } from '../../harness/services/registry.js';

export const RUNTIME_BIN = projectPath('bin', 'runcvm-runtime');

export interface RuntimeFixture {
  dir: string;
  wrapper: string;
  stateDir: string;
  cacheDir: string;
  logDir: string;
  /** a second wrapper with extra env (e.g. RUNCVM_ASSETS pointing elsewhere) */
  wrapperWith(name: string, env: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

const GUEST_ASSETS = ['kernel/vmlinux', 'kernel/initramfs.img', 'guest/bin/qemu-system-x86_64', 'guest/bin/node', 'guest/lib/ld'];

/** Throws, naming what is missing and the fix, unless the guest assets every VM needs are built. */
export async function requireAssets(): Promise<void> {
  const a = process.env.RUNCVM_ASSETS || projectPath('var', 'assets');
  const missing: string[] = [];
  for (const f of GUEST_ASSETS) {
    if (!(await stat(join(a, f)).then(() => true, () => false))) missing.push(join(a, f));
  }
  if (missing.length) {
    throw new Error(`the runcvm guest assets are not built (missing: ${missing.join(', ')}); no VM can boot without them. ` +
      'fix: run `bash scripts/setup.sh` (npm test runs it in its global set-up), or point RUNCVM_ASSETS at a built asset folder');
  }
}

/** Throws with the cause and the fix unless dockerd can be started here (root, docker.io installed). */
let built = false;
export async function buildRuntime(): Promise<void> {
  if (built) return;
  await run('bash', [projectPath('scripts', 'assets', '30-runtime.sh')], { timeoutMs: 120_000 });
  built = true;
}

export async function runtimeFixture(closers: CloserStack): Promise<RuntimeFixture> {
  await requireAssets();
  await buildRuntime();
  const dir = await tempDir('runcvm-e2e', closers);
  // a container in a user namespace (runc's init as the mapped root) reaches its state folder, disk and log through it
  await chmod(dir, 0o711);
  const stateDir = join(dir, 'state');
  const cacheDir = join(dir, 'cache');
  const logDir = join(dir, 'log');
  await mkdir(stateDir);
  await mkdir(cacheDir);
  await mkdir(logDir);
  const wrapperWith = async (name: string, env: Record<string, string>) => {
    const all = { RUNCVM_STATE_DIR: stateDir, RUNCVM_CACHE_DIR: cacheDir, RUNCVM_LOG_DIR: logDir, ...env };
    const exports = Object.entries(all).map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`).join('\n');
    const path = join(dir, name);
    await writeFile(path, `#!/bin/sh\n${exports}\nexec '${RUNTIME_BIN}' "$@"\n`);
    await chmod(path, 0o755);
    return path;
  };
  // `RUNCVM_TEMPLATE=on npx vitest run test/e2e/…` runs a file's runcvm containers with VM templates on (a node
  // setting: the runtime's own environment, which the engines do not pass on)
  const wrapper = await wrapperWith('runcvm-runtime', process.env.RUNCVM_TEMPLATE ? { RUNCVM_TEMPLATE: process.env.RUNCVM_TEMPLATE } : {});
  const close = async () => {
    await stopTemplateBuilders(cacheDir);
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, wrapper, stateDir, cacheDir, logDir, wrapperWith, close };
}

/**
 * With VM templates on, the first VM of a shape boots cold and starts the builder: run one throwaway container of the
 * shape (ctr run's own empty network namespace: no NIC) and wait for its template, so the VMs a test file runs next
 * are restored from it.
 */
export async function prebuildTemplate(cd: StartedContainerd, fx: RuntimeFixture, runtime: string, image: string): Promise<void> {
  const r = await ctrRunIn(cd, { runtime, image, id: `prebuild-${Date.now()}`, cmd: ['true'], timeoutMs: 180_000 });
  if (r.exitCode !== 0) throw new Error(`the container that builds the template failed: ${r.stderr}`);
  const dir = join(fx.cacheDir, 'templates');
  for (let i = 0; i < 300; i++) {
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      if (/^[0-9a-f]{64}$/.test(n) && (await stat(join(dir, n, 'manifest.json')).then(() => true, () => false))) return;
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
  throw new Error(`no template appeared in ${dir} within 300 s`);
}

/**
 * A detached template builder (started by create with templates on) may outlive the test file: it is waited for (it
 * cleans up its own work folder and QEMU), and after 120 s killed with its QEMU (its own session: one process group)
 * before the fixture's folders go.
 */
export async function stopTemplateBuilders(cacheDir: string): Promise<void> {
  const dir = join(cacheDir, 'templates');
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith('.lock-')) continue;
    const pid = Number((await readFile(join(dir, name), 'utf8').catch(() => '')).trim());
    if (!(pid > 1)) continue;
    for (let i = 0; i < 240 && alive(pid); i++) await new Promise((r) => setTimeout(r, 500));
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export interface RuncvmSuiteOptions<T extends [string, ...string[]]> {
  /** what to push to the suite's registry (and pull into the engine); default: the busybox image alone */
  images?: (registry: StartedRegistry) => Promise<T>;
  /** timeout of each `ctr images pull` (large images) */
  pullTimeoutMs?: number;
}

export interface RuncvmSuite<T extends [string, ...string[]]> {
  fx: RuntimeFixture;
  reg: StartedRegistry;
  cd: StartedContainerd;
  /** the first of `images` (busybox by default) */
  image: T[0];
  images: T;
}

const busyboxOnly = async (registry: StartedRegistry): Promise<[string]> => [await pushBusyboxImage(registry)];

/**
 * The set-up most runcvm suites share: the runtime fixture, a registry holding the images, a harness containerd
 * (stopped by `closers`) that has pulled them. Fails (no skip) when the guest assets are not built.
 */
export async function startRuncvmSuite<T extends [string, ...string[]] = [string]>(closers: CloserStack, opts: RuncvmSuiteOptions<T> = {}): Promise<RuncvmSuite<T>> {
  const fx = await runtimeFixture(closers);
  const reg = await startRegistry();
  closers.push('registry', () => reg.stop());
  const images = await (opts.images ?? (busyboxOnly as unknown as (r: StartedRegistry) => Promise<T>))(reg);
  const cd = await startContainerd();
  closers.push('containerd', () => cd.stop());
  for (const ref of images) await cd.ctr(['images', 'pull', '--plain-http', ref], opts.pullTimeoutMs ? { timeoutMs: opts.pullTimeoutMs } : {});
  return { fx, reg, cd, image: images[0], images };
}

export interface RuncvmDockerSuite {
  fx: RuntimeFixture;
  reg: StartedRegistry;
  dockerd: StartedDockerd;
  /** busybox, pulled into dockerd */
  image: string;
}

/**
 * The same for dockerd: the fixture's wrapper as the `runcvm` runtime in daemon.json, busybox pulled from the suite's
 * registry. Fails (no skip) when the guest assets are not built or dockerd cannot run here.
 */
export async function startRuncvmDockerSuite(closers: CloserStack): Promise<RuncvmDockerSuite> {
  await requireDockerd();
  const fx = await runtimeFixture(closers);
  const reg = await startRegistry();
  closers.push('registry', () => reg.stop());
  const image = await pushBusyboxImage(reg);
  const dockerd = await startDockerd({ insecureRegistries: [reg.host], runtimes: { runcvm: { path: fx.wrapper } } });
  closers.push('dockerd', () => dockerd.stop());
  await dockerd.docker(['pull', '-q', image]);
  return { fx, reg, dockerd, image };
}

export interface CtrRunOptions {
  /** 'runc' (containerd's own) or the path of a runcvm wrapper (`--runc-binary`) */
  runtime: string;
  image: string;
  id: string;
  cmd: string[];
  /** container environment, each as `--env` */
  env?: string[];
  /** other `ctr run` flags (mounts, --cwd, --cap-add …), before the image */
  flags?: string[];
  input?: string;
  timeoutMs: number;
}

/** `ctr run --rm` of one container, never rejecting: the caller looks at the exit code. */
export function ctrRunIn(cd: StartedContainerd, o: CtrRunOptions): Promise<RunResult> {
  const runtime = o.runtime === 'runc' ? [] : ['--runc-binary', o.runtime];
  const env = (o.env ?? []).flatMap((e) => ['--env', e]);
  return cd.ctr(['run', '--rm', ...runtime, ...env, ...(o.flags ?? []), o.image, o.id, ...o.cmd], {
    reject: false,
    timeoutMs: o.timeoutMs,
    ...(o.input !== undefined ? { input: o.input } : {}),
  });
}

/** Everything runcvm might leave behind. Empty lists mean clean. */
export async function leftovers(fx: RuntimeFixture): Promise<{ qemu: string[]; state: string[]; logs: string[]; configCopies: string[] }> {
  const ps = await run('ps', ['-eo', 'pid,args'], { reject: false });
  // only VMs of this fixture (other suites may run VMs at the same time): their mounts come from our state dir
  const candidates = ps.stdout.split('\n').filter((l) => l.includes('qemu-system') && l.includes('/.runcvm/'));
  const qemu: string[] = [];
  for (const line of candidates) {
    const pid = line.trim().split(/\s+/)[0];
    const mi = await readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '');
    if (mi.includes(fx.dir)) qemu.push(line);
  }
  const state = await readdir(fx.stateDir).catch(() => []);
  const logs = await readdir(fx.logDir).catch(() => []);
  const tmp = await readdir('/tmp').catch(() => []);
  const configCopies = tmp.filter((n) => /config\.json|runcvm.*\.json/.test(n));
  return { qemu, state, logs, configCopies };
}

/** busybox-based image variants (entrypoint/cmd, user, big file) pushed to the registry. */
export async function pushVariant(
  registry: StartedRegistry,
  name: string,
  opts: { entrypoint?: string[]; cmd?: string[]; user?: string; bigFileMiB?: number; workdir?: string },
): Promise<string> {
  const store = await buildahStore();
  const closers = new CloserStack();
  try {
    const rootfs = await busyboxRootfs(join(store.dir, 'rootfs'));
    if (opts.bigFileMiB) {
      await run('dd', ['if=/dev/urandom', `of=${join(rootfs, 'big.bin')}`, 'bs=1M', `count=${opts.bigFileMiB}`, 'status=none'], { timeoutMs: 120_000 });
    }
    const ctr = (await store.buildah(['from', '--isolation', 'chroot', '--name', `v-${name}`, 'scratch'])).stdout.trim();
    await store.buildah(['copy', ctr, `${rootfs}/.`, '/']);
    const cfg = ['config', '--env', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
    if (opts.entrypoint) cfg.push('--entrypoint', JSON.stringify(opts.entrypoint));
    cfg.push('--cmd', opts.cmd ? JSON.stringify(opts.cmd) : 'sh');
    if (opts.user) cfg.push('--user', opts.user);
    if (opts.workdir) cfg.push('--workingdir', opts.workdir);
    await store.buildah([...cfg, ctr]);
    await store.buildah(['commit', '--timestamp', '0', ctr, `localhost/v-${name}:latest`]);
    const ref = `${registry.host}/${name}:latest`;
    const { args, secrets } = registryFlags(registry);
    await store.buildah(['push', ...args, `localhost/v-${name}:latest`, `docker://${ref}`], { secrets, timeoutMs: 300_000 });
    return ref;
  } finally {
    await store.close();
    await closers.close();
  }
}

export function summary(r: RunResult): { exit: number; stdout: string; stderr: string } {
  return { exit: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

export async function readDebugLogs(fx: RuntimeFixture): Promise<string> {
  const names = await readdir(fx.logDir).catch(() => []);
  const texts = await Promise.all(names.map((n) => readFile(join(fx.logDir, n), 'utf8').catch(() => '')));
  return texts.join('\n');
}
