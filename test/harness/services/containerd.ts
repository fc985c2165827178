/**
 * A real containerd 1.6 (with runc 1.1.5) for tests: own config, root, state and gRPC socket under a temp dir, a
 * unique namespace, the CRI plugin off unless `cri: true`.
 *
 *   await using cd = await startContainerd();
 *   await cd.ctr(['images', 'pull', '--plain-http', ref]);
 *   const r = await cd.ctr(['run', '--rm', ref, 'c1', 'echo', 'hi']);         // r.stdout === 'hi\n'
 *   await using cri = await startContainerd({ cri: true, runtimes: { runcvm: { binaryName: '/abs/runcvm-runtime' } } });
 *
 * stop() (also on dispose) kills and deletes every task and container in every namespace, stops containerd, kills
 * any containerd-shim left for this socket, force-deletes runc state, unmounts everything under the temp dir and
 * removes it.
 */
import { mkdir, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CloserStack, tempDir } from '../../../src/core/fsx/index.js';
import { run, type RunOptions, type RunResult } from '../../../src/core/exec/index.js';
import { waitFor } from '../wait.js';
import { killMatching, startProcess, unmountAll } from '../proc.js';

export interface ContainerdOptions {
  /** CRI runtime handlers (only with `cri: true`): runtime_type io.containerd.runc.v2 with options.BinaryName */
  runtimes?: Record<string, { binaryName: string }>;
  /** enable the CRI plugin (gRPC CRI API on the same socket) */
  cri?: boolean;
  /** CRI sandbox (pause) image; default a local name that is never pulled from the internet */
  sandboxImage?: string;
  /** raw TOML appended to the generated config */
  extraConfig?: string;
  /** write the generated config here instead of into the temp dir (a node's /etc/containerd/config.toml) */
  configPath?: string;
  /**
   * run containerd (and so its shims and containers) in a private mount namespace where each `source` is bound over
   * `target`: a test node whose /opt is a temporary folder, without touching the host's /opt
   */
  binds?: { source: string; target: string }[];
  /** CNI folder (bin/ and conf/) prepared before containerd starts (default: cni/ in the temp dir) */
  cniDir?: string;
  /** containerd's environment (a node's service unit Environment=): shims and runtimes inherit it */
  env?: Record<string, string>;
}

export interface StartedContainerd extends AsyncDisposable {
  socket: string;
  root: string;
  state: string;
  dir: string;
  logPath: string;
  namespace: string;
  configPath: string;
  /** runs `ctr --address socket -n namespace ...args` */
  ctr(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** containerd's pid (its mount namespace is the node's when `binds` are used) */
  pid(): number;
  /**
   * stop the containerd process only (shims and containers keep running, as with `systemctl restart containerd`) and
   * start it again on the config file as it is now
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const q = (s: string) => JSON.stringify(s); // a JSON string is a valid TOML basic string

/** runc's state folder that containerd-shim-runc-v2 uses by default for a namespace. */
const shimRuncRoot = (ns: string) => join('/run/containerd/runc', ns);

export async function startContainerd(opts: ContainerdOptions = {}): Promise<StartedContainerd> {
  const closers = new CloserStack();
  try {
    const dir = await tempDir('harness-containerd', closers);
    const root = join(dir, 'root');
    const state = join(dir, 'state');
    const socket = join(dir, 'containerd.sock');
    const logPath = join(dir, 'containerd.log');
    const configPath = opts.configPath ?? join(dir, 'config.toml');
    const namespace = `harness-${randomBytes(4).toString('hex')}`;
    await mkdir(root, { recursive: true, mode: 0o711 });
    await mkdir(state, { recursive: true, mode: 0o711 });

    const lines = [
      'version = 2',
      `root = ${q(root)}`,
      `state = ${q(state)}`,
      'oom_score = 0',
      opts.cri ? 'disabled_plugins = []' : 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '',
      '[grpc]',
      `  address = ${q(socket)}`,
      '',
      '[ttrpc]',
      `  address = ${q(`${socket}.ttrpc`)}`,
      '',
      '[debug]',
      '  address = ""',
      '  level = "info"',
      '',
      '[metrics]',
      '  address = ""',
      '',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${q(join(dir, 'opt'))}`,
      '',
    ];
    if (opts.cri) {
      const cri = 'plugins."io.containerd.grpc.v1.cri"';
      const cniDir = opts.cniDir ?? join(dir, 'cni');
      await mkdir(join(cniDir, 'bin'), { recursive: true });
      await mkdir(join(cniDir, 'conf'), { recursive: true });
      lines.push(
        `[${cri}]`,
        `  sandbox_image = ${q(opts.sandboxImage ?? 'localhost/harness/pause:local')}`,
        '  stream_server_address = "127.0.0.1"',
        '  stream_server_port = "0"',
        '  enable_selinux = false',
        '  disable_apparmor = true',
        '  restrict_oom_score_adj = true',
        '',
        `[${cri}.cni]`,
        `  bin_dir = ${q(join(cniDir, 'bin'))}`,
        `  conf_dir = ${q(join(cniDir, 'conf'))}`,
        '',
        `[${cri}.containerd]`,
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        '',
        `[${cri}.containerd.runtimes.runc]`,
        '  runtime_type = "io.containerd.runc.v2"',
        `[${cri}.containerd.runtimes.runc.options]`,
        `  Root = ${q(join(dir, 'runc', 'runc'))}`,
        '',
      );
      for (const [name, rt] of Object.entries(opts.runtimes ?? {})) {
        if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`invalid CRI runtime name ${q(name)} (letters, digits, _ and - only)`);
        lines.push(
          `[${cri}.containerd.runtimes.${name}]`,
          '  runtime_type = "io.containerd.runc.v2"',
          `[${cri}.containerd.runtimes.${name}.options]`,
          `  BinaryName = ${q(rt.binaryName)}`,
          `  Root = ${q(join(dir, 'runc', name))}`,
          '',
        );
      }
    }
    if (opts.extraConfig) lines.push(opts.extraConfig, '');
    await mkdir(dirname(configPath), { recursive: true });
    await writeFile(configPath, lines.join('\n'));

    const binds = opts.binds ?? [];
    const launch = () => binds.length === 0
      ? startProcess('containerd', 'containerd', ['--config', configPath], { logPath, ...(opts.env ? { env: opts.env } : {}) })
      // a private mount namespace: the binds never show on the host (mount propagation is private here)
      : startProcess('containerd', 'unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c',
        `${binds.map((_, i) => `mount --bind "$${2 * i + 2}" "$${2 * i + 3}" && `).join('')}exec containerd --config "$1"`,
        'containerd', configPath, ...binds.flatMap((b) => [b.source, b.target])], { logPath, ...(opts.env ? { env: opts.env } : {}) });
    let proc = await launch();
    const namespacesSeen = new Set<string>([namespace]);
    // ids of this containerd's tasks and containers: the default runc roots (/run/containerd/runc/NS) are shared with
    // every other containerd on the machine (the CRI plugin's namespace is always k8s.io, and a runtime entry without
    // options.Root, as runcvm's installer writes, uses that default), so only these are force-deleted there
    const idsSeen = new Set<string>();
    const ctrRaw = (args: string[], o: RunOptions = {}) => run('ctr', ['--address', socket, ...args], o);

    // Teardown order (LIFO): clean tasks/containers → stop containerd → kill stray shims/runc state → unmount → rm.
    closers.push('unmount leftovers', () => unmountAll(dir));
    closers.push('force-delete runc state', async () => {
      const roots = [...namespacesSeen].map(shimRuncRoot);
      try {
        for (const e of await readdir(join(dir, 'runc'))) roots.push(join(dir, 'runc', e));
      } catch {
        /* no CRI runc roots */
      }
      for (const r of roots) await forceDeleteRunc(r, r.startsWith(dir) || r === shimRuncRoot(namespace) ? undefined : idsSeen);
    });
    closers.push('kill stray shims', () => killMatching(`-address ${socket}`));
    closers.push('stop containerd', () => proc.stop(10_000));
    const ready = () => waitFor(`containerd socket ${socket} and \`ctr version\` to answer`, async () => {
      proc.assertAlive();
      await stat(socket);
      await ctrRaw(['version'], { timeoutMs: 5000 });
      return true;
    }, { timeoutMs: 20_000, intervalMs: 25 });
    closers.push('remove tasks and containers', async () => {
      if (!proc.alive()) return;
      const nss = await ctrRaw(['namespaces', 'ls', '-q'], { reject: false, timeoutMs: 10_000 });
      for (const ns of nss.stdout.split('\n').map((s) => s.trim()).filter(Boolean)) namespacesSeen.add(ns);
      for (const ns of namespacesSeen) for (const id of await cleanNamespace(ctrRaw, ns)) idsSeen.add(id);
    });

    await ready();

    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= closers.close().then((errors) => {
        if (errors.length) throw new AggregateError(errors, `stopping containerd ${socket}: ${errors.map((e) => e.message).join('; ')}`);
      });
      return stopped;
    };
    return {
      socket,
      root,
      state,
      dir,
      logPath,
      namespace,
      configPath,
      ctr: (args, o) => ctrRaw(['-n', namespace, ...args], o),
      pid: () => proc.pid,
      async restart() {
        await proc.stop(10_000);
        await rm(socket, { force: true });
        proc = await launch();
        await ready();
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await closers.close();
    throw err;
  }
}

/** Kills and deletes every task and container of `ns`; returns their ids. */
async function cleanNamespace(ctr: (args: string[], o?: RunOptions) => Promise<RunResult>, ns: string): Promise<string[]> {
  const o = { reject: false, timeoutMs: 15_000 } as const;
  const ids = (r: RunResult) => r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
  const tasks = await ctr(['-n', ns, 'tasks', 'ls', '-q'], o);
  for (const id of ids(tasks)) {
    await ctr(['-n', ns, 'tasks', 'kill', '-a', '-s', 'SIGKILL', id], o);
    await ctr(['-n', ns, 'tasks', 'delete', '-f', id], o);
  }
  const containers = await ctr(['-n', ns, 'containers', 'ls', '-q'], o);
  for (const id of ids(containers)) await ctr(['-n', ns, 'containers', 'rm', id], o);
  return [...ids(tasks), ...ids(containers)];
}

/**
 * `runc --root R delete --force` for every container left in R (only those of `only` when given: R is shared with
 * other containerd instances, whose containers must live on), then remove R if empty.
 */
async function forceDeleteRunc(runcRoot: string, only?: ReadonlySet<string>): Promise<void> {
  let entries: string[];
  try {
    entries = (await readdir(runcRoot)).filter((id) => !only || only.has(id));
  } catch {
    return;
  }
  for (const id of entries) await run('runc', ['--root', runcRoot, 'delete', '--force', id], { reject: false, timeoutMs: 15_000 });
  if (runcRoot.startsWith('/run/containerd/runc/')) await rmdir(runcRoot).catch(() => undefined);
  else await rm(runcRoot, { recursive: true, force: true });
}
