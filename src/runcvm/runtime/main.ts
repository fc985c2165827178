/**
 * `runcvm-runtime create|run` (the dispatcher sends only these verbs to Node): rewrite the bundle for a microVM, then
 * hand the unchanged command line to runc. Steps: parse → read config.json → pass-through check → settings →
 * disks (cached base + per-container upper) → launch.json → rewrite config.json once, atomically, 0600 → runc.
 */
import { constants as fsc, appendFileSync } from 'node:fs';
import { access, appendFile, chmod, mkdir, readFile, realpath, rm, stat, writeFile, copyFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite, CloserStack } from '../../core/fsx/index.js';
import { Logger, type Sink } from '../../core/log/index.js';
import { runInherit } from '../../core/exec/index.js';
import { assetsDir } from '../../core/paths.js';
import { isToolError, ToolError } from '../../core/errors.js';
import { runcvmErrors } from '../errors.js';
import { splitRuncArgs, parseCreateArgs, ArgsError, type CreateArgs } from './args.js';
import { envMap, type OciSpec } from '../launch/oci.js';
import { mergeSettingEnv, parseSettings, SettingError, type Settings } from '../launch/settings.js';
import { buildLaunchSpec, copiedFilesFromSpec } from '../launch/build.js';
import { capabilitiesFromSpec } from '../launch/capabilities.js';
import { joinsHostNetwork } from '../network/host.js';
import { renderEntrypoint, renderGuestConfig } from '../launch/guest-config.js';
import { CONTAINER_PATHS, GUEST_PATHS, type LaunchSpec } from '../launch/schema.js';
import { passThroughReason, rewriteForVm, type HostDevice } from '../bundle/transforms/index.js';
import { containerPaths, hostDirs } from '../state/index.js';
import { lookPathInRoot } from './lookpath.js';
import { chooseHypervisor } from '../hypervisor/firecracker/host.js';
import { KVM_DEVICE, kvmDevicePath } from '../hypervisor/facts.js';
import { buildUpperDisk, ensureBaseDisk, stageFile, stageParents, stageTree } from '../storage/apply.js';
import { planContainerVolumes } from '../volumes/host.js';
import { rewriteForVolumes, withVolumesInLaunch } from '../volumes/plan.js';
import { entrypointLogLine, kubernetesLogLine, kubernetesMetadata } from './describe.js';

const { fail } = runcvmErrors;

/** A failure runc itself would report at create: printed with runc's wording, exit 1 (as runc). */
class RuncStyleError extends Error {}

function runcBinary(): string {
  return process.env.RUNCVM_RUNC || 'runc';
}

export async function main(argv: string[]): Promise<number> {
  const inv = splitRuncArgs(argv);
  if (inv.verb !== 'create' && inv.verb !== 'run') {
    return (await runInherit(runcBinary(), argv)).exitCode;
  }
  let args: CreateArgs;
  try {
    args = parseCreateArgs(inv.verbArgs, process.cwd());
  } catch (err) {
    if (err instanceof ArgsError) {
      // runc reports these itself, with its own wording: let it.
      return (await runInherit(runcBinary(), argv)).exitCode;
    }
    throw err;
  }
  const logFile = inv.globalValues.log;
  try {
    const outcome = await prepare(args);
    if (outcome === 'pass-through') return (await runInherit(runcBinary(), argv, { passFds: args.preserveFds })).exitCode;
    const r = await runInherit(runcBinary(), argv, { passFds: args.preserveFds });
    if (r.exitCode !== 0) await cleanupState(args.id);
    return r.exitCode;
  } catch (err) {
    await cleanupState(args.id);
    if (err instanceof RuncStyleError) {
      const msg = `runc create failed: unable to start container process: ${err.message}`;
      process.stderr.write(`${msg}\n`);
      if (logFile) await appendFile(logFile, JSON.stringify({ level: 'error', msg, time: new Date().toISOString() }) + '\n').catch(() => {});
      return 1;
    }
    const te = toToolError(err);
    const text = te.render();
    process.stderr.write(`runcvm: ${text}\n`);
    // containerd reads runc's --log (JSON lines) to explain a failed create: put ours there too.
    if (logFile) {
      const line = JSON.stringify({ level: 'error', msg: `runcvm: ${text.replace(/\n/g, '; ')}`, time: new Date().toISOString() });
      await appendFile(logFile, line + '\n').catch(() => {});
    }
    return te.exitCode;
  }
}

function toToolError(err: unknown): ToolError {
  if (isToolError(err)) return err;
  if (err instanceof SettingError) return fail('BAD_SETTING', { name: err.setting, value: err.value, problem: err.problem, fix: err.fix });
  const e = err as Error;
  return fail('DISK_BUILD_FAILED', { which: 'VM', id: '?', problem: e?.message ?? String(err), dir: '/' }, err);
}

/** set once the settings are known: with RUNCVM_LOG_LEVEL=DEBUG a failed create keeps its debug log */
let keepLogOnFailure = false;
/** set once create has made (or validated) the debug log itself: a foreign file at that path is never removed */
let ownsDebugLog = false;

async function cleanupState(id: string): Promise<void> {
  const paths = containerPaths(hostDirs(process.env), id);
  await rm(paths.state, { recursive: true, force: true }).catch(() => {});
  if (!keepLogOnFailure && ownsDebugLog) await rm(paths.debugLog, { force: true }).catch(() => {});
}

/**
 * Create (or reopen) the per-container debug log in a shared folder such as /tmp without trusting what is already
 * there: no symlink is followed (O_NOFOLLOW), no FIFO blocks us (O_NONBLOCK), and a file that is not a plain,
 * single-link file of this runtime's user is refused rather than appended to or chmod-ed.
 */
async function openDebugLog(path: string): Promise<{ ok: true } | { ok: false; problem: string }> {
  let fh;
  try {
    fh = await open(path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW | fsc.O_NONBLOCK, 0o600);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, problem: e.code === 'ELOOP' ? `${path} is a symbolic link` : e.message };
  }
  try {
    const st = await fh.stat();
    const uid = process.getuid?.();
    if (!st.isFile()) return { ok: false, problem: `${path} is not a regular file` };
    if (st.nlink > 1) return { ok: false, problem: `${path} has other hard links` };
    if (uid !== undefined && st.uid !== uid) return { ok: false, problem: `${path} belongs to uid ${st.uid}, not to the runtime (uid ${uid})` };
    await fh.chmod(0o600);
    return { ok: true };
  } catch (err) {
    return { ok: false, problem: (err as Error).message };
  } finally {
    await fh.close();
  }
}

async function readSpec(bundle: string): Promise<OciSpec> {
  const path = join(bundle, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw fail('BAD_CONFIG', { bundle, problem: (err as Error).message });
  }
  try {
    return JSON.parse(text) as OciSpec;
  } catch (err) {
    throw fail('BAD_CONFIG', { bundle, problem: (err as Error).message });
  }
}

async function charDevice(path: string): Promise<HostDevice | undefined> {
  try {
    const st = await stat(path);
    if (!st.isCharacterDevice()) return undefined;
    const rdev = st.rdev;
    return { path, type: 'c', major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path, fsc.F_OK).then(() => true, () => false);
}

export interface Assets {
  guestDir: string;
  kernelDir: string;
}

export function assetPaths(env: Record<string, string | undefined> = process.env): Assets {
  // the bundled runtime (dist/runcvm/runtime/runtime.mjs) cannot locate the project from its own URL: the dispatcher
  // tells it where it lives (RUNCVM_HOME)
  const base = env.RUNCVM_ASSETS || (env.RUNCVM_HOME ? join(env.RUNCVM_HOME, 'var', 'assets') : assetsDir(env));
  return { guestDir: env.RUNCVM_GUEST_DIR || join(base, 'guest'), kernelDir: join(base, 'kernel') };
}

export async function checkAssets(a: Assets, settings: Settings): Promise<void> {
  if (settings.kernel) {
    if (!(await exists(settings.kernel))) throw fail('NO_KERNEL', { path: settings.kernel, reason: 'RUNCVM_KERNEL names a file that does not exist on the host.' });
  } else if (!(await exists(join(a.kernelDir, 'vmlinux')))) {
    throw fail('NO_KERNEL', { path: join(a.kernelDir, 'vmlinux'), reason: 'the kernel asset has not been built.' });
  }
  if (!(await exists(join(a.kernelDir, 'initramfs.img')))) {
    throw fail('NO_KERNEL', { path: join(a.kernelDir, 'initramfs.img'), reason: 'the initramfs asset has not been built.' });
  }
  const missing: string[] = [];
  for (const f of ['lib/ld', 'bin/node', 'bin/runcvm-init', 'lib/runcvm/launcher.mjs']) {
    if (!(await exists(join(a.guestDir, f)))) missing.push(f);
  }
  if (settings.hypervisor === 'qemu' && !(await exists(join(a.guestDir, 'bin/qemu-system-x86_64')))) missing.push('bin/qemu-system-x86_64');
  if (missing.length) throw fail('NO_GUEST_PACKAGE', { path: a.guestDir, missing: missing.join(', ') });
}

function rootfsPath(spec: OciSpec, bundle: string): string {
  const p = spec.root?.path ?? 'rootfs';
  return p.startsWith('/') ? p : join(bundle, p);
}

async function prepare(args: CreateArgs): Promise<'vm' | 'pass-through'> {
  const spec = await readSpec(args.bundle);
  const reason = passThroughReason(spec);
  if (reason) return 'pass-through';

  const settingEnv = mergeSettingEnv(process.env, envMap(spec.process?.env));
  const settings = parseSettings(settingEnv);
  keepLogOnFailure = settings.logLevel === 'debug';
  const dirs = hostDirs(process.env);
  const paths = containerPaths(dirs, args.id);
  const closers = new CloserStack();

  // Logger: the per-container debug file (0600, owned by the runtime's user) unless OFF; errors also on stderr.
  const sinks: Sink[] = [];
  let debugLog: string | undefined;
  if (settings.logLevel !== 'off') {
    const opened = await openDebugLog(paths.debugLog);
    if (opened.ok) {
      debugLog = paths.debugLog;
      ownsDebugLog = true;
    } else {
      // guide 8: a log problem ("Permission denied") must never stop the container; say so and run without the log
      process.stderr.write(`runcvm: warning: no debug log for container ${args.id}: ${opened.problem}; the container runs without it (fix: remove ${paths.debugLog}, or point RUNCVM_LOG_DIR at a folder only the runtime writes)\n`);
    }
  }
  if (debugLog) {
    const file = debugLog;
    sinks.push((line) => {
      try {
        appendFileSync(file, line + '\n');
      } catch {
        /* logging never fails a create */
      }
    });
  }
  const fileLevel = settings.logLevel === 'debug' ? 'debug' : 'info';
  const log = new Logger({ level: settings.logLevel === 'off' ? 'off' : fileLevel, namespace: `runcvm-runtime ${args.id}`, timestamps: true, sinks });
  log.info('create', { bundle: args.bundle, id: args.id });
  // which pod this id is (guide 8: find the log of a pod among many with `grep -l 'pod NS/NAME' /tmp/runcvm-*.debug`)
  const kube = kubernetesMetadata(spec.annotations);
  if (kube) log.info(kubernetesLogLine(kube));

  const rootfs = rootfsPath(spec, args.bundle);
  const proc = spec.process!;
  const look = await lookPathInRoot(rootfs, proc.args?.[0], proc.env ?? [], proc.cwd || '/');
  if (!look.ok) throw new RuncStyleError(look.message);

  // resolve the package symlink once (20-guest.sh swaps `guest` atomically): checks, copies and the bind mount
  // then all see the same build
  const unresolved = assetPaths(process.env);
  const assets = { guestDir: await realpath(unresolved.guestDir).catch(() => unresolved.guestDir), kernelDir: await realpath(unresolved.kernelDir).catch(() => unresolved.kernelDir) };
  // RUNCVM_HYPERVISOR unset: Firecracker when the package has it and KVM works, else QEMU (hypervisor/firecracker/host.ts)
  const hvDecision = await chooseHypervisor(settingEnv.RUNCVM_HYPERVISOR, join(assets.guestDir, 'bin'), process.env);
  settings.hypervisor = hvDecision.hypervisor;
  await checkAssets(assets, settings);
  // volumes + RUNCVM_DISKS (src/runcvm/volumes): validated before any disk work; PVC redirects logged
  const volumePlan = await planContainerVolumes(spec, { disks: settingEnv.RUNCVM_DISKS, kubeletDir: process.env.RUNCVM_KUBELET_DIR, hypervisor: settings.hypervisor, transport: settingEnv.RUNCVM_VOLUME_TRANSPORT }, log);

  await mkdir(dirs.stateRoot, { recursive: true, mode: 0o711 });
  await rm(paths.state, { recursive: true, force: true });
  await mkdir(paths.state, { mode: 0o700 });
  // keep-log tells the dispatcher's delete to leave the log alone: kept for DEBUG, and never ours to remove when
  // create did not make it (a foreign file or link at that path)
  if (settings.logLevel === 'debug' || !ownsDebugLog) await writeFile(paths.keepLog, '');

  // Disks.
  const base = await ensureBaseDisk(rootfs, dirs.cacheDir, args.id, log);

  // networking: never hand the node's own interfaces to a VM (hostNetwork pods join it by path)
  const hostNetwork = await joinsHostNetwork(spec);
  let launch: LaunchSpec = buildLaunchSpec(spec, { containerId: args.id, settings, debugLog: Boolean(debugLog), hostNetwork });
  // runc warns about these in its own log when it starts the launcher container (same spec); the VM ignores them too
  const unknownCaps = capabilitiesFromSpec(spec.process?.capabilities).unknown;
  if (unknownCaps.length) log.info('ignoring unknown or unavailable capabilities', { names: unknownCaps.join(',') });
  if (settings.kernel) launch = { ...launch, kernel: { ...launch.kernel, path: '/.runcvm/kernel-custom/vmlinux' } };
  launch = withVolumesInLaunch(launch, volumePlan);
  // guide 1: the file the guest loads its command from, and a warning when it will be empty
  const entry = entrypointLogLine(launch.process.args);
  log[entry.level](entry.line);

  const staging = paths.staging;
  const top = join(staging, 'upper');
  await mkdir(join(staging, 'work'), { recursive: true, mode: 0o700 });
  closers.push('remove staging', () => rm(staging, { recursive: true, force: true }));
  try {
    await mkdir(top, { mode: 0o755 });
    const rootStat = await stat(rootfs);
    await chmod(top, rootStat.mode & 0o7777);
    for (const layer of base.extraLayers) await stageTree(top, layer);
    for (const f of copiedFilesFromSpec(spec)) {
      const content = await readFile(f.source).catch(() => undefined);
      if (content !== undefined) await stageFile(top, rootfs, f.destination, content, 0o644);
    }
    await stageFile(top, rootfs, GUEST_PATHS.entrypoint, renderEntrypoint(launch.process.args), 0o600);
    await stageFile(top, rootfs, GUEST_PATHS.config, renderGuestConfig(launch), 0o600);
    await chmod(join(top, '.runcvm'), 0o711);
    await stageParents(top, rootfs, GUEST_PATHS.bin);
    await copyFile(join(assets.guestDir, 'bin', 'runcvm-init'), join(top, GUEST_PATHS.init));
    await chmod(join(top, GUEST_PATHS.init), 0o755);
    // busybox in the VM: guest networking (net.c runs `busybox ip`) and the break shells
    if (await exists(join(assets.guestDir, 'bin', 'busybox'))) {
      await copyFile(join(assets.guestDir, 'bin', 'busybox'), join(top, GUEST_PATHS.bin, 'busybox'));
      await chmod(join(top, GUEST_PATHS.bin, 'busybox'), 0o755);
    }
    // exec agent (owner: exec): started by runcvm-init at boot
    if (await exists(join(assets.guestDir, 'bin', 'runcvm-agent'))) {
      await copyFile(join(assets.guestDir, 'bin', 'runcvm-agent'), join(top, GUEST_PATHS.bin, 'runcvm-agent'));
      await chmod(join(top, GUEST_PATHS.bin, 'runcvm-agent'), 0o755);
    }
    const size = await buildUpperDisk(staging, paths.upperDisk, base.usage, settings.rootfsSizeBytes, args.id);
    log.info('writable disk built', { path: paths.upperDisk, bytes: size.bytes });
  } finally {
    await closers.close();
  }

  await atomicWrite(paths.launchSpec, JSON.stringify(launch, null, 2) + '\n', 0o600);

  // the node's KVM device (RUNCVM_KVM_DEVICE, runtime env only) appears in the container as /dev/kvm
  const kvm = await charDevice(kvmDevicePath(process.env));
  const devices = [kvm && { ...kvm, path: KVM_DEVICE }, await charDevice('/dev/net/tun')].filter((d): d is HostDevice => Boolean(d));
  let rewritten = rewriteForVm(spec, {
    guestDir: assets.guestDir,
    kernelDir: assets.kernelDir,
    stateDir: paths.state,
    baseDisk: base.path,
    ...(debugLog ? { debugLog } : {}),
    devices,
  });
  rewritten = rewriteForVolumes(rewritten, volumePlan, spec);
  if (hvDecision.firecrackerPath) {
    rewritten = { ...rewritten, mounts: [...(rewritten.mounts ?? []), { destination: CONTAINER_PATHS.firecracker, type: 'bind', source: hvDecision.firecrackerPath, options: ['rbind', 'ro', 'nosuid', 'nodev'] }] };
  }
  if (settings.kernel) {
    rewritten = { ...rewritten, mounts: [...(rewritten.mounts ?? []), { destination: '/.runcvm/kernel-custom/vmlinux', type: 'bind', source: settings.kernel, options: ['rbind', 'ro'] }] };
  }
  await atomicWrite(join(args.bundle, 'config.json'), JSON.stringify(rewritten), 0o600);
  log.info('bundle rewritten for a microVM', { vcpus: launch.vm.vcpus, memoryMiB: launch.vm.memoryMiB, base: base.path, cached: base.cached });
  return 'vm';
}
