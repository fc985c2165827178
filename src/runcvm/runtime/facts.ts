/**
 * What `create` (and `runcvm plan`) read from the host before deciding anything, in one place: the bundle's rootfs,
 * the guest assets, the hypervisor facts, RUNCVM_KERNEL's candidate file, the volumes' sources, the network
 * namespace, the devices, the engine's files, the debug log's path and the base disk's source. Reads only: nothing
 * here changes the host, so `runcvm plan` can run it anywhere. planCreate (plan-create.ts) turns these into the plan.
 */
import { constants as fsc } from 'node:fs';
import { access, lstat, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { assetsDir } from '../../core/paths.js';
import { envMap, type OciSpec } from '../launch/oci.js';
import { kernelCandidate, type KernelFacts } from '../launch/kernel.js';
import { parseNodeSettings, readSettings, type KernelRequest } from '../launch/settings.js';
import { copiedFilesFromSpec } from '../launch/build.js';
import type { HostDevice } from '../bundle/transforms/index.js';
import { LAUNCHER_NODE_FLAGS, passThroughReason } from '../bundle/transforms/index.js';
import { containerPaths, hostDirs } from '../state/index.js';
import { KVM_DEVICE, gatherAccelFacts, kvmDevicePath, readCpuinfo, readHostFacts, tscKhz } from '../hypervisor/facts.js';
import type { AccelFacts } from '../hypervisor/accel.js';
import type { HostFacts } from '../hypervisor/types.js';
import { joinsHostNetwork } from '../network/host.js';
import { DEFAULT_KUBELET_DIR, type SourceKind } from '../volumes/plan.js';
import { readVolumeSources } from '../volumes/host.js';
import { readBaseSource } from '../storage/apply.js';
import type { BaseSource } from '../storage/plan.js';
import { run } from '../../core/exec/index.js';
import { lookPathInRoot, type LookResult } from './lookpath.js';
import type { TemplateFacts } from '../template/plan.js';

/** What create was asked to do. */
export interface CreateInput {
  id: string;
  /** the bundle folder and its config.json as the engine wrote it */
  bundle: string;
  spec: OciSpec;
  /**
   * the engine's command line, handed to runc unchanged once the bundle is rewritten; root: runc's state root
   * (`--root` or runc's default), where create puts the caller's bundle back into runc's record
   */
  runc: { file: string; argv: string[]; passFds: number; root?: string };
  /** the runtime's own environment: node settings and the node's defaults of the container settings */
  nodeEnv: Readonly<Record<string, string | undefined>>;
}

/** The files of the guest assets create looks for, relative to the assets folder (guest/…, kernel/…). */
export const ASSET_FILES = [
  'kernel/vmlinux',
  'kernel/initramfs.img',
  'guest/lib/ld',
  'guest/bin/node',
  'guest/bin/runcvm-init',
  'guest/lib/runcvm/launcher.mjs',
  'guest/bin/qemu-system-x86_64',
  'guest/bin/busybox',
  'guest/bin/runcvm-agent',
] as const;

export type DebugLogFacts =
  | { kind: 'missing' }
  | { kind: 'file'; uid: number; nlink: number }
  | { kind: 'symlink' }
  | { kind: 'other'; what: string };

export interface CreateFacts {
  /** the package folders, symlinks resolved once (20-guest.sh swaps `guest` atomically: one create sees one build) */
  assets: { guestDir: string; kernelDir: string; present: string[] };
  /** the image rootfs on the host and its root folder's mode; undefined when it does not exist */
  rootfs?: { path: string; mode: number };
  /** args[0] looked up in the rootfs as runc does */
  lookPath: LookResult;
  hypervisor: HostFacts;
  /** RUNCVM_KERNEL's candidate file (when the setting names one acceptably: launch/kernel.ts) */
  kernel?: KernelFacts;
  volumeSources: Record<string, SourceKind>;
  /** the container joins the runtime's own (the node's) network namespace */
  hostNetwork: boolean;
  /** /dev/kvm and /dev/net/tun when the host has them */
  devices: HostDevice[];
  /** the engine's /etc/hosts, /etc/resolv.conf, /etc/hostname sources that are readable files */
  engineFiles: string[];
  /** what is at the debug log's path now, and who the runtime is */
  debugLog: DebugLogFacts;
  runtimeUid?: number;
  /** the base disk's source and cache state; undefined when the rootfs does not exist */
  base?: BaseSource;
  /** what the template decision needs (template/plan.ts); undefined when RUNCVM_TEMPLATE is off */
  template?: TemplateFacts;
  /** the guest package has a launcher snapshot built by its node with LAUNCHER_NODE_FLAGS (launcherSnapshotFits) */
  launcherSnapshot?: boolean;
}

export function assetFolders(env: Readonly<Record<string, string | undefined>>): { guestDir: string; kernelDir: string } {
  // the bundled runtime (dist/runcvm/runtime/runtime.mjs) cannot locate the project from its own URL: the dispatcher
  // tells it where it lives (RUNCVM_HOME)
  const base = env.RUNCVM_ASSETS || (env.RUNCVM_HOME ? join(env.RUNCVM_HOME, 'var', 'assets') : assetsDir(env));
  return { guestDir: env.RUNCVM_GUEST_DIR || join(base, 'guest'), kernelDir: join(base, 'kernel') };
}

export function rootfsPath(spec: OciSpec, bundle: string): string {
  const p = spec.root?.path ?? 'rootfs';
  return p.startsWith('/') ? p : join(bundle, p);
}

const exists = (path: string) => access(path, fsc.F_OK).then(() => true, () => false);

async function charDevice(path: string): Promise<HostDevice | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isCharacterDevice()) return undefined;
  const rdev = st.rdev;
  return { path, type: 'c', major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
}

/** /dev/kvm and /dev/net/tun when the host has them; the node's KVM device (RUNCVM_KVM_DEVICE) appears in the container as /dev/kvm. */
async function hostDevices(nodeEnv: Readonly<Record<string, string | undefined>>): Promise<HostDevice[]> {
  const kvm = await charDevice(kvmDevicePath(nodeEnv));
  return [kvm && { ...kvm, path: KVM_DEVICE }, await charDevice('/dev/net/tun')].filter((d): d is HostDevice => Boolean(d));
}

async function debugLogFacts(path: string): Promise<DebugLogFacts> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : err));
  if (st === undefined) return { kind: 'missing' };
  if (st instanceof Error) return { kind: 'other', what: st.message };
  if (st.isSymbolicLink()) return { kind: 'symlink' };
  if (st.isFile()) return { kind: 'file', uid: st.uid, nlink: st.nlink };
  return { kind: 'other', what: 'not a regular file' };
}

/** A file's identity as 30-runtime.sh records it (`stat -L -c '%d:%i:%s:%Y'`): a rebuilt or replaced node differs. */
export function fileIdentity(st: { dev: number; ino: number; size: number; mtimeMs: number }): string {
  return `${st.dev}:${st.ino}:${st.size}:${Math.floor(st.mtimeMs / 1000)}`;
}

/**
 * Whether guest/lib/runcvm/launcher.blob may be used: its key (launcher.blob.key: the identity of the node that built
 * it, then the node options it was built with) is the guest node's identity and LAUNCHER_NODE_FLAGS, and it is newer
 * than launcher.mjs (a rebuilt launcher without a new snapshot). Node exits on a snapshot that does not fit, so
 * anything else, or any error reading, runs launcher.mjs.
 */
export async function launcherSnapshotFits(guestDir: string): Promise<boolean> {
  const dir = join(guestDir, 'lib', 'runcvm');
  try {
    const [key, blob, mjs, node] = await Promise.all([
      readFile(join(dir, 'launcher.blob.key'), 'utf8'),
      stat(join(dir, 'launcher.blob')),
      stat(join(dir, 'launcher.mjs')),
      stat(join(guestDir, 'bin', 'node')),
    ]);
    return blob.isFile() && blob.mtimeMs > mjs.mtimeMs && key.trim() === [fileIdentity(node), ...LAUNCHER_NODE_FLAGS].join(' ');
  } catch {
    return false;
  }
}

/**
 * Settle every promise, then answer their values in order, or throw the first failure in the listed order (not in
 * time): the facts are read concurrently, and the error a create reports stays the one the sequential reads gave.
 */
async function allInOrder<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

async function readKernelFacts(setting: KernelRequest, kernelsDir: string): Promise<KernelFacts | undefined> {
  const c = kernelCandidate(setting, kernelsDir);
  // a value refused on its text is never looked up on the host (no existence oracle)
  if (!c.ok) return undefined;
  const [realPath, realKernelsDir] = await Promise.all([realpath(c.path).catch(() => undefined), realpath(kernelsDir).catch(() => undefined)]);
  const st = realPath ? await lstat(realPath).catch(() => undefined) : undefined;
  return { kind: !st ? 'missing' : st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other', ...(realPath ? { realPath } : {}), ...(realKernelsDir ? { realKernelsDir } : {}) };
}

async function readableFile(path: string): Promise<boolean> {
  return Boolean((await stat(path).catch(() => undefined))?.isFile()) && (await access(path, fsc.R_OK).then(() => true, () => false));
}

/**
 * The host's CPU and KVM facts, read once per create: /proc/cpuinfo (the accelerator's flags and the TSC frequency)
 * and the KVM device's open test serve both the hypervisor choice and the template decision.
 */
function accelHostFacts(nodeEnv: Readonly<Record<string, string | undefined>>): { accel: AccelFacts; cpuinfo: string } {
  const cpuinfo = readCpuinfo();
  return { accel: gatherAccelFacts(cpuinfo, kvmDevicePath(nodeEnv)), cpuinfo };
}

/** Read every fact planCreate needs; undefined for a container that stays plain runc (nothing to read). */
export async function readCreateFacts(input: CreateInput): Promise<CreateFacts | undefined> {
  const { spec, nodeEnv } = input;
  if (passThroughReason(spec)) return undefined;
  const containerEnv = envMap(spec.process?.env);
  const node = parseNodeSettings(nodeEnv);
  // a bad setting fails here already, with the same error planCreate would give
  const settings = readSettings(nodeEnv, containerEnv, node);
  const paths = containerPaths(hostDirs(nodeEnv), input.id);

  const folders = assetFolders(nodeEnv);
  const [guestDir, kernelDir] = await Promise.all([realpath(folders.guestDir).catch(() => folders.guestDir), realpath(folders.kernelDir).catch(() => folders.kernelDir)]);
  const rootfs = rootfsPath(spec, input.bundle);
  const proc = spec.process;
  // a promise, not a value: a bad RUNCVM_KVM_DEVICE fails where the sequential reads failed (after the ones before it)
  const host = Promise.resolve().then(() => accelHostFacts(nodeEnv));
  const rootStatP = stat(rootfs).catch(() => undefined);

  // independent reads, concurrently (each is a few syscalls, or a child process: nsenter)
  const [present, rootStat, lookPath, kernel, engineFiles, hypervisor, volumeSources, hostNetwork, devices, debugLog, base, template, snapshotFits] = await allInOrder([
    Promise.all(ASSET_FILES.map((f) => {
      const [top, ...rest] = f.split('/');
      return exists(join(top === 'kernel' ? kernelDir : guestDir, ...rest));
    })).then((found) => ASSET_FILES.filter((_, i) => found[i])),
    rootStatP,
    lookPathInRoot(rootfs, proc?.args?.[0], proc?.env ?? [], proc?.cwd || '/'),
    settings.kernel ? readKernelFacts(settings.kernel, node.kernelsDir) : Promise.resolve(undefined),
    Promise.all(copiedFilesFromSpec(spec).map((f) => readableFile(f.source).then((ok) => (ok ? f.source : undefined)))).then((l) => l.filter((f): f is string => f !== undefined)),
    host.then((h) => readHostFacts(join(guestDir, 'bin'), nodeEnv, h.accel)),
    readVolumeSources(spec, nodeEnv.RUNCVM_KUBELET_DIR || DEFAULT_KUBELET_DIR),
    joinsHostNetwork(spec),
    hostDevices(nodeEnv),
    settings.logLevel === 'off' ? Promise.resolve<DebugLogFacts>({ kind: 'missing' }) : debugLogFacts(paths.debugLog),
    rootStatP.then((st) => (st ? readBaseSource(rootfs, hostDirs(nodeEnv).cacheDir) : undefined)),
    node.template === 'on' ? host.then((h) => readTemplateFacts(spec, nodeEnv, settings.accel, kernelDir, guestDir, h)) : Promise.resolve(undefined),
    launcherSnapshotFits(guestDir),
  ] as const);

  const uid = process.getuid?.();
  return {
    assets: { guestDir, kernelDir, present },
    ...(rootStat ? { rootfs: { path: rootfs, mode: rootStat.mode } } : {}),
    lookPath,
    hypervisor,
    ...(kernel ? { kernel } : {}),
    volumeSources,
    hostNetwork,
    devices,
    engineFiles,
    debugLog,
    ...(uid !== undefined ? { runtimeUid: uid } : {}),
    ...(base ? { base } : {}),
    ...(template ? { template } : {}),
    ...(snapshotFits ? { launcherSnapshot: true } : {}),
  };
}

/**
 * Docker (20.10-25) connects a container's interfaces from its `libnetwork-setkey` prestart hook, after create: a new
 * namespace with that hook gets one eth0 (bridge networks; an estimate the launcher checks against what it finds).
 */
export function dockerConnectsLater(spec: OciSpec): boolean {
  const hooks = spec.hooks as Record<string, { args?: string[] }[] | undefined> | undefined;
  return Object.values(hooks ?? {}).some((list) => (list ?? []).some((h) => (h.args ?? []).includes('libnetwork-setkey')));
}

/** The eth* interfaces of the network namespace the spec joins by path, now (0 for a new, empty namespace). */
async function namespaceNics(spec: OciSpec): Promise<number> {
  const path = (spec.linux?.namespaces ?? []).find((n) => n.type === 'network')?.path;
  if (!path) return dockerConnectsLater(spec) ? 1 : 0;
  // /proc/net/dev as a process in that namespace sees it (nsenter: the runtime is root on the node)
  const r = await run('nsenter', [`--net=${path}`, 'cat', '/proc/self/net/dev'], { reject: false, timeoutMs: 2_000 }).catch(() => undefined);
  if (!r || r.exitCode !== 0) return 0;
  return String(r.stdout).split('\n').filter((l) => /^\s*eth[^:]*:/.test(l)).length;
}

/** Facts for the template decision (template/plan.ts): assets by hash, accel, tsc, NICs, the store's state. */
async function readTemplateFacts(spec: OciSpec, nodeEnv: Readonly<Record<string, string | undefined>>, accel: 'auto' | 'kvm' | 'tcg', kernelDir: string, guestDir: string, host: { accel: AccelFacts; cpuinfo: string }): Promise<TemplateFacts> {
  const [{ readTemplateAssets }, { storeState }, { decideAccel }] = await Promise.all([import('../template/facts.js'), import('../template/store.js'), import('../hypervisor/accel.js')]);
  const decision = decideAccel(accel, host.accel);
  const khz = tscKhz(host.cpuinfo);
  const cli = nodeEnv.RUNCVM_HOME ? join(nodeEnv.RUNCVM_HOME, 'bin', 'runcvm') : undefined;
  const [assets, store, hasCli, nics] = await Promise.all([readTemplateAssets(kernelDir, guestDir), storeState(hostDirs(nodeEnv).cacheDir), cli ? exists(cli) : false, namespaceNics(spec)]);
  return {
    setting: 'on',
    ...(assets ? { assets } : {}),
    ...(decision.ok ? { accel: decision.accel } : {}),
    ...(khz ? { tscKhz: khz } : {}),
    nics,
    ready: store.ready,
    stale: store.stale,
    building: store.building,
    ...(cli && hasCli ? { builder: { node: process.execPath, cli } } : {}),
  };
}
