/**
 * A real dockerd (Debian docker.io 20.10) for tests: every path under a temp dir (data-root, exec-root, pidfile,
 * unix socket, CLI config), its own managed containerd under exec-root, no bridge, no iptables, no ip_forward: it
 * never creates docker0 or touches the host firewall. With `bridge: none` containers get only a loopback
 * interface (`--network host` also works); there is no outbound network from containers.
 *
 *   if (await dockerdAvailable()) {
 *     await using d = await startDockerd({ insecureRegistries: [reg.host], runtimes: { runcvm: { path: '/abs/wrapper' } } });
 *     await d.docker(['run', '--rm', `${reg.host}/busybox`, 'echo', 'hi']);
 *   }
 *
 * docker() uses the Debian CLI (/usr/bin/docker, same version as the daemon) with DOCKER_CONFIG=<dir>/cli-config
 * unless opts.env overrides it (use registry.writeDockerConfig(dir) for credentials).
 */
import { access, mkdir, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { CloserStack, tempDir } from '../../../src/core/fsx/index.js';
import { run, type RunOptions, type RunResult } from '../../../src/core/exec/index.js';
import { waitFor } from '../wait.js';
import { killMatching, startProcess, unmountAll } from '../proc.js';

export interface DockerdOptions {
  runtimes?: Record<string, { path: string; runtimeArgs?: string[] }>;
  insecureRegistries?: string[];
  /** extra daemon.json keys (merged last) */
  extraConfig?: Record<string, unknown>;
  /**
   * run dockerd inside this network namespace (a name under /var/run/netns that the test created): its bridges,
   * iptables rules and published ports then live there, never in the host's namespace
   */
  netns?: string;
}

export interface StartedDockerd extends AsyncDisposable {
  host: string;
  dir: string;
  logPath: string;
  dataRoot: string;
  execRoot: string;
  docker(args: string[], opts?: RunOptions): Promise<RunResult>;
  stop(): Promise<void>;
}

const DOCKERD = '/usr/sbin/dockerd';
const DOCKER_CLI_CANDIDATES = ['/usr/bin/docker', '/usr/local/bin/docker'];

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function dockerCli(): Promise<string | undefined> {
  for (const c of DOCKER_CLI_CANDIDATES) if (await executable(c)) return c;
  return undefined;
}

/** dockerd and a docker CLI are installed, and we are root (dockerd needs it). */
export async function dockerdAvailable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  if (!(await executable(DOCKERD)) || !(await dockerCli())) return false;
  try {
    const r = await run(DOCKERD, ['--version'], { reject: false, timeoutMs: 10_000 });
    return r.exitCode === 0;
  } catch {
    return false;
  }
}

export async function startDockerd(opts: DockerdOptions = {}): Promise<StartedDockerd> {
  const cli = await dockerCli();
  if (!cli) throw new Error('no docker CLI found (tried /usr/bin/docker, /usr/local/bin/docker); install docker.io');
  const closers = new CloserStack();
  try {
    const dir = await tempDir('harness-dockerd', closers);
    const dataRoot = join(dir, 'data');
    const execRoot = join(dir, 'exec');
    const sock = join(dir, 'docker.sock');
    const host = `unix://${sock}`;
    const logPath = join(dir, 'dockerd.log');
    const configPath = join(dir, 'daemon.json');
    const cliConfig = join(dir, 'cli-config');
    await mkdir(dataRoot, { recursive: true, mode: 0o710 });
    await mkdir(execRoot, { recursive: true, mode: 0o700 });
    await mkdir(cliConfig, { recursive: true, mode: 0o700 });
    await writeFile(join(cliConfig, 'config.json'), '{}\n', { mode: 0o600 });

    const daemon: Record<string, unknown> = {
      'data-root': dataRoot,
      'exec-root': execRoot,
      pidfile: join(dir, 'docker.pid'),
      // otherwise dockerd 20.10 writes its libtrust key to /etc/docker/key.json
      'deprecated-key-path': join(dir, 'key.json'),
      hosts: [host],
      bridge: 'none',
      iptables: false,
      ip6tables: false,
      'ip-forward': false,
      'ip-masq': false,
      'userland-proxy': false,
      'insecure-registries': opts.insecureRegistries ?? [],
      'log-level': 'info',
      features: { buildkit: true },
      ...(opts.runtimes ? { runtimes: opts.runtimes } : {}),
      ...opts.extraConfig,
    };
    await writeFile(configPath, `${JSON.stringify(daemon, null, 2)}\n`);

    const dockerdArgv = [DOCKERD, '--config-file', configPath];
    // nsenter --net only (`ip netns exec` also remounts /sys, which hides the cgroup mounts dockerd needs)
    const [file, ...args] = opts.netns ? ['nsenter', `--net=/var/run/netns/${opts.netns}`, '--', ...dockerdArgv] : dockerdArgv;
    const proc = await startProcess('dockerd', file!, args, { logPath, cwd: dir });
    const dockerRaw = (args: string[], o: RunOptions = {}) =>
      run(cli, ['-H', host, ...args], { ...o, env: { DOCKER_CONFIG: cliConfig, ...o.env } });

    // LIFO: remove containers → stop dockerd (which stops its containerd) → kill strays → unmount → rm dir
    closers.push('unmount leftovers', () => unmountAll(dir));
    closers.push('kill stray containerd/shims', () => killMatching(execRoot));
    closers.push('stop dockerd', () => proc.stop(20_000));
    closers.push('remove containers', async () => {
      if (!proc.alive()) return;
      const ps = await dockerRaw(['ps', '-aq'], { reject: false, timeoutMs: 15_000 });
      const ids = ps.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
      if (ids.length) await dockerRaw(['rm', '-f', ...ids], { reject: false, timeoutMs: 30_000 });
    });

    await waitFor(`dockerd socket ${sock} and \`docker version\` to answer`, async () => {
      proc.assertAlive();
      await stat(sock);
      await dockerRaw(['version'], { timeoutMs: 5000 });
      return true;
    }, { timeoutMs: 60_000, intervalMs: 100 });

    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= closers.close().then((errors) => {
        if (errors.length) throw new AggregateError(errors, `stopping dockerd ${host}: ${errors.map((e) => e.message).join('; ')}`);
      });
      return stopped;
    };
    return {
      host,
      dir,
      logPath,
      dataRoot,
      execRoot,
      docker: dockerRaw,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await closers.close();
    throw err;
  }
}

/** For tests that need dockerd: fail with the cause and the fix instead of skipping (setup installs docker.io). */
export async function requireDockerd(): Promise<void> {
  if (!(await dockerdAvailable())) {
    throw new Error('dockerd is not usable here (it needs root and the docker.io package, which scripts/setup.sh installs). ' +
      'fix: run `bash scripts/setup.sh` as root');
  }
}
