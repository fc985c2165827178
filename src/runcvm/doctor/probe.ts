/**
 * Probes: the doctor's only effects. Each reads one thing from the machine and returns plain facts; nothing here
 * decides pass or fail (see ./verdicts.ts).
 */
import { access, constants, readFile, readdir, readlink, stat, statfs } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { run } from '../../core/exec/index.js';
import { findRuntimeEntries, parseTomlText, stripGoTemplate } from '../install/runtime-config.js';
import { DEFAULT_CACHE_DIR, DEFAULT_STATE_ROOT } from '../state/index.js';
import type { ConfigFileFact, ContainerFacts, DebugLogFact, FileFact, IpAddr, NodeFacts, ToolFact } from './facts.js';

export interface NodeProbeOptions {
  readonly containerdConfig?: string;
  readonly k3sTemplate?: string;
  readonly dockerConfig?: string;
  readonly assetsDir: string;
  readonly cacheDir: string;
  readonly env: Record<string, string | undefined>;
}

/** statfs f_type of tmpfs (linux/magic.h TMPFS_MAGIC) */
const TMPFS_MAGIC = 0x01021994;

export const DEFAULTS = {
  containerdConfig: '/etc/containerd/config.toml',
  k3sTemplate: '/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl',
  dockerConfig: '/etc/docker/daemon.json',
  // the runtime's own default (state/index.ts), so the doctor measures where base disks are really made
  cacheDir: DEFAULT_CACHE_DIR,
};

export async function fileFact(path: string): Promise<FileFact> {
  try {
    const s = await stat(path);
    const rdev = s.rdev;
    const can = async (mode: number) => access(path, mode).then(() => true, () => false);
    return {
      path,
      exists: true,
      isCharDevice: s.isCharacterDevice(),
      isFile: s.isFile(),
      mode: s.mode & 0o7777,
      uid: s.uid,
      gid: s.gid,
      rdevMajor: ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff),
      rdevMinor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
      readWrite: await can(constants.R_OK | constants.W_OK),
      executable: s.isFile() && (await can(constants.X_OK)),
      size: s.size,
    };
  } catch {
    return { path, exists: false };
  }
}

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

async function configFact(path: string, explicit: boolean): Promise<ConfigFileFact> {
  try {
    return { path, explicit, text: await readFile(path, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { path, explicit } : { path, explicit, readError: (err as Error).message };
  }
}

export async function findInPath(name: string, env: Record<string, string | undefined>): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if ((await fileFact(candidate)).executable) return candidate;
  }
  return undefined;
}

async function tool(name: string, env: Record<string, string | undefined>, versionArgs: string[] | undefined): Promise<ToolFact> {
  const path = await findInPath(name, env);
  if (!path || !versionArgs) return { path };
  const version = await run(path, versionArgs, { timeoutMs: 5000 }).then((r) => r.stdout.trim(), (err: Error) => err.message);
  return { path, version };
}

/** Every runtime path the engine configs name, so verdicts can say whether each is executable. */
function namedBinaries(configs: readonly ConfigFileFact[], docker: ConfigFileFact): string[] {
  const out = new Set<string>();
  for (const c of configs) {
    if (c.text === undefined) continue;
    const parsed = parseTomlText(stripGoTemplate(c.text));
    if (!parsed.ok) continue;
    for (const e of findRuntimeEntries(parsed.value)) if (typeof e.binaryName === 'string') out.add(e.binaryName);
  }
  if (docker.text !== undefined) {
    try {
      const p = (JSON.parse(docker.text) as { runtimes?: { runcvm?: { path?: unknown } } })?.runtimes?.runcvm?.path;
      if (typeof p === 'string') out.add(p);
    } catch {
      // reported by the verdict
    }
  }
  return [...out];
}

async function nearestExisting(path: string): Promise<string> {
  let p = path;
  while (!(await fileFact(p)).exists && dirname(p) !== p) p = dirname(p);
  return p;
}

export async function probeNode(o: NodeProbeOptions): Promise<NodeFacts> {
  const cpuinfo = (await readText('/proc/cpuinfo')) ?? '';
  const flagsLine = cpuinfo.split('\n').find((l) => l.startsWith('flags')) ?? '';
  const cpuFlags = ['vmx', 'svm', 'hypervisor'].filter((f) => new RegExp(`\\b${f}\\b`).test(flagsLine));
  const modules = await readdir('/sys/module').catch(() => [] as string[]);
  const kvmModules = ['kvm', 'kvm_intel', 'kvm_amd', 'kvm_pvm'].filter((m) => modules.includes(m));
  const containerd = await configFact(o.containerdConfig ?? DEFAULTS.containerdConfig, o.containerdConfig !== undefined);
  const k3sTemplate = await configFact(o.k3sTemplate ?? DEFAULTS.k3sTemplate, o.k3sTemplate !== undefined);
  const docker = await configFact(o.dockerConfig ?? DEFAULTS.dockerConfig, o.dockerConfig !== undefined);
  const binaries: Record<string, FileFact> = {};
  for (const b of namedBinaries([containerd, k3sTemplate], docker)) binaries[b] = await fileFact(b);
  const probedPath = await nearestExisting(o.cacheDir);
  const fs = await statfs(probedPath).catch(() => undefined);
  // the writable disks (upper.ext4) are made in the state dir, often /run (tmpfs): measure it as the runtime sees it
  const statePath = o.env.RUNCVM_STATE_DIR || DEFAULT_STATE_ROOT;
  const stateProbed = await nearestExisting(statePath);
  const stateFs = await statfs(stateProbed).catch(() => undefined);
  // the runtime writes its per-container logs to $RUNCVM_LOG_DIR (default /tmp): look where it writes
  const logDir = o.env.RUNCVM_LOG_DIR || '/tmp';
  const tmpNames = await readdir(logDir).catch(() => [] as string[]);
  const debugLogs: DebugLogFact[] = [];
  for (const n of tmpNames.filter((x) => /^runcvm-.+\.debug$/.test(x))) {
    const s = await stat(join(logDir, n)).catch(() => undefined);
    if (s?.isFile()) debugLogs.push({ path: join(logDir, n), uid: s.uid, mode: s.mode & 0o7777 });
  }
  const num = async (p: string) => {
    const t = await readText(p);
    return t === undefined ? undefined : Number(t.trim());
  };
  const containerdPath = await findInPath('containerd', o.env);
  return {
    uid: process.getuid?.() ?? -1,
    kvm: await fileFact(o.env.RUNCVM_KVM_DEVICE || '/dev/kvm'),
    cpuFlags,
    kvmModules,
    tun: await fileFact('/dev/net/tun'),
    runc: await tool('runc', o.env, ['--version']),
    qemu: await tool('qemu-system-x86_64', o.env, undefined),
    assetsDir: o.assetsDir,
    kernel: await fileFact(join(o.assetsDir, 'kernel', 'vmlinux')),
    initramfs: await fileFact(join(o.assetsDir, 'kernel', 'initramfs.img')),
    guestLd: await fileFact(join(o.assetsDir, 'guest', 'lib', 'ld')),
    guestQemu: await fileFact(join(o.assetsDir, 'guest', 'bin', 'qemu-system-x86_64')),
    containerd,
    containerdVersion: containerdPath ? await run(containerdPath, ['--version'], { timeoutMs: 5000 }).then((r) => r.stdout.trim(), () => undefined) : undefined,
    k3sTemplate,
    docker,
    binaries,
    cache: { path: o.cacheDir, probedPath, freeBytes: fs ? fs.bavail * fs.bsize : undefined },
    state: { path: statePath, probedPath: stateProbed, freeBytes: stateFs ? stateFs.bavail * stateFs.bsize : undefined, tmpfs: stateFs?.type === TMPFS_MAGIC },
    logDir,
    debugLogs,
    sharedLog: await fileFact(join(logDir, 'runcvm-runtime.log')),
    maxUserNamespaces: await num('/proc/sys/user/max_user_namespaces'),
    unprivilegedUsernsClone: await num('/proc/sys/kernel/unprivileged_userns_clone'),
  };
}

/** `root` prefixes the /.runcvm paths (default '/'): tests point it at a prepared folder. */
export async function probeContainer(env: Record<string, string | undefined>, root = '/'): Promise<ContainerFacts> {
  const runcvm = (...parts: string[]) => join(root, '.runcvm', ...parts);
  const mountsText = (await readText('/proc/mounts')) ?? '';
  const mounts = mountsText.split('\n').filter(Boolean).map((l) => {
    const [src = '', target = '', type = ''] = l.split(' ');
    return [src, target, type] as const;
  });
  const json = async (args: string[]): Promise<unknown> => {
    const out = await run('ip', ['-json', ...args], { timeoutMs: 5000 }).then((r) => r.stdout.trim(), () => undefined);
    if (out === undefined) return undefined;
    try {
      return JSON.parse(out) as unknown;
    } catch {
      return undefined;
    }
  };
  const addr = (await json(['addr', 'show', 'dev', 'br-eth0'])) as { addr_info?: IpAddr[] }[] | undefined;
  const members = (await json(['link', 'show', 'master', 'br-eth0'])) as { ifname?: string }[] | undefined;
  return {
    entrypoint: await fileFact(runcvm('entrypoint')),
    procMounted: mounts.some(([, target, type]) => target === '/proc' && type === 'proc'),
    procSelfExe: await readlink('/proc/self/exe').then(() => true, () => false),
    path: env.PATH ?? '',
    guestBin: await fileFact(runcvm('guest', 'bin')),
    bridgeAddrs: Array.isArray(addr) && addr[0] ? (addr[0].addr_info ?? []) : undefined,
    bridgeMembers: Array.isArray(members) ? members.flatMap((m) => (m.ifname ? [m.ifname] : [])) : [],
    podIp: env.POD_IP,
    volumeIds: await readdir(runcvm('vols')).catch(() => [] as string[]),
    mounts,
  };
}
