/**
 * Networking (issue 5, item 1), end to end in network namespaces this test creates (never the host's):
 *  1. plan + apply + undo in a pod-like namespace, without a VM: br-eth0 holds 169.254.1.254/32 and not the pod IP,
 *     eth0 and tap-eth0 are its members, eth0 carries the dummy MAC; undo restores eth0 exactly.
 *  2. a bare QEMU boot of the real guest kernel + initramfs on that tap, with the guest networking code
 *     (src/runcvm/guest/net.c) and the QEMU net argv (hypervisor/qemu/net.ts): traffic both ways on the pod IP, and
 *     the peer sees the pod's real MAC.
 *  3. the whole runtime: `ctr run --runc-binary bin/runcvm-runtime --with-ns network:<pod netns>` (and plain runc as
 *     the oracle), `--network none` (a namespace with only lo), and cleanup.
 * Runs twice (vitest projects vm-cold and vm-template, issue 17 item 2): the runtime's cases with every VM booted cold,
 * then with every VM restored from a template made ahead (prebuildTemplates), which VmStarts proves from each
 * container's debug log. 1 and 2 run no runcvm container: they are declared in the vm-cold run only.
 */
import { mkdir, mkdtemp, readFile, rename, rm, writeFile, copyFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { applyNetwork, readNetworkFacts, type IpCommand } from '../../src/runcvm/network/apply.js';
import { guestNetCmdline, IDENTITY_CIDR, planNetwork, type IpLink, type NetworkPlan } from '../../src/runcvm/network/plan.js';
import { netArgs } from '../../src/runcvm/hypervisor/qemu/net.js';
import { bootGuest, ensureGuestAssets, ext4FromDir, guestSources, miniRootfs } from './guest-helpers.js';
import { leftoverNamespaces, neighbourMac, NS_PREFIX, PEER_IP, podNetwork, POD_CIDR, POD_IP, type PodNetwork } from './network-helpers.js';
import { startProcess, type ServiceProcess } from '../harness/proc.js';
import { CloserStack } from '../../src/core/fsx/index.js';
import type { StartedContainerd } from '../harness/services/containerd.js';
import { startRegistry } from '../harness/services/registry.js';
import { startDockerd, type StartedDockerd } from '../harness/services/dockerd.js';
import { pushBusyboxImage } from '../harness/images.js';
import { leftovers, prebuildTemplates, requireDockerd, runtimeFixture, startRuncvmSuite, VM_MODE, VmStarts, type RuntimeFixture } from './runcvm/setup.js';

const ipIn = (ns: string): IpCommand => ({ file: 'ip', prefix: ['-n', ns] });

function bridged(plan: NetworkPlan) {
  if (plan.mode !== 'bridged') throw new Error(`expected a bridged plan: ${plan.mode === 'none' ? plan.reason : ''}`);
  return plan;
}

/** What `ip -json` says about the contract inside the pod namespace. */
async function containerSide(net: PodNetwork) {
  const links = await net.ipJson<IpLink>(net.pod, ['addr', 'show']);
  const by = (n: string) => links.find((l) => l.ifname === n);
  const addrs = (n: string) => (by(n)?.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`);
  return {
    names: links.map((l) => l.ifname).sort(),
    bridgeAddrs: addrs('br-eth0'),
    eth0Addrs: addrs('eth0'),
    eth0Mac: by('eth0')?.address,
    eth0Master: by('eth0')?.master,
    tapMaster: by('tap-eth0')?.master,
  };
}

if (VM_MODE === 'cold') describe('network plan/apply/undo in a pod namespace (no VM)', () => {
  let net: PodNetwork;
  beforeAll(async () => {
    net = await podNetwork({ mtu: 1450, ipv6: true });
  });
  afterAll(async () => {
    await net?.destroy();
  });

  it('bridges eth0 with the identity IP only, swaps MACs, and undo restores eth0', async () => {
    const facts = await readNetworkFacts(ipIn(net.pod), '/nonexistent');
    const before = await containerSide(net);
    const routesBefore = (await net.ip(net.pod, ['route', 'show'])).stdout;
    const plan = bridged(planNetwork(facts, { mode: 'auto' }));
    const undo = await applyNetwork(plan, ipIn(net.pod));

    const after = await containerSide(net);
    expect(after.bridgeAddrs).toEqual([IDENTITY_CIDR]);
    expect(after.bridgeAddrs).not.toContain(POD_CIDR);
    expect(after.eth0Addrs).toEqual([]);
    expect(after.eth0Master).toBe('br-eth0');
    expect(after.tapMaster).toBe('br-eth0');
    expect(after.eth0Mac).toBe(plan.interfaces[0]!.dummyMac);
    expect(after.eth0Mac).not.toBe(net.podMac);
    const mtus = await net.ipJson<IpLink>(net.pod, ['link', 'show']);
    expect(Object.fromEntries(mtus.filter((l) => l.ifname !== 'lo').map((l) => [l.ifname, l.mtu]))).toEqual({ 'br-eth0': 1450, 'tap-eth0': 1450, eth0: 1450 });
    expect((await net.ip(net.pod, ['route', 'show', `${POD_IP}/32`])).stdout).toContain('dev br-eth0');

    expect(await undo.undo()).toEqual([]);
    const restored = await containerSide(net);
    expect(restored.names).toEqual(before.names);
    expect(restored.eth0Mac).toBe(net.podMac);
    expect(restored.eth0Addrs).toEqual(before.eth0Addrs);
    expect((await net.ip(net.pod, ['route', 'show'])).stdout).toBe(routesBefore);
  });

  it('a failing step undoes the earlier ones and says which step failed', async () => {
    const plan = bridged(planNetwork(await readNetworkFacts(ipIn(net.pod), '/nonexistent'), { mode: 'auto' }));
    const broken = { ...plan, steps: plan.steps.map((s) => (s.args.join(' ') === 'link set eth0 master br-eth0' ? { ...s, args: ['link', 'set', 'eth0', 'master', 'no-such-bridge'] } : s)) };
    await expect(applyNetwork(broken, ipIn(net.pod))).rejects.toThrow(/cannot hand the container network to the VM: eth0 joins br-eth0: .*the namespace was restored/);
    const after = await containerSide(net);
    expect(after.names).toEqual(['eth0', 'lo']);
    expect(after.eth0Mac).toBe(net.podMac);
    expect(after.eth0Addrs).toContain(POD_CIDR);
  });

  it('refuses a namespace a live VM holds (its tap has carrier); one nobody holds is recovered', async () => {
    const plan = bridged(planNetwork(await readNetworkFacts(ipIn(net.pod), '/nonexistent'), { mode: 'auto' }));
    const undo = await applyNetwork(plan, ipIn(net.pod));
    const dir = await mkdtemp(join(tmpdir(), 'rcvmnet-live-'));
    // a QEMU holding tap-eth0 open (no guest needed): the tap gets carrier, as under a running VM
    const holder = await startProcess('tap holder', 'ip', ['netns', 'exec', net.pod, 'qemu-system-x86_64', '-M', 'none', '-nodefaults', '-display', 'none', '-netdev', 'tap,id=n0,ifname=tap-eth0,script=no,downscript=no'], { logPath: join(dir, 'qemu.log') });
    try {
      let live = await readNetworkFacts(ipIn(net.pod), '/nonexistent');
      for (let i = 0; i < 100 && !live.addrs.find((l) => l.ifname === 'tap-eth0')?.flags?.includes('LOWER_UP'); i++) {
        holder.assertAlive();
        await new Promise((res) => setTimeout(res, 100));
        live = await readNetworkFacts(ipIn(net.pod), '/nonexistent');
      }
      expect(() => planNetwork(live, { mode: 'auto' })).toThrow(/already handed to a running VM \(eth0 is a member of br-eth0, and tap-eth0 is in use\)/);
      await holder.stop(2000);
      const stale = bridged(planNetwork(await readNetworkFacts(ipIn(net.pod), '/nonexistent'), { mode: 'auto' }));
      expect(stale.steps[0]!.why).toBe('recover eth0: remove the stale tap-eth0');
    } finally {
      await holder.stop(2000);
      await rm(dir, { recursive: true, force: true });
      expect(await undo.undo()).toEqual([]);
    }
  });
});

if (VM_MODE === 'cold') describe('guest networking on a bare QEMU boot (real kernel + initramfs, net.c, QEMU net argv)', () => {
  let net: PodNetwork;
  let dir: string;
  let httpd: ServiceProcess | undefined;
  beforeAll(async () => {
    await ensureGuestAssets();
    net = await podNetwork({ ipv6: true, mtu: 1400 });
    dir = await mkdtemp(join(tmpdir(), 'rcvmnet-qemu-'));
  });
  afterAll(async () => {
    await httpd?.stop(2000);
    await net?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the VM owns the pod IP and real MAC: traffic both ways with the peer', async () => {
    // the guest: the test driver (runs net.c as runcvm-init does) + busybox
    const driver = join(dir, 'driver');
    await run('gcc', ['-static', '-Os', '-I', projectPath('src/runcvm/guest'), '-o', driver, projectPath('test/fixtures/network/guest-driver.c'), ...guestSources('net')]);
    const root = join(dir, 'root');
    await miniRootfs(root, {
      files: { 'www/index.html': 'hello-from-vm\n' },
      initScript: [
        'busybox ip -o -4 addr show dev eth0',
        'busybox ip route',
        `busybox ping -c 2 -W 5 ${PEER_IP} >/dev/null && echo PING-OK`,
        'busybox ip -o -6 addr show dev eth0 scope global',
        'echo "MTU $(busybox cat /sys/class/net/eth0/mtu)"',
        'busybox ping6 -c 2 -W 5 fd00:88::1 >/dev/null && echo PING6-OK',
        'busybox httpd -p 8080 -h /www && echo LISTENING',
        `for i in $(busybox seq 1 120); do busybox timeout 3 busybox wget -q -O /tmp/done http://${PEER_IP}:9090/done 2>/dev/null && break; busybox sleep 0.5; done`,
        'echo "PEER-SAYS $(busybox cat /tmp/done)"',
        'busybox poweroff -f',
        '',
      ].join('\n'),
    });
    await copyFile(driver, join(root, 'driver'));
    await chmod(join(root, 'driver'), 0o755);
    await mkdir(join(root, '.runcvm/guest/bin'), { recursive: true });
    await copyFile('/bin/busybox', join(root, '.runcvm/guest/bin/busybox'));
    const img = await ext4FromDir(root, join(dir, 'root.ext4'));

    // the container side, as the launcher does it
    const plan = bridged(planNetwork(await readNetworkFacts(ipIn(net.pod), '/nonexistent'), { mode: 'auto' }));
    const undo = await applyNetwork(plan, ipIn(net.pod));
    try {
      const www = join(dir, 'peer-www');
      await mkdir(www);
      httpd = await startProcess('peer httpd', 'ip', ['netns', 'exec', net.peer, 'busybox', 'httpd', '-f', '-p', `${PEER_IP}:9090`, '-h', www], { logPath: join(dir, 'httpd.log') });

      let fromVm = '';
      let served: Promise<void> | undefined;
      const r = await bootGuest({
        disks: [img],
        append: ['runcvm.init=/driver', 'runcvm.modules=none', guestNetCmdline(plan.guest)],
        qemuArgs: netArgs(plan.nics),
        prefix: ['ip', 'netns', 'exec', net.pod],
        timeoutMs: 90_000,
        onLine: (line) => {
          if (line.includes('LISTENING'))
            served = (async () => {
              const got = await net.inPeer(['busybox', 'timeout', '20', 'busybox', 'wget', '-q', '-O', '-', `http://${POD_IP}:8080/`], { reject: false });
              fromVm = got.stdout;
              await publishDone(www); // atomically: a wget between create and write would read an empty file
            })();
        },
      });
      await served;
      const text = r.lines.join('\n');
      expect(text).toContain('[RunCVM-FC-Init] [INFO]   Waiting for eth* interface...');
      expect(text).toContain('NETSETUP rc=0');
      expect(text).toMatch(/eth0\s+inet 10\.88\.0\.2\/24/);
      expect(text).toContain('169.254.1.254 dev eth0');
      expect(text).toContain(`default via ${PEER_IP} dev eth0`);
      expect(text).toContain('PING-OK'); // VM → peer
      expect(text).toMatch(/eth0\s+inet6 fd00:88::2\/64/);
      expect(text).toContain('PING6-OK');
      expect(text).toContain('MTU 1400');
      expect(fromVm).toBe('hello-from-vm\n'); // peer → VM on the pod IP
      expect(text).toContain('PEER-SAYS bye-from-peer');
      // the peer learnt the pod IP at the pod's REAL MAC (the VM's), not the container side's dummy
      expect(await neighbourMac(net, net.peer, POD_IP)).toBe(net.podMac);
      expect(plan.interfaces[0]!.dummyMac).not.toBe(net.podMac);
    } finally {
      await httpd?.stop(2000);
      httpd = undefined;
      expect(await undo.undo()).toEqual([]);
    }
  });
});


/** The peer's answer appears whole or not at all (busybox httpd serves a file being written as empty). */
async function publishDone(www: string): Promise<void> {
  await writeFile(join(www, '.done.tmp'), 'bye-from-peer\n');
  await rename(join(www, '.done.tmp'), join(www, 'done'));
}
/** The workload: prints its addresses and routes, pings the peer, serves HTTP on the pod IP, fetches from the peer. */
const WORKLOAD = [
  'ip -o -4 addr show dev eth0 | sed "s/ brd .*//"',
  'ip route',
  'ls /sys/class/net | tr "\\n" " "; echo',
  `ping -c 2 -W 5 ${PEER_IP} >/dev/null && echo PING-OK`,
  'mkdir -p /tmp/www && echo hello-from-container > /tmp/www/index.html && httpd -p 8080 -h /tmp/www && echo LISTENING',
  `for i in $(seq 1 120); do timeout 3 wget -q -O /tmp/done http://${PEER_IP}:9090/done 2>/dev/null && break; sleep 0.5; done`,
  'echo "PEER-SAYS $(cat /tmp/done)"',
].join('\n');

describe('runcvm under containerd: the pod network goes to the VM (runc as the oracle)', () => {
  const closers = new CloserStack();
  let fx: RuntimeFixture;
  let cd: StartedContainerd;
  let busybox: string;
  let seq = 0;
  const starts = new VmStarts(() => fx);
  afterEach(() => starts.verify());
  beforeAll(async () => {
    ({ fx, cd, image: busybox } = await startRuncvmSuite(closers));
    // a pod namespace holds one eth (1 NIC); `--network none` a new namespace with only lo (0)
    await prebuildTemplates(fx, [{ nics: 1 }, { nics: 0 }]);
  });
  afterAll(async () => {
    await closers.close();
  });

  /** Runs WORKLOAD in the pod namespace; while it serves, inspects the namespace and talks to it from the peer. */
  async function podRun(rt: 'runc' | 'runcvm') {
    await using net = await podNetwork();
    const dir = await mkdtemp(join(tmpdir(), 'rcvmnet-ctr-'));
    const www = join(dir, 'www');
    await mkdir(www);
    const httpd = await startProcess('peer httpd', 'ip', ['netns', 'exec', net.peer, 'busybox', 'httpd', '-f', '-p', `${PEER_IP}:9090`, '-h', www], { logPath: join(dir, 'httpd.log') });
    try {
      let during: Awaited<ReturnType<typeof containerSide>> | undefined;
      let fromContainer = '';
      let peerSeesMac: string | undefined;
      let neigh = '';
      let served: Promise<void> | undefined;
      const flags = [...(rt === 'runcvm' ? ['--runc-binary', fx.wrapper] : []), '--with-ns', `network:${net.nsPath}`];
      const r = await cd.ctr(['run', '--rm', ...flags, busybox, `net${++seq}-${rt}`, 'sh', '-c', WORKLOAD], {
        reject: false,
        timeoutMs: 120_000,
        onStdoutLine: (line) => {
          if (!line.includes('LISTENING')) return;
          served = (async () => {
            during = await containerSide(net);
            const got = await net.inPeer(['busybox', 'timeout', '20', 'busybox', 'wget', '-q', '-O', '-', `http://${POD_IP}:8080/`], { reject: false });
            fromContainer = got.stdout;
            // while the workload runs (the undo at exit takes eth0 down, which flushes the peer's neighbours)
            peerSeesMac = await neighbourMac(net, net.peer, POD_IP);
            neigh = (await net.ip(net.peer, ['neigh', 'show'], { reject: false })).stdout;
            await publishDone(www); // atomically: a wget between create and write would read an empty file
          })();
        },
      });
      await served;
      const after = await containerSide(net);
      return { rt, r, during, fromContainer, peerSeesMac, neigh, after, podMac: net.podMac };
    } finally {
      await httpd.stop(2000);
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('traffic both ways on the pod IP; the peer sees the real MAC; br-eth0 holds only the identity IP; undone at exit', async () => {
    const vm = await podRun('runcvm');
    const oracle = await podRun('runc');
    for (const o of [oracle, vm]) {
      expect(o.r.exitCode, `${o.rt}: ${o.r.stderr}`).toBe(0);
      expect(o.r.stdout).toContain('PING-OK'); // container → peer
      expect(o.fromContainer).toBe('hello-from-container\n'); // peer → container, on the pod IP
      expect(o.r.stdout).toContain('PEER-SAYS bye-from-peer');
      expect(o.r.stdout).toMatch(/eth0\s+inet 10\.88\.0\.2\/24/);
      expect(o.r.stdout).toContain(`default via ${PEER_IP} dev eth0`);
      expect(o.peerSeesMac, `${o.rt}: peer neighbours: ${o.neigh}; stdout: ${o.r.stdout}`).toBe(o.podMac);
    }
    // the workload sees the same interfaces as under runc
    expect(vm.r.stdout).toContain('eth0 lo');
    expect(oracle.r.stdout).toContain('eth0 lo');
    // inside the VM: the identity route; the container side while it ran: the guide's §5 checks
    expect(vm.r.stdout).toContain('169.254.1.254 dev eth0');
    expect(vm.during).toMatchObject({ bridgeAddrs: [IDENTITY_CIDR], eth0Addrs: [], eth0Master: 'br-eth0', tapMaster: 'br-eth0' });
    expect(vm.during!.bridgeAddrs).not.toContain(POD_CIDR);
    expect(vm.during!.eth0Mac).not.toBe(vm.podMac);
    // and once the container ended, the namespace is as CNI left it (a restarted container finds it intact)
    expect(vm.after).toEqual({ names: ['eth0', 'lo'], bridgeAddrs: [], eth0Addrs: [POD_CIDR], eth0Mac: vm.podMac, eth0Master: undefined, tapMaster: undefined });
  });

  it('after a launcher is SIGKILLed (no undo), the next container in the same pod restores eth0 and runs', async () => {
    await using net = await podNetwork();
    const id = `kill${++seq}`;
    await cd.ctr(['run', '-d', '--runc-binary', fx.wrapper, '--with-ns', `network:${net.nsPath}`, busybox, id, 'sh', '-c', 'httpd -f -p 8080 -h /tmp']);
    try {
      // wait until the VM owns the pod IP: eth0 bridged (the pod IP left the namespace) and the pod IP answers
      for (let i = 0; i < 240; i++) {
        const bridgedNow = (await containerSide(net)).eth0Master === 'br-eth0';
        if (bridgedNow && (await net.inPeer(['busybox', 'ping', '-c', '1', '-W', '1', POD_IP], { reject: false })).exitCode === 0) break;
        await new Promise((res) => setTimeout(res, 250));
      }
      expect((await containerSide(net)).eth0Master).toBe('br-eth0');
      await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
      for (let i = 0; i < 100; i++) {
        const ls = await cd.ctr(['task', 'ls'], { reject: false });
        if (/STOPPED/.test(ls.stdout.split('\n').find((l) => l.startsWith(id)) ?? 'STOPPED')) break;
        await new Promise((res) => setTimeout(res, 200));
      }
    } finally {
      await cd.ctr(['task', 'delete', '-f', id], { reject: false });
      await cd.ctr(['container', 'delete', id], { reject: false });
    }
    const left = await containerSide(net);
    expect(left.eth0Master).toBe('br-eth0'); // nobody restored it
    expect(left.eth0Addrs).toEqual([]);

    const r = await cd.ctr(['run', '--rm', '--runc-binary', fx.wrapper, '--with-ns', `network:${net.nsPath}`, '--env', 'RUNCVM_LOG_LEVEL=INFO', busybox, `again${++seq}`, 'sh', '-c', `ping -c 1 -W 5 ${PEER_IP} >/dev/null && echo PING-OK`], { reject: false, timeoutMs: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('PING-OK');
    expect(r.stderr).toContain('eth0 was left bridged by a launcher that did not finish (killed?); restored it from its runcvm record first');
    expect(r.stderr).toContain('[RunCVM-FC-Init] [INFO]   Waiting for eth* interface...');
    expect(await containerSide(net)).toEqual({ names: ['eth0', 'lo'], bridgeAddrs: [], eth0Addrs: [POD_CIDR], eth0Mac: net.podMac, eth0Master: undefined, tapMaster: undefined });
  });

  it('--network none (a namespace with only lo): the VM has only lo, as runc', async () => {
    for (const rt of ['runc', 'runcvm'] as const) {
      const flags = rt === 'runcvm' ? ['--runc-binary', fx.wrapper] : [];
      const r = await cd.ctr(['run', '--rm', ...flags, busybox, `none${++seq}-${rt}`, 'sh', '-c', 'ls /sys/class/net; ip -o addr | sed "s/ valid.*//"'], { reject: false, timeoutMs: 90_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout.split('\n')[0]).toBe('lo');
      expect(r.stdout).toContain('inet 127.0.0.1/8');
      expect(r.stdout).not.toContain('eth0');
    }
  });

  it('leaves no QEMU, state, namespaces or taps behind', async () => {
    const left = await leftovers(fx);
    // only this file's VMs (other suites may be running theirs): their cgroup path holds our containerd namespace
    const ours = [];
    for (const line of left.qemu) {
      const pid = line.trim().split(/\s+/)[0] ?? '';
      const cg = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
      if (cg.includes(`/${cd.namespace}/`)) ours.push(line);
    }
    expect(ours).toEqual([]);
    expect(left.state).toEqual([]);
    expect(await leftoverNamespaces()).toEqual([]);
    const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
    expect(links).not.toMatch(/tap-eth|br-eth/);
    // not vacuous: every VM of this describe was seen and checked (afterEach): traffic, SIGKILL (2), --network none
    expect(starts.all.length, JSON.stringify(starts.all)).toBe(4);
  });
});

// dockerd here runs in a network namespace of the test's own, with iptables and an image loaded from a tarball: its
// set-up is not startRuncvmDockerSuite's
describe('Docker mode: a user-defined bridge network and a published port (dockerd in a namespace the test owns)', () => {
  const closers = new CloserStack();
  let fx: RuntimeFixture;
  let d: StartedDockerd;
  let hostNs: string;
  beforeAll(async () => {
    await requireDockerd();
    fx = await runtimeFixture(closers);
    // dockerd's "host" is a namespace of ours: its bridge, iptables rules and docker-proxy live there, not on the host
    hostNs = `${NS_PREFIX}${randomBytes(3).toString('hex')}-docker`;
    await run('ip', ['netns', 'add', hostNs]);
    closers.push('docker host namespace', async () => {
      await run('ip', ['netns', 'del', hostNs], { reject: false });
    });
    await run('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
    const reg = await startRegistry();
    const ref = await pushBusyboxImage(reg);
    const tar = join(fx.dir, 'busybox.tar');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `docker-archive:${tar}:rcvmnet/busybox:latest`]);
    await reg.stop();
    // a container on the user-defined network has one NIC (Docker joins it after create: create counts it ahead)
    await prebuildTemplates(fx, [{ nics: 1 }]);
    d = await startDockerd({ netns: hostNs, runtimes: { runcvm: { path: fx.wrapper } }, extraConfig: { iptables: true, 'ip-forward': true, 'userland-proxy': true } });
    closers.push('dockerd', () => d.stop());
    await d.docker(['load', '-i', tar]);
    await d.docker(['network', 'create', '--subnet', '172.30.0.0/24', 'rcvmnet']);
  });
  afterAll(async () => {
    await closers.close();
  });

  const inHost = (argv: string[]) => run('ip', ['netns', 'exec', hostNs, ...argv], { reject: false });
  const starts = new VmStarts(() => fx);
  afterEach(() => starts.verify());

  it.each([
    ['runc', 18080],
    ['runcvm', 18081],
  ] as const)('%s: the container answers on its IP and on the published port, reaches the gateway, and shows its real MAC', async (rt, port) => {
    const name = `rcvmnet-${rt}`;
    const script = 'ip -o -4 addr show dev eth0 | sed "s/ brd .*//"; echo "MAC $(cat /sys/class/net/eth0/address)"; ip route; ping -c1 -W5 172.30.0.1 >/dev/null && echo PING-OK; mkdir -p /w; echo hello-$HOSTNAME > /w/index.html; exec httpd -f -p 8080 -h /w';
    await d.docker(['run', '-d', '--runtime', rt, '--network', 'rcvmnet', '-p', `${port}:8080`, '--name', name, 'rcvmnet/busybox', 'sh', '-c', script]);
    try {
      const inspect = JSON.parse((await d.docker(['inspect', name])).stdout) as { Config: { Hostname: string }; NetworkSettings: { Networks: Record<string, { IPAddress: string; MacAddress: string }> } }[];
      const { IPAddress: ip, MacAddress: mac } = inspect[0]!.NetworkSettings.Networks['rcvmnet']!;
      const hostname = inspect[0]!.Config.Hostname;
      // published port (docker-proxy in dockerd's namespace → container IP:8080), waited for while the VM boots
      let published = '';
      for (let i = 0; i < 240 && !published; i++) {
        const r = await inHost(['busybox', 'timeout', '3', 'busybox', 'wget', '-q', '-O', '-', `http://127.0.0.1:${port}/`]);
        if (r.exitCode === 0) published = r.stdout;
        else await new Promise((res) => setTimeout(res, 500));
      }
      expect(published).toBe(`hello-${hostname}\n`);
      const direct = await inHost(['busybox', 'timeout', '10', 'busybox', 'wget', '-q', '-O', '-', `http://${ip}:8080/`]);
      expect(direct.stdout).toBe(`hello-${hostname}\n`);
      const neigh = JSON.parse((await inHost(['ip', '-json', 'neigh', 'show', ip])).stdout || '[]') as { dst: string; lladdr?: string }[];
      expect(neigh.find((n) => n.dst === ip)?.lladdr).toBe(mac);
      const logs = await d.docker(['logs', name]);
      expect(logs.stdout).toMatch(new RegExp(`eth0\\s+inet ${ip.replace(/\./g, '\\.')}/24`));
      expect(logs.stdout).toContain('default via 172.30.0.1 dev eth0');
      expect(logs.stdout).toContain('PING-OK');
      // the MAC Docker gave the container is the workload's own (a restored VM sets it from RESUME, not the template's)
      expect(logs.stdout).toContain(`MAC ${mac}\n`);
      if (rt === 'runcvm') expect(logs.stdout).toContain('169.254.1.254 dev eth0');
    } finally {
      await d.docker(['rm', '-f', name], { reject: false });
    }
  });

  // Docker's embedded DNS (nameserver 127.0.0.11 on a user-defined network): under runc dockerd answers it inside
  // the container's namespace; under runcvm the guest relays 127.0.0.11:53 to the launcher (169.254.1.254:53), which
  // relays to the real 127.0.0.11:53 in that namespace. The workload must see the same resolv.conf and get the same
  // answers, over UDP (nslookup, ping) and TCP (a raw query through nc).
  it('embedded DNS: the same resolv.conf and the same answers for a container name and alias under runc and runcvm', async () => {
    const target = 'rcvmdns-target';
    const alias = 'rcvmdns-alias';
    await d.docker(['run', '-d', '--network', 'rcvmnet', '--network-alias', alias, '--name', target, 'rcvmnet/busybox', 'sleep', '3600']);
    try {
      const inspect = JSON.parse((await d.docker(['inspect', target])).stdout) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[];
      const targetIp = inspect[0]!.NetworkSettings.Networks['rcvmnet']!.IPAddress;
      expect(targetIp).toMatch(/^172\.30\.0\.\d+$/);
      const script = [
        'cat /etc/resolv.conf',
        'echo =====',
        `nslookup ${target} 2>&1`,
        'echo =====',
        `nslookup ${alias} 2>&1`,
        'echo =====',
        `ping -c1 -W5 ${target} 2>&1`,
        'echo =====',
        // DNS over TCP (busybox nslookup speaks UDP only); `timeout`: the server may keep an idle connection open
        `printf '${octalEscapes(tcpDnsQuery(target))}' | timeout 10 nc 127.0.0.11 53 | od -An -tu1 -v`,
        'echo =====',
        'ip route',
      ].join('\n');
      const runs: Record<string, { resolvConf: string; nslookup: string | undefined; alias: string | undefined; ping: string | undefined; tcp: string | undefined; routes: string; text: string }> = {};
      for (const rt of ['runc', 'runcvm'] as const) {
        const r = await d.docker(['run', '--rm', '--runtime', rt, '--network', 'rcvmnet', 'rcvmnet/busybox', 'sh', '-c', script], { reject: false, timeoutMs: 180_000 });
        expect(r.exitCode, `${rt}: ${r.stderr}\n${r.stdout}`).toBe(0);
        const [resolvConf = '', ns1 = '', ns2 = '', ping = '', tcp = '', routes = ''] = r.stdout.split('=====\n');
        runs[rt] = { resolvConf, nslookup: nslookupAddress(ns1, target), alias: nslookupAddress(ns2, alias), ping: /^PING \S+ \((\d+\.\d+\.\d+\.\d+)\)/m.exec(ping)?.[1], tcp: tcpDnsAnswer(tcp), routes, text: r.stdout };
      }
      const oracle = runs['runc']!;
      const vm = runs['runcvm']!;
      expect(oracle.resolvConf).toMatch(/^nameserver 127\.0\.0\.11$/m);
      expect(oracle, oracle.text).toMatchObject({ nslookup: targetIp, alias: targetIp, ping: targetIp, tcp: targetIp });
      // the VM's workload sees exactly what runc's sees
      expect(vm.resolvConf).toBe(oracle.resolvConf);
      expect(vm, vm.text).toMatchObject({ nslookup: targetIp, alias: targetIp, ping: targetIp, tcp: targetIp });
      expect(vm.text).toContain('1 packets received');
      // and it did run in a VM (the identity route exists only there)
      expect(vm.routes).toContain('169.254.1.254 dev eth0');
      expect(oracle.routes).not.toContain('169.254.1.254');
    } finally {
      await d.docker(['rm', '-f', target], { reject: false });
    }
  });

  it("embedded DNS: the launcher's relay on the identity IP answers nobody but its VM (another container that routes there gets nothing)", async () => {
    const vmName = 'rcvmdns-vm';
    await d.docker(['run', '-d', '--runtime', 'runcvm', '--network', 'rcvmnet', '--name', vmName, 'rcvmnet/busybox', 'sleep', '3600']);
    try {
      // the VM resolves through its relays (waited for while it boots): from here on the launcher's relay listens
      let own = '';
      for (let i = 0; i < 240 && !/Address: 172\.30\.0\.\d+/.test(own); i++) {
        const r = await d.docker(['exec', vmName, 'nslookup', vmName], { reject: false, timeoutMs: 60_000 });
        own = r.stdout;
        if (r.exitCode !== 0) await new Promise((res) => setTimeout(res, 500));
      }
      expect(own).toMatch(/Address: 172\.30\.0\.\d+/);
      // a runc container on the same network routes 169.254.1.254 to the bridge, where only the runcvm container's
      // br-eth0 holds it, and asks there over UDP and TCP: no answer (the relay serves only the VM's addresses, and
      // the container side routes nothing but the VM's IP back)
      const probe = [
        'ip route add 169.254.1.254 dev eth0',
        `timeout 15 nslookup ${vmName} 169.254.1.254 >/dev/null 2>&1; echo NSLOOKUP=$?`,
        `printf '${octalEscapes(tcpDnsQuery(vmName))}' | timeout 10 nc -w 5 169.254.1.254 53 | wc -c | sed 's/^ */TCPBYTES=/'`,
        'ip neigh show 169.254.1.254',
      ].join('\n');
      const r = await d.docker(['run', '--rm', '--cap-add', 'NET_ADMIN', '--network', 'rcvmnet', 'rcvmnet/busybox', 'sh', '-c', probe], { reject: false, timeoutMs: 120_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^NSLOOKUP=[1-9]\d*$/m);
      expect(r.stdout).toMatch(/^TCPBYTES=0$/m);
      // and it did reach the runcvm container's side (the address resolved at the link layer): not a vacuous miss
      expect(r.stdout).toMatch(/169\.254\.1\.254 dev eth0 lladdr [0-9a-f:]{17}/);
    } finally {
      await d.docker(['rm', '-f', vmName], { reject: false });
    }
  });

  it('every VM of the cases above was seen and checked (afterEach): the published port, embedded DNS, the relay', () => {
    expect(starts.all.map((s) => s.restored), JSON.stringify(starts.all)).toEqual([fx.mode === 'template', fx.mode === 'template', fx.mode === 'template']);
  });
});

/** A DNS query (A, IN, recursion desired) for name, with the 2-byte length prefix DNS over TCP uses (RFC 1035 4.2.2). */
function tcpDnsQuery(name: string): Buffer {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, 'ascii')]);
  const msg = Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

function octalEscapes(buf: Buffer): string {
  return [...buf].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
}

/** The A record's address in a TCP DNS answer printed by `od -An -tu1` (one answer, no other records: its last 4 bytes). */
function tcpDnsAnswer(odText: string): string | undefined {
  const bytes = odText.trim().split(/\s+/).filter(Boolean).map(Number);
  if (bytes.length < 2 + 12 + 16) return undefined;
  const msg = bytes.slice(2, 2 + ((bytes[0]! << 8) | bytes[1]!));
  const id = (msg[0]! << 8) | msg[1]!;
  const answers = (msg[6]! << 8) | msg[7]!;
  if (id !== 0x1234 || answers !== 1 || (msg[3]! & 0x0f) !== 0) return undefined;
  return msg.slice(-4).join('.');
}

/** The IPv4 address busybox nslookup printed for name. */
function nslookupAddress(text: string, name: string): string | undefined {
  const after = text.slice(text.indexOf(`Name:\t${name}`));
  return /^Address: (\d+\.\d+\.\d+\.\d+)$/m.exec(after)?.[1];
}

describe('cleanup', () => {
  it('leaves no test namespaces behind', async () => {
    expect(await leftoverNamespaces()).toEqual([]);
    expect(existsSync('/var/run/netns')).toBe(true);
  });
});
