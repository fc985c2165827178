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

/**
 * How this test run starts its VMs (issue 17 item 2): `template` when the worker runs with RUNCVM_TEMPLATE=on (the
 * vitest project `vm-template` in vitest.config.ts, or a developer's shell), else `cold`. Every runtime wrapper of a
 * fixture exports RUNCVM_TEMPLATE for its mode (a node setting: the runtime's own environment, which the engines do
 * not pass on), so a file runs with templates on or off as a whole.
 */
export type VmMode = 'cold' | 'template';
export const VM_MODE: VmMode = process.env.RUNCVM_TEMPLATE === 'on' ? 'template' : 'cold';

export interface RuntimeFixture {
  dir: string;
  wrapper: string;
  stateDir: string;
  cacheDir: string;
  logDir: string;
  mode: VmMode;
  /**
   * each container's debug log as it was when the runtime was asked to delete the container (which removes it):
   * `<id>.log`, appended to on every delete of that id (a restarted container logs again). Read by VmStarts.
   */
  keptLogDir: string;
  /** a second wrapper with extra env (e.g. RUNCVM_ASSETS pointing elsewhere); RUNCVM_TEMPLATE follows `mode` unless given */
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
  const keptLogDir = join(dir, 'kept-logs');
  await mkdir(stateDir);
  await mkdir(cacheDir);
  await mkdir(logDir);
  await mkdir(keptLogDir);
  const mode = VM_MODE;
  const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const wrapperWith = async (name: string, env: Record<string, string>) => {
    const all = { RUNCVM_STATE_DIR: stateDir, RUNCVM_CACHE_DIR: cacheDir, RUNCVM_LOG_DIR: logDir, RUNCVM_TEMPLATE: mode === 'template' ? 'on' : 'off', ...env };
    const exports = Object.entries(all).map(([k, v]) => `export ${k}=${quote(v)}`).join('\n');
    const path = join(dir, name);
    await writeFile(path, `#!/bin/sh\n${exports}\n${keepLogOnDelete(keptLogDir)}exec ${quote(RUNTIME_BIN)} "$@"\n`);
    await chmod(path, 0o755);
    return path;
  };
  const wrapper = await wrapperWith('runcvm-runtime', {});
  const close = async () => {
    await stopTemplateBuilders(cacheDir);
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, wrapper, stateDir, cacheDir, logDir, mode, keptLogDir, wrapperWith, close };
}

/**
 * The wrapper's lines that copy a container's debug log aside before the runtime's `delete` removes it (its verb
 * found as bin/runcvm-runtime finds it; the id is the last argument): the launcher's `template:` line of a `ctr run
 * --rm` or `docker run --rm` container is otherwise gone by the time the test could read it. Only what is new since
 * the last copy is appended (`<id>.off`: bytes already copied), since a log the runtime keeps (RUNCVM_LOG_LEVEL=DEBUG)
 * is seen by every later delete of the id (the shim deletes twice); the offset is dropped when the runtime removes
 * the log (its state folder exists and holds no keep-log) or the log is shorter than it (a new one).
 */
function keepLogOnDelete(keptLogDir: string): string {
  const k = `'${keptLogDir}'`;
  return [
    'verb=; skip=0',
    'for a in "$@"; do',
    '  if [ "$skip" = 1 ]; then skip=0; continue; fi',
    '  case "$a" in --root|--log|--log-format|--rootless|--criu) skip=1 ;; -*) ;; *) verb=$a; break ;; esac',
    'done',
    'if [ "$verb" = delete ]; then',
    '  for id in "$@"; do :; done',
    '  f="$RUNCVM_LOG_DIR/runcvm-$id.debug"; s="$RUNCVM_STATE_DIR/$id"',
    '  case "$id" in',
    "    ''|*/*|.|..|-*) ;;",
    '    *) if [ -f "$f" ]; then',
    `         size=$(wc -c < "$f"); off=$(cat ${k}/"$id.off" 2>/dev/null); off=\${off:-0}; [ "$size" -lt "$off" ] && off=0`,
    `         tail -c +$((off + 1)) "$f" >> ${k}/"$id.log"`,
    `         if [ -d "$s" ] && [ ! -e "$s/keep-log" ]; then rm -f ${k}/"$id.off"; else echo "$size" > ${k}/"$id.off"; fi`,
    '       fi ;;',
    '  esac',
    'fi',
    '',
  ].join('\n');
}

/** A VM shape a test file's containers have (template/key.ts keys it): `runcvm template build`'s flags. */
export interface TemplateShape {
  /** NICs: 0 for `ctr run` in its own empty network namespace, 1 in a pod namespace or a Docker network */
  nics: number;
  /** RUNCVM_DISKS entries */
  dataDisks?: number;
}

/**
 * With templates on, makes the template of each shape the file's containers have, ahead of need (`runcvm template
 * build`, with the fixture's cache), so that every container of the file is restored from one and none boots cold
 * only because it came first. Nothing to do in cold mode.
 */
export async function prebuildTemplates(fx: RuntimeFixture, shapes: TemplateShape[]): Promise<void> {
  if (fx.mode !== 'template') return;
  const env = { RUNCVM_STATE_DIR: fx.stateDir, RUNCVM_CACHE_DIR: fx.cacheDir, RUNCVM_LOG_DIR: fx.logDir, RUNCVM_TEMPLATE: 'on' };
  for (const s of shapes) {
    const argv = ['template', 'build', '--nics', String(s.nics), '--data-disks', String(s.dataDisks ?? 0)];
    const r = await run(process.execPath, [projectPath('bin', 'runcvm'), ...argv], { env, reject: false, timeoutMs: 300_000 });
    if (r.exitCode !== 0) throw new Error(`\`runcvm ${argv.join(' ')}\` failed (${r.exitCode}): ${r.stderr}${r.stdout}`);
  }
}

/** How one VM started, from its debug log: create's decision and, when create bound a template, the launcher's. */
export interface VmStart {
  id: string;
  restored: boolean;
  /** why it booted cold (create's or the launcher's `template: cold boot (<reason>)`) */
  reason?: string;
  /** the `template:` lines it was read from */
  lines: string[];
}

/**
 * The starts in a debug log, in order: each create logs `template: <key> (restored from …)` or `template: cold boot
 * (<reason>)`; after the former the launcher logs `template: restored` or `template: cold boot (<reason>)`.
 */
export function parseVmStarts(id: string, text: string): VmStart[] {
  const starts: VmStart[] = [];
  let pending: string[] | undefined;
  for (const line of text.split('\n')) {
    const m = /template: (restored\b|cold boot \((.*)\)|[0-9a-f]{64} \(restored from )/.exec(line);
    if (!m) continue;
    const fromLauncher = line.includes('[launcher ');
    if (!fromLauncher && m[1]!.startsWith('cold boot')) {
      if (pending) starts.push({ id, restored: false, reason: 'create bound a template, the launcher logged no outcome', lines: pending });
      starts.push({ id, restored: false, reason: m[2]!, lines: [line] });
      pending = undefined;
    } else if (!fromLauncher) {
      if (pending) starts.push({ id, restored: false, reason: 'create bound a template, the launcher logged no outcome', lines: pending });
      pending = [line];
    } else {
      const lines = [...(pending ?? []), line];
      starts.push(m[1] === 'restored' ? { id, restored: true, lines } : { id, restored: false, reason: m[2]!, lines });
      pending = undefined;
    }
  }
  if (pending) starts.push({ id, restored: false, reason: 'create bound a template, the launcher logged no outcome', lines: pending });
  return starts;
}

/** The starts of a running container (its live debug log). */
export async function liveVmStarts(fx: RuntimeFixture, id: string): Promise<VmStart[]> {
  return parseVmStarts(id, await readFile(join(fx.logDir, `runcvm-${id}.debug`), 'utf8').catch(() => ''));
}

/**
 * Proof of how a file's VMs started (issue 17 item 2). `verify()` (an afterEach) reads the starts of the containers
 * deleted since its last call: with templates on each must be restored from a template, never a silent cold boot,
 * unless the test said why the design boots it cold (`coldBecause`, e.g. a virtiofs share: constraint 1 of
 * docs/dev/notes/templates.md); with templates off each must be a cold boot for RUNCVM_TEMPLATE=off.
 */
export class VmStarts {
  private seen = new Map<string, number>();
  private cold: string | undefined;
  /** every start verified so far */
  readonly all: VmStart[] = [];

  constructor(private readonly fixture: () => RuntimeFixture) {}

  /** The VMs of the running test boot cold even with templates on, for this reason (a substring of the logged one). */
  coldBecause(reason: string): void {
    this.cold = reason;
  }

  /** The starts of containers deleted since the last call, checked as the class comment says; returns them. */
  async verify(): Promise<VmStart[]> {
    const fx = this.fixture();
    const expectedCold = this.cold;
    this.cold = undefined;
    const fresh: VmStart[] = [];
    for (const name of (await readdir(fx.keptLogDir).catch(() => [] as string[])).sort()) {
      if (!name.endsWith('.log')) continue; // not the `.off` files
      const id = name.slice(0, -'.log'.length);
      const starts = parseVmStarts(id, await readFile(join(fx.keptLogDir, name), 'utf8'));
      fresh.push(...starts.slice(this.seen.get(id) ?? 0));
      this.seen.set(id, starts.length);
    }
    this.all.push(...fresh);
    this.check(fx.mode, fresh, expectedCold);
    return fresh;
  }

  /** A running container's starts so far (its live debug log), checked the same way; there must be one. */
  async verifyLive(id: string): Promise<VmStart[]> {
    const fx = this.fixture();
    const starts = await liveVmStarts(fx, id);
    if (starts.length === 0) throw new Error(`no \`template:\` line in the debug log of ${id} (${join(fx.logDir, `runcvm-${id}.debug`)})`);
    this.check(fx.mode, starts, undefined);
    return starts;
  }

  private check(mode: VmMode, starts: VmStart[], expectedCold: string | undefined): void {
    const wrong = starts.filter((s) => {
      if (mode === 'cold') return s.restored || s.reason !== 'RUNCVM_TEMPLATE=off';
      if (expectedCold !== undefined) return s.restored || !s.reason?.includes(expectedCold);
      return !s.restored;
    });
    if (wrong.length === 0) return;
    const want = mode === 'cold' ? 'a cold boot (RUNCVM_TEMPLATE=off)' : expectedCold !== undefined ? `a cold boot (${expectedCold})` : 'restored from a template';
    throw new Error(`VMs that did not start as expected (${want}): ${wrong.map((s) => `${s.id}: ${s.restored ? 'restored' : `cold boot (${s.reason})`}`).join('; ')}`);
  }
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
