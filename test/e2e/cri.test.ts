/**
 * The Kubernetes path, driven the way the kubelet drives it: a CRI (runtime.v1) gRPC client talks to containerd
 * 1.6's CRI plugin, whose runtime entry `runcvm` is `runtime_type = "io.containerd.runc.v2"` with
 * `options.BinaryName` = bin/runcvm-runtime (through a wrapper that points it at private state folders).
 *
 * Network modes: the single-container pods use host network (NamespaceMode NODE, no CNI needed); the
 * multi-container pods use a pod network made by a tiny test CNI plugin (test/harness/cni.ts: veth to a bridge in a
 * namespace the test owns). The host's root network namespace is never modified, and the test asserts that runcvm
 * does not modify it either (a hostNetwork pod must never hand the node's eth0 to a VM).
 *
 * Proves:
 * - RunPodSandbox with handler `runcvm`: the pause container stays under plain runc (the `/pause` process itself is
 *   the sandbox's task, no QEMU anywhere in its process tree), the handler/BinaryName are what containerd used;
 * - CreateContainer + StartContainer of a busybox app container runs in a VM: `uname -r` in its CRI log is the
 *   guest kernel release (var/assets/kernel/release, not the host's) and a qemu-system process is a descendant of
 *   the container's task;
 * - container logs: the file at the LogPath containerd writes is in CRI format, stdout and stderr tagged apart;
 * - ExecSync: stdout, exit codes 0 and 3, and it runs in the VM (`uname -r` is the guest's);
 * - StopContainer is graceful (the workload's TERM trap runs, the VM powers off) and the exit code is reported;
 * - StopPodSandbox + RemovePodSandbox leave nothing behind (no QEMU, no shim, no mounts, no runcvm state);
 * - the same pod under handler `runc` is the oracle: same log lines (but `uname -r`) and the same exit code;
 * - multi-container pods (issue 5 item 5): two app containers of one runcvm pod are two VMs with two loopbacks, so
 *   B cannot reach A on localhost (the exact `nc` message is asserted and documented in docs/kubernetes.md), while
 *   the runc oracle pod can; in a pod network the first VM owns the pod IP and a second VM container exits 125
 *   (NETWORK_IN_USE); a RUNCVM_DISABLE=1 sidecar reaches the VM at the pod IP and the VM reaches it at
 *   169.254.1.254; in host network both VMs start, each with `lo` only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { startContainerd, type StartedContainerd } from '../harness/services/containerd.js';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { pushBusyboxImage } from '../harness/images.js';
import { keepEvidence } from '../harness/evidence.js';
import { mountsUnder, processesMatching } from '../harness/proc.js';
import { installTestCni, type TestCni } from '../harness/cni.js';
import { waitFor } from '../harness/wait.js';
import {
  connectCri,
  containerConfig,
  criLogText,
  criRegistryConfig,
  parseCriLog,
  podConfig,
  pushPauseImage,
  type ContainerOptions,
  type CriClient,
  type CriLogLine,
  type PodSandboxConfig,
} from '../harness/cri.js';
import { leftovers, runtimeFixture, type RuntimeFixture } from './runcvm/setup.js';

const closers = new CloserStack();
let reg: StartedRegistry;
let cd: StartedContainerd;
let fx: RuntimeFixture;
let cri: CriClient;
let busybox: string;
let pause: string;
let logRoot: string;
let guestRelease: string;
let hostRelease: string;
let seq = 0;
let net: TestCni;

type Handler = 'runc' | 'runcvm';

keepEvidence(() => [cd?.logPath ? { logPath: cd.logPath, name: 'containerd.log' } : undefined]);

// ---- helpers

interface Proc {
  pid: number;
  ppid: number;
  args: string;
}

async function processTable(): Promise<Proc[]> {
  const r = await run('ps', ['-eo', 'pid=,ppid=,args='], { reject: false });
  return r.stdout.split('\n').map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] ?? '' }));
}

/** `pid` and all its descendants. */
async function processTree(pid: number): Promise<Proc[]> {
  const all = await processTable();
  const out: Proc[] = [];
  const want = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if ((want.has(p.pid) || want.has(p.ppid)) && !out.includes(p)) {
        out.push(p);
        want.add(p.pid);
        grew = true;
      }
    }
  }
  return out;
}

/** QEMU processes of this test's containerd (their root is a container rootfs under its temp dir). */
async function myQemus(): Promise<string[]> {
  const out: string[] = [];
  for (const p of await processesMatching('qemu-system')) {
    const root = await readlink(`/proc/${p.pid}/root`).catch(() => '');
    if (root.startsWith(`${cd.dir}/`)) out.push(`${p.pid} ${root}`);
  }
  return out;
}

/** The network namespace path of a sandbox (from containerd's verbose info), '' for host network. */
async function sandboxNetns(podId: string): Promise<string> {
  const info = await cri.podSandboxInfo(podId);
  const spec = info.runtimeSpec as { linux?: { namespaces?: { type: string; path?: string }[] } } | undefined;
  return spec?.linux?.namespaces?.find((n) => n.type === 'network')?.path ?? '';
}

const podNetnsSeen: string[] = [];

interface Pod {
  id: string;
  config: PodSandboxConfig;
  logDir: string;
  handler: Handler;
  hostNetwork: boolean;
}

async function runPod(handler: Handler, name: string, hostNetwork = true): Promise<Pod> {
  const logDir = join(logRoot, `${name}-${++seq}`);
  await mkdir(logDir, { recursive: true });
  const config = podConfig({ name: `${name}-${seq}`, logDirectory: logDir, hostNetwork });
  const id = await cri.runPodSandbox(config, handler);
  return { id, config, logDir, handler, hostNetwork };
}

async function startApp(pod: Pod, o: ContainerOptions): Promise<string> {
  const cfg = containerConfig({ hostNetwork: pod.hostNetwork, ...o });
  await mkdir(join(pod.logDir, o.name), { recursive: true }); // the kubelet creates the container's log folder
  const id = await cri.createContainer(pod.id, cfg, pod.config);
  await cri.startContainer(id);
  return id;
}

async function readLog(pod: Pod, container: string): Promise<CriLogLine[]> {
  const text = await readFile(join(pod.logDir, container, '0.log'), 'utf8').catch(() => '');
  return parseCriLog(text);
}

async function waitForLog(pod: Pod, container: string, marker: string, timeoutMs = 90_000): Promise<CriLogLine[]> {
  try {
    return await waitFor(`"${marker}" in ${container}'s CRI log (${pod.handler})`, async () => {
      const lines = await readLog(pod, container);
      return lines.some((l) => l.content.includes(marker)) ? lines : false;
    }, { timeoutMs, intervalMs: 200 });
  } catch (err) {
    const lines = await readLog(pod, container).catch(() => []);
    const debug = await readdir(fx.logDir).catch(() => []);
    const tails = await Promise.all(debug.map(async (n) => `${n}:\n${(await readFile(join(fx.logDir, n), 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')}`));
    throw new Error(`${(err as Error).message}\nlog so far:\n${lines.map((l) => `${l.stream}: ${l.content}`).join('\n')}\n${tails.join('\n')}`, { cause: err });
  }
}

async function removePod(pod: Pod): Promise<void> {
  await cri.stopPodSandbox(pod.id);
  await cri.removePodSandbox(pod.id);
}

const APP_SCRIPT = [
  "trap 'echo got-TERM; exit 42' TERM",
  'echo out-1',
  'echo err-1 >&2',
  'uname -r',
  'echo out-2',
  'echo err-2 >&2',
  'echo ready',
  'while :; do sleep 1; done',
].join('\n');

/** The node's network as `ip` shows it (links with MAC and master, addresses): must not change under a VM. */
async function hostNetworkSnapshot(): Promise<string> {
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => l.replace(/^\d+: /, '').replace(/\s+\\.*?link\//, ' link/'));
  const addrs = (await run('ip', ['-o', 'addr', 'show'])).stdout.split('\n').map((l) => l.replace(/^\d+: /, '').replace(/\s+valid_lft.*$/, ''));
  // only the names runcvm would touch (others' tests may add unrelated interfaces meanwhile)
  return [...links, ...addrs].filter((l) => /^(eth0|br-eth0|tap-eth0)[:@\s]/.test(l)).sort().join('\n');
}

interface AppRun {
  stdout: string[];
  stderr: string[];
  exitCode: number;
  reason: string;
  execHi: { stdout: string; stderr: string; exitCode: number };
  exec3: number;
  execUname: string;
  vmInterfaces: string;
  /** files in RUNCVM_LOG_DIR while the app container runs, and the ids they should be named after */
  debugLogs: string[];
  appId: string;
  podId: string;
  hostNetBefore: string;
  hostNetDuring: string;
  sandboxTree: Proc[];
  sandboxArgs: string[];
  appTree: Proc[];
  runtimeOptions: unknown;
  sandboxRuntimeOptions: unknown;
  sandboxContainerType: string | undefined;
}

/** The kubelet's flow for one pod with one app container; returns what a test compares. */
async function appPodFlow(handler: Handler): Promise<AppRun> {
  const t0 = performance.now();
  const step = (what: string) => console.info(`[cri ${handler}] +${Math.round(performance.now() - t0)}ms ${what}`);
  const hostNetBefore = await hostNetworkSnapshot();
  const pod = await runPod(handler, `app-${handler}`);
  step('RunPodSandbox');
  try {
    const status = await cri.podSandboxStatus(pod.id);
    expect(status.status?.state).toBe('SANDBOX_READY');
    expect(status.status?.runtime_handler).toBe(handler);
    const podInfo = await cri.podSandboxInfo(pod.id);
    const sandboxPid = podInfo.pid ?? 0;
    expect(sandboxPid).toBeGreaterThan(0);
    const sandboxTree = await processTree(sandboxPid);
    // `runc start` returns once runc init is released, possibly before its execve of /pause: until then cmdline is empty
    const sandboxArgs = await waitFor('the sandbox process to exec its command', async () => {
      const cmdline = await readFile(`/proc/${sandboxPid}/cmdline`, 'utf8');
      return cmdline !== '' && cmdline.replace(/\0$/, '').split('\0');
    }, { timeoutMs: 10_000 });

    const id = await startApp(pod, { name: 'app', image: busybox, command: ['sh', '-c', APP_SCRIPT] });
    step('CreateContainer+StartContainer');
    await waitForLog(pod, 'app', 'ready');
    step('"ready" in the log');
    const running = await cri.containerStatus(id);
    expect(running.status?.state).toBe('CONTAINER_RUNNING');
    expect(running.status?.log_path).toBe(join(pod.logDir, 'app', '0.log'));
    const appInfo = await cri.containerInfo(id);
    const appTree = await processTree(appInfo.pid ?? 0);

    const execHi = await cri.execSync(id, ['echo', 'hi'], 60);
    const exec3 = (await cri.execSync(id, ['sh', '-c', 'exit 3'], 60)).exitCode;
    const execUname = (await cri.execSync(id, ['uname', '-r'], 60)).stdout.trim();
    const vmInterfaces = (await cri.execSync(id, ['ls', '/sys/class/net'], 60)).stdout.split(/\s+/).filter(Boolean).join(' ');
    const hostNetDuring = await hostNetworkSnapshot();
    const debugLogs = handler === 'runcvm' ? (await readdir(fx.logDir)).sort() : [];

    step('ExecSync x3');
    await cri.stopContainer(id, 30);
    step('StopContainer');
    const stopped = await cri.containerStatus(id);
    expect(stopped.status?.state).toBe('CONTAINER_EXITED');
    const lines = await readLog(pod, 'app');
    await cri.removeContainer(id);
    return {
      stdout: criLogText(lines, 'stdout'),
      stderr: criLogText(lines, 'stderr'),
      exitCode: stopped.status?.exit_code ?? -1,
      reason: stopped.status?.reason ?? '',
      execHi,
      exec3,
      execUname,
      vmInterfaces,
      debugLogs,
      appId: id,
      podId: pod.id,
      hostNetBefore,
      hostNetDuring,
      sandboxTree,
      sandboxArgs,
      appTree,
      runtimeOptions: appInfo.runtimeOptions,
      sandboxRuntimeOptions: podInfo.runtimeOptions,
      sandboxContainerType: podInfo.runtimeSpec?.annotations?.['io.kubernetes.cri.container-type'],
    };
  } finally {
    await removePod(pod);
  }
}

// ---- suite

describe('Kubernetes path: CRI gRPC client → containerd 1.6 CRI plugin → runcvm', () => {
  beforeAll(async () => {
    fx = await runtimeFixture(closers);
    guestRelease = (await readFile(projectPath('var', 'assets', 'kernel', 'release'), 'utf8')).trim();
    hostRelease = (await run('uname', ['-r'])).stdout.trim();
    reg = await startRegistry();
    closers.push('registry', () => reg.stop());
    busybox = await pushBusyboxImage(reg);
    pause = await pushPauseImage(reg);
    const work = await tempDir('cri-e2e', closers);
    logRoot = join(work, 'pods');
    const registryToml = await criRegistryConfig(reg, join(work, 'certs.d'));
    cd = await startContainerd({
      cri: true,
      runtimes: { runcvm: { binaryName: fx.wrapper } },
      sandboxImage: pause,
      extraConfig: registryToml,
    });
    closers.push('containerd', () => cd.stop());
    cri = await connectCri(cd.socket);
    closers.push('cri client', () => cri.close());
    net = await installTestCni(cd);
    closers.push('test CNI network', () => net.close());
    await waitFor('CRI NetworkReady (test CNI config loaded)', async () =>
      (await cri.status()).some((c) => c.type === 'NetworkReady' && c.status) || false, { timeoutMs: 20_000, intervalMs: 100 });
    // the kubelet pulls the app image through the CRI ImageService; containerd pulls the sandbox image itself
    await cri.pullImage(busybox);
    await cri.pullImage(pause);
  }, 300_000);

  afterAll(async () => {
    await closers.close();
  }, 120_000);

  it('Version, PullImage and ImageStatus answer like containerd 1.6', async () => {
    const v = await cri.version();
    expect(v.runtime_name).toBe('containerd');
    expect(v.runtime_api_version).toBe('v1');
    const img = await cri.imageStatus(busybox);
    expect(img?.repo_tags).toContain(busybox);
    expect(await cri.imageStatus(`${reg.host}/no-such-image:latest`)).toBeNull();
  });

  it('an unknown handler fails RunPodSandbox with containerd\'s message (guide section 9)', async () => {
    const logDir = join(logRoot, 'unknown-handler');
    await mkdir(logDir, { recursive: true });
    const err = await cri.runPodSandbox(podConfig({ name: 'unknown-handler', logDirectory: logDir, hostNetwork: true }), 'no-such-handler')
      .then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toContain('no runtime for "no-such-handler" is configured');
  });

  let runcRun: AppRun | undefined;
  it('oracle: the kubelet flow with handler runc', async () => {
    runcRun = await appPodFlow('runc');
    expect(runcRun.stdout).toEqual(['out-1', hostRelease, 'out-2', 'ready', 'got-TERM']);
    expect(runcRun.stderr).toEqual(['err-1', 'err-2']);
    expect(runcRun.exitCode).toBe(42);
    expect(runcRun.execHi).toEqual({ stdout: 'hi\n', stderr: '', exitCode: 0 });
    expect(runcRun.exec3).toBe(3);
  }, 120_000);

  it('handler runcvm: pause under plain runc, the app container in a VM, logs, exec, graceful stop', async () => {
    const oracle = runcRun ?? (await appPodFlow('runc')); // when run alone (-t)
    const r = await appPodFlow('runcvm');
    // the sandbox went through runcvm-runtime (BinaryName), which recognised the CRI annotation and passed it to
    // runc: the pause binary itself is the task, nothing below it, no QEMU
    expect(JSON.stringify(r.sandboxRuntimeOptions)).toContain(fx.wrapper);
    expect(r.sandboxContainerType).toBe('sandbox');
    expect(r.sandboxArgs).toEqual(['/pause']);
    expect(r.sandboxTree.filter((p) => p.args.includes('qemu-system'))).toEqual([]);
    // the app container: a QEMU process below the container's task, and the guest kernel in its log
    expect(r.appTree.some((p) => p.args.includes('qemu-system'))).toBe(true);
    expect(guestRelease).not.toBe(hostRelease);
    expect(r.stdout).toEqual(['out-1', guestRelease, 'out-2', 'ready', 'got-TERM']);
    // same as the runc oracle except the kernel line
    expect(r.stdout.filter((l) => l !== guestRelease)).toEqual(oracle.stdout.filter((l) => l !== hostRelease));
    expect(r.stderr).toEqual(oracle.stderr);
    expect(r.exitCode).toBe(oracle.exitCode);
    expect(r.execHi).toEqual({ stdout: 'hi\n', stderr: '', exitCode: 0 });
    expect(r.exec3).toBe(3);
    expect(JSON.stringify(r.runtimeOptions)).toContain(fx.wrapper);
    // ExecSync runs in the VM (the exec agent), not in the launcher container
    expect(r.execUname).toBe(guestRelease);
    // host network: the node's interfaces are never handed to the VM (no br-eth0/tap-eth0 on the node, eth0 keeps
    // its MAC and addresses while the VM runs); the VM has loopback only
    expect(r.hostNetDuring).toBe(r.hostNetBefore);
    expect(r.vmInterfaces).toBe('lo');
    // guide section 8: one debug log per VM container, named after its id; the pause container (plain runc) has none
    expect(r.debugLogs).toEqual([`runcvm-${r.appId}.debug`]);
    expect(r.debugLogs.some((n) => n.includes(r.podId))).toBe(false);
  }, 180_000);

  describe('multi-container pods (pod network through the test CNI)', () => {
    const PORT = 8080;
    const SIDECAR_PORT = 8081;
    const GET = (host: string, port: number) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} ${port} 2>&1 | tail -n 1`;
    const serve = (name: string, port: number) => [
      "trap 'exit 0' TERM",
      `mkdir -p /tmp/www && echo from-${name} >/tmp/www/index.html`,
      `httpd -p ${port} -h /tmp/www`,
      `echo "${name}-self: $(${GET('127.0.0.1', port)})"`,
      `echo ${name}-listening`,
    ];
    const SERVER = [...serve('A', PORT), 'while :; do sleep 1; done'].join('\n');
    /** tries A on localhost, "localhost" and the pod IP; optionally serves on SIDECAR_PORT first */
    const client = (who: string, alsoServe: boolean) => [
      ...(alsoServe ? serve(who, SIDECAR_PORT) : ["trap 'exit 0' TERM"]),
      `echo "${who}-kernel: $(uname -r)"`,
      'for t in 127.0.0.1 localhost "$POD_IP"; do',
      `  echo "${who}->$t: $(${GET('"$t"', PORT)})"`,
      'done',
      `echo ${who}-done`,
      'while :; do sleep 1; done',
    ].join('\n');

    interface MultiPod {
      pod: Pod;
      podIp: string;
      ids: Map<string, string>;
    }

    async function startMulti(handler: Handler): Promise<MultiPod> {
      const pod = await runPod(handler, `multi-${handler}`, false);
      const podIp = (await cri.podSandboxStatus(pod.id)).status?.network?.ip ?? '';
      podNetnsSeen.push(await sandboxNetns(pod.id));
      expect(podIp.startsWith(`${net.subnetPrefix}.`), `pod IP ${podIp}`).toBe(true);
      const ids = new Map<string, string>();
      ids.set('a', await startApp(pod, { name: 'a', image: busybox, command: ['sh', '-c', SERVER] }));
      await waitForLog(pod, 'a', 'A-listening', 150_000);
      return { pod, podIp, ids };
    }

    async function stopMulti(m: MultiPod): Promise<void> {
      for (const id of m.ids.values()) {
        await cri.stopContainer(id, 10);
        await cri.removeContainer(id);
      }
      await removePod(m.pod);
    }

    const stdoutOf = async (pod: Pod, name: string) => criLogText(await readLog(pod, name), 'stdout');

    it('oracle (runc): two containers of one pod reach each other on localhost', async () => {
      const m = await startMulti('runc');
      try {
        m.ids.set('b', await startApp(m.pod, { name: 'b', image: busybox, command: ['sh', '-c', client('B', false)], env: { POD_IP: m.podIp } }));
        await waitForLog(m.pod, 'b', 'B-done');
        expect(await stdoutOf(m.pod, 'b')).toEqual([
          `B-kernel: ${hostRelease}`, 'B->127.0.0.1: from-A', 'B->localhost: from-A', `B->${m.podIp}: from-A`, 'B-done',
        ]);
      } finally {
        await stopMulti(m);
      }
    }, 120_000);

    it('runcvm: the VM owns the pod IP, a second VM container cannot start, a RUNCVM_DISABLE=1 sidecar reaches the VM by pod IP only', async () => {
      const m = await startMulti('runcvm');
      try {
        expect(await stdoutOf(m.pod, 'a')).toEqual(['A-self: from-A', 'A-listening']);
        // the node side reaches the VM at the pod IP: the VM, not the container, carries it
        const fromNode = await net.peer(['busybox', 'sh', '-c', GET(m.podIp, PORT).replace(/\bnc\b/, 'busybox nc')], { reject: false });
        expect(fromNode.stdout.trim()).toBe('from-A');

        // a second runcvm (VM) container in the same pod: the pod network is already handed to A's VM
        const b = await startApp(m.pod, { name: 'b', image: busybox, command: ['sh', '-c', client('B', false)], env: { POD_IP: m.podIp } });
        m.ids.set('b', b);
        const bStatus = await waitFor('container b to exit', async () => {
          const st = (await cri.containerStatus(b)).status;
          return st?.state === 'CONTAINER_EXITED' ? st : false;
        }, { timeoutMs: 120_000, intervalMs: 250 });
        expect(bStatus.exit_code).toBe(125);
        const bErr = criLogText(await readLog(m.pod, 'b'), 'stderr');
        expect(bErr[0]).toBe('runcvm: error: cannot hand the container network to the VM: the network namespace is already handed to a ' +
          'running VM (eth0 is a member of br-eth0, and tap-eth0 is in use)');
        expect(bErr.join('\n')).toContain('run one runcvm container per network namespace');

        // a sidecar under plain runc (RUNCVM_DISABLE=1): localhost is the pod namespace's, not the VM's
        const c = await startApp(m.pod, {
          name: 'c', image: busybox, command: ['sh', '-c', client('C', true)], env: { POD_IP: m.podIp, RUNCVM_DISABLE: '1' },
        });
        m.ids.set('c', c);
        await waitForLog(m.pod, 'c', 'C-done');
        expect(await stdoutOf(m.pod, 'c')).toEqual([
          'C-self: from-C',
          'C-listening',
          `C-kernel: ${hostRelease}`,
          "C->127.0.0.1: nc: can't connect to remote host (127.0.0.1): Connection refused",
          "C->localhost: nc: can't connect to remote host (127.0.0.1): Connection refused",
          `C->${m.podIp}: from-A`,
          'C-done',
        ]);
        const cTree = await processTree((await cri.containerInfo(c)).pid ?? 0);
        expect(cTree.filter((p) => p.args.includes('qemu-system'))).toEqual([]);
        // and the VM reaches the sidecar at the identity address 169.254.1.254, not on its own localhost
        const vmToSidecar = await cri.execSync(m.ids.get('a') ?? '', ['sh', '-c', GET('169.254.1.254', SIDECAR_PORT)], 60);
        expect(vmToSidecar.stdout.trim()).toBe('from-C');
        const vmToLocal = await cri.execSync(m.ids.get('a') ?? '', ['sh', '-c', GET('127.0.0.1', SIDECAR_PORT)], 60);
        expect(vmToLocal.stdout.trim()).toBe("nc: can't connect to remote host (127.0.0.1): Connection refused");
      } finally {
        await stopMulti(m);
      }
    }, 400_000);


    it('runcvm, host network: two VM containers start, each with its own loopback only', async () => {
      // host network: runcvm never rebuilds the node's interfaces, so each VM has lo only (and port 8080 is the
      // VM's, never the host's)
      const pod = await runPod('runcvm', 'multi-host');
      const ids: string[] = [];
      try {
        ids.push(await startApp(pod, { name: 'a', image: busybox, command: ['sh', '-c', SERVER] }));
        await waitForLog(pod, 'a', 'A-listening', 150_000);
        ids.push(await startApp(pod, { name: 'b', image: busybox, command: ['sh', '-c', client('B', false)], env: { POD_IP: '127.0.0.2' } }));
        await waitForLog(pod, 'b', 'B-done', 150_000);
        expect(await stdoutOf(pod, 'a')).toEqual(['A-self: from-A', 'A-listening']);
        expect(await stdoutOf(pod, 'b')).toEqual([
          `B-kernel: ${guestRelease}`,
          "B->127.0.0.1: nc: can't connect to remote host (127.0.0.1): Connection refused",
          "B->localhost: nc: can't connect to remote host (127.0.0.1): Connection refused",
          "B->127.0.0.2: nc: can't connect to remote host (127.0.0.2): Connection refused",
          'B-done',
        ]);
        const ifaces = await cri.execSync(ids[1] ?? '', ['ls', '/sys/class/net'], 60);
        expect(ifaces.stdout.split(/\s+/).filter(Boolean)).toEqual(['lo']);
      } finally {
        for (const id of ids) {
          await cri.stopContainer(id, 10);
          await cri.removeContainer(id);
        }
        await removePod(pod);
      }
    }, 400_000);
  });

  it('nothing is left behind: no QEMU, no shim, no mounts, no runcvm state', async () => {
    expect(await cri.listContainers()).toEqual([]);
    await waitFor('shims of this containerd to exit', async () => (await processesMatching(`-address ${cd.socket}`)).length === 0 || false,
      { timeoutMs: 20_000, intervalMs: 200 });
    expect(await myQemus()).toEqual([]);
    const left = await leftovers(fx);
    expect(left.state).toEqual([]);
    expect(left.configCopies).toEqual([]);
    const mounts = [...(await mountsUnder(cd.root)), ...(await mountsUnder(cd.state))];
    expect(mounts).toEqual([]);
    expect(await readdir(fx.logDir)).toEqual([]);
    // the pods' network namespaces (created by containerd for CNI) are gone
    expect(podNetnsSeen.length).toBeGreaterThan(0);
    for (const ns of podNetnsSeen) {
      expect(ns).toMatch(/^\/var\/run\/netns\/cni-/);
      expect(await stat(ns).then(() => 'present', () => 'gone'), ns).toBe('gone');
    }
  }, 60_000);
});
