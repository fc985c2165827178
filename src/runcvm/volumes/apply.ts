/**
 * Volume effects in the launcher (container PID 1), before the hypervisor starts: one virtiofsd per shared folder
 * (from the guest package) and the RUNCVM_DISKS image files (created sparse + formatted on first use, reused after).
 * Every step registers its undo; a failing step undoes the earlier ones before throwing, and `undo()` is called on
 * every launcher exit path (virtiofsd killed, sockets removed; disks are user data and stay).
 */
import { constants as fsc } from 'node:fs';
import { access, lstat, mkdir, open, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { run, spawnChild } from '../../core/exec/index.js';
import { isToolError } from '../../core/errors.js';
import type { Logger } from '../../core/log/index.js';
import { runcvmErrors } from '../errors.js';
import type { VmPlan } from '../hypervisor/index.js';
import { CONTAINER_PATHS } from '../launch/schema.js';
import { dataDisks, diskPathProblem, sharedVolumes, type DataDisk, type SharedVolume, type Volume } from './plan.js';
import { startNfsExports } from './nfs.js';

const { fail } = runcvmErrors;

export interface VolumeTools {
  /** the guest package (in the container: /.runcvm/guest) */
  guestDir: string;
  /** folder for the vhost-user sockets (in the container: /.runcvm/state) */
  socketDir: string;
  /** run package binaries through the package's loader (true in the container) */
  viaLoader: boolean;
}

export const CONTAINER_TOOLS: VolumeTools = { guestDir: CONTAINER_PATHS.guest, socketDir: CONTAINER_PATHS.state, viaLoader: true };

export interface StartedShare {
  tag: string;
  socket: string;
}

export interface VolumeSetup {
  shares: StartedShare[];
  /** data disks created on this run (ids) */
  created: string[];
  undo(): Promise<void>;
}

function tool(tools: VolumeTools, name: string, args: string[]): { file: string; args: string[] } {
  const bin = `${tools.guestDir}/bin/${name}`;
  return tools.viaLoader ? { file: `${tools.guestDir}/lib/ld`, args: ['--library-path', `${tools.guestDir}/lib`, bin, ...args] } : { file: bin, args };
}

/** The hard RLIMIT_NOFILE of this process (virtiofsd keeps one descriptor per inode the guest looked up). */
export function hardNofile(limitsText: string): number | undefined {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(limitsText);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? 1_048_576 : Number(m[1]);
}

/** virtiofsd argv (Debian QEMU 7.2's C virtiofsd): chroot sandbox (works in a container), cache=auto, no xattr. */
export function virtiofsdArgs(share: { socket: string; source: string }, opts: { nofile?: number } = {}): string[] {
  return [
    `--socket-path=${share.socket}`,
    '-o', `source=${share.source}`,
    '-o', 'cache=auto',
    '-o', 'sandbox=chroot',
    '-o', 'log_level=warn',
    ...(opts.nofile ? [`--rlimit-nofile=${opts.nofile}`] : ['--rlimit-nofile=0']),
  ];
}

async function exists(path: string): Promise<boolean> {
  return access(path, fsc.F_OK).then(() => true, () => false);
}

async function waitFor(path: string, alive: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await exists(path)) return true;
    if (!alive()) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return exists(path);
}

async function startVirtiofsd(v: SharedVolume, tools: VolumeTools, log: Logger, nofile: number | undefined): Promise<{ share: StartedShare; stop: () => Promise<void> }> {
  const socket = `${tools.socketDir}/${v.tag}.fs.sock`;
  await rm(socket, { force: true });
  const st = await stat(v.containerPath).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw fail('VOLUME_SETUP', { destination: v.destination, step: 'share', problem: `${v.containerPath} is not a folder in the container`, command: '-' });
  }
  const t = tool(tools, 'virtiofsd', virtiofsdArgs({ socket, source: v.containerPath }, nofile ? { nofile } : {}));
  log.debug('virtiofsd', { destination: v.destination, argv: [t.file, ...t.args].join(' ') });
  const child = await spawnChild(t.file, t.args, { env: { PATH: '/usr/bin:/bin' }, extendEnv: false });
  let output = '';
  let exited = false;
  const onData = (d: Buffer) => {
    output = (output + d.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const done = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      resolve();
    });
    child.on('error', (err) => {
      output += `\n${err.message}`;
      exited = true;
      resolve();
    });
  });
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await done;
      clearTimeout(t);
    }
    if (output.trim()) log.debug('virtiofsd output', { destination: v.destination, text: output.trim() });
    await rm(socket, { force: true });
  };
  if (!(await waitFor(socket, () => !exited, 10_000))) {
    await stop();
    const why = output.trim().split('\n').filter(Boolean).pop() ?? 'no socket after 10 s';
    throw fail('VOLUME_SETUP', { destination: v.destination, step: 'virtiofsd', problem: why, command: [t.file, ...t.args].join(' ') });
  }
  log.info('volume shared', { destination: v.destination, tag: v.tag, readOnly: v.flags.readOnly, source: v.hostSource });
  return { share: { tag: v.tag, socket }, stop };
}

/** mke2fs argv for a new data disk (sparse file, lazy init: costs only what is written). */
export function mkfsArgs(d: Pick<DataDisk, 'fs' | 'id'>, file: string): string[] {
  return ['-t', d.fs, '-q', '-F', '-L', d.id.slice(0, 16), '-E', 'lazy_itable_init=1,lazy_journal_init=1', file];
}

/** The real path of `path`'s deepest existing ancestor (itself when it exists). */
async function realAncestor(path: string): Promise<string> {
  for (let p = path; ; p = dirname(p)) {
    const real = await realpath(p).catch(() => undefined);
    if (real !== undefined) return real;
    if (p === '/') return '/';
  }
}

async function checkDiskPath(d: DataDisk, path: string): Promise<void> {
  const problem = diskPathProblem(await realAncestor(path));
  if (problem) throw fail('VOLUME_SETUP', { destination: d.destination, step: 'disk', problem: `${d.source}: ${problem}`, command: '-' });
}

/**
 * Create and format the disk image unless it exists; true when it was created. Never reformats. Symlinks are not
 * followed out of the container's own files (diskPathProblem), and the image itself must be a regular file.
 */
export async function ensureDataDisk(d: DataDisk, tools: VolumeTools, log: Logger): Promise<boolean> {
  await checkDiskPath(d, dirname(d.containerPath));
  const existing = await lstat(d.containerPath).catch(() => undefined);
  if (existing) {
    if (!existing.isFile()) {
      throw fail('VOLUME_SETUP', { destination: d.destination, step: 'disk', problem: `${d.source} exists and is not a regular file`, command: '-' });
    }
    log.info('data disk reused', { source: d.source, destination: d.destination, bytes: existing.size });
    return false;
  }
  await mkdir(dirname(d.containerPath), { recursive: true });
  await checkDiskPath(d, dirname(d.containerPath));
  const tmp = `${d.containerPath}.runcvm-${process.pid}.tmp`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    await fh.truncate(d.sizeBytes);
    await fh.close();
    const t = tool(tools, 'mke2fs', mkfsArgs(d, tmp));
    const r = await run(t.file, t.args, { reject: false, env: { MKE2FS_CONFIG: `${tools.guestDir}/etc/mke2fs.conf` } });
    if (r.exitCode !== 0) {
      throw fail('VOLUME_SETUP', { destination: d.destination, step: 'mkfs', problem: (r.stderr || r.stdout).trim().split('\n').pop() ?? `exit ${r.exitCode}`, command: r.command });
    }
    await rename(tmp, d.containerPath);
  } catch (err) {
    await rm(tmp, { force: true });
    if ((err as { code?: string }).code === 'EEXIST') return ensureDataDisk(d, tools, log);
    if (isToolError(err)) throw err;
    throw fail('VOLUME_SETUP', { destination: d.destination, step: 'disk', problem: `${d.source}: ${(err as Error).message}`, command: '-' }, err);
  }
  log.info('data disk created', { source: d.source, destination: d.destination, fs: d.fs, bytes: d.sizeBytes });
  return true;
}

/** nfsClients: the VM's addresses, the only peers the NFS server answers (network/plan.ts guestAddresses). */
export async function setUpVolumes(volumes: readonly Volume[], log: Logger, tools: VolumeTools = CONTAINER_TOOLS, nfsClients: readonly string[] = []): Promise<VolumeSetup> {
  const undo: (() => Promise<void>)[] = [];
  const undoAll = async () => {
    for (const u of undo.splice(0).reverse()) await u().catch(() => {});
  };
  const shares: StartedShare[] = [];
  const created: string[] = [];
  try {
    for (const d of dataDisks(volumes)) if (await ensureDataDisk(d, tools, log)) created.push(d.id);
    // NFS transport (volumes/nfs.ts): one in-process NFSv3 server on 169.254.1.254:2049 for all of them
    const nfs = sharedVolumes(volumes).filter((v) => v.transport === 'nfs');
    if (nfs.length > 0) undo.push(await startNfsExports(nfs, log, nfsClients));
    const shared = sharedVolumes(volumes).filter((v) => v.transport !== 'nfs');
    if (shared.length > 0) {
      const nofile = hardNofile(await readFile('/proc/self/limits', 'utf8').catch(() => ''));
      for (const v of shared) {
        const s = await startVirtiofsd(v, tools, log, nofile);
        undo.push(s.stop);
        shares.push(s.share);
      }
    }
  } catch (err) {
    await undoAll();
    throw err;
  }
  return { shares, created, undo: undoAll };
}

/** The VmPlan with the shares (virtiofs devices + shared guest memory) and data disks flushed to the file. */
export function withVolumes(plan: VmPlan, setup: Pick<VolumeSetup, 'shares'>, volumes: readonly Volume[]): VmPlan {
  const dataIds = new Set(dataDisks(volumes).map((d) => d.id));
  const disks = plan.disks.map((d) => (dataIds.has(d.id) ? { ...d, cache: 'writeback' as const } : d));
  return { ...plan, disks, ...(setup.shares.length ? { shares: setup.shares } : {}) };
}
