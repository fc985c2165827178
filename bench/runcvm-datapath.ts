/**
 * runcvm's data paths against the hypervisor's own limit (issue 19): exec, network and volumes measured in one run
 * for runc, a bare VM and runcvm, every case interleaved (runc, bare VM, runcvm, runc, …).
 *
 *   npx vite-node bench/runcvm-datapath.ts        (as root; BENCH_REPS=5, BENCH_WARMUPS=1; ~5 min on a busy 2-core box)
 *   BENCH_CASES=disk npx vite-node bench/runcvm-datapath.ts   (only some groups: exec, network, data, disk; comma-separated)
 *
 * The three targets, each in its own pod network namespace (eth0 = a veth to a peer namespace, pod 10.88.0.2/24,
 * peer 10.88.0.1) with a host folder shared at /data:
 *   runc     `ctr run --with-ns network:<pod> --mount bind <folder>:/data` busybox;
 *   bare VM  bench/lib/bare-vm.ts: QEMU microvm started by hand with the same kernel, initramfs and machine flags,
 *            a tap bridged with the pod's eth0, Debian's virtiofsd with its defaults, an ext4 root disk, busybox sh
 *            as init (nothing of runcvm's in the path);
 *   runcvm   the same `ctr run` as runc with `--runc-binary bin/runcvm-runtime`.
 * Cases (the VM figures are under QEMU TCG here: read them as ratios to the bare VM, the floor on this machine):
 *   exec     guest round trip (runcvm: OPEN true → EXIT on the launcher's exec socket; bare VM: `/bin/true` over
 *            its control port), `ctr task exec true` (runc vs runcvm) and the runtime verb alone;
 *   network  ping RTT; TCP upload (peer `dd | nc` → `nc -l -e wc -c`); TCP download with 64 KiB writes
 *            (`nc -l -e dd bs=64k` in the target: dd writes to the socket itself); the same download through
 *            busybox nc's copy loop (1 KiB reads and writes, the old bench: see docs/network.md); HTTP download
 *            (busybox httpd, sendfile);
 *   volumes  64 MiB sequential write (conv=fsync) and read through /data (runc bind, virtiofs in both VMs) and on
 *            the target's own disk (/root: runc's overlay, the bare VM's ext4 root, runcvm's overlay on its upper
 *            disk; read after drop_caches), timed inside the target (busybox time, 10 ms resolution).
 * Every case records the load average (this machine is shared) and the ratios runcvm / bare VM and runcvm / runc,
 * taken per interleaved round. Wall times move with the load; each network and volume case has a companion case with
 * the host CPU time the VM spent on it (QEMU, plus virtiofsd for /data), which moves far less. Results:
 * bench/results/runcvm-datapath.json and SVGs.
 */
import { createConnection } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunResult } from '../src/core/exec/index.js';
import { CloserStack, tempDir } from '../src/core/fsx/index.js';
import { encodeOpen } from '../src/runcvm/agent/exec.js';
import { encodeFrame, FrameDecoder, FrameType } from '../src/runcvm/agent/codec.js';
import { startContainerd, type StartedContainerd } from '../test/harness/services/containerd.js';
import { startRegistry } from '../test/harness/services/registry.js';
import { pushBusyboxImage } from '../test/harness/images.js';
import { runtimeFixture } from '../test/e2e/runcvm/setup.js';
import { podNetwork, POD_IP, PEER_IP, type PodNetwork } from '../test/e2e/network-helpers.js';
import { waitFor } from '../test/harness/wait.js';
import { startBareVm, oneLine, type BareVm } from './lib/bare-vm.js';
import { derivedCase, loadMark, measureCase, repsAtMost, REPS, WARMUPS, type CaseResult } from './lib/measure.js';
import { writeResults } from './lib/report.js';

const BENCH = 'runcvm-datapath';
/** stream size: 32 MiB keeps the host CPU figures (10 ms ticks) well above their resolution */
const MIB = Number(process.env.BENCH_MIB ?? 32);
/** busybox nc's copy loop costs seconds per 8 MiB in the VMs: kept at 8 */
const LOOP_MIB = 8;
const VOL_MIB = Number(process.env.BENCH_VOL_MIB ?? 64);
const VOL_REPS = repsAtMost(5);
const SLOW_REPS = repsAtMost(3);
const VM_PAIRS = [['runcvm', 'bare VM'], ['runcvm', 'runc']] as const;
/** BENCH_CASES: the case groups to run (exec, network, data = /data over virtiofs, disk = the own disk); all by default */
const GROUPS = ['exec', 'network', 'data', 'disk'] as const;
const wanted = new Set((process.env.BENCH_CASES ?? GROUPS.join(',')).split(',').map((g) => g.trim()).filter(Boolean));
for (const g of wanted) if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`BENCH_CASES: unknown group "${g}" (groups: ${GROUPS.join(', ')})`);
const only = (group: (typeof GROUPS)[number]): boolean => wanted.has(group);

type Name = 'runc' | 'bare VM' | 'runcvm';

interface Target {
  name: Name;
  net: PodNetwork;
  /** the host folder the target sees at /data */
  share: string;
  /** a shell script in the target; resolves with its stdout (throws on a non-zero status) */
  sh(script: string): Promise<string>;
  /** the peer's never-ending stdin for the download client (a fifo) */
  fifo: string;
  /** the host processes that run the VM (QEMU; virtiofsd) for CPU accounting; none for runc */
  vmPids?: () => { qemu: number[]; virtiofsd: number[] };
}

/** A process and its descendants (from /proc/PID/task/TID/children). */
function processTree(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
  return [pid, ...kids.flatMap(processTree)];
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** utime + stime of a process (all its threads), in ms. */
function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks: USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

/** The servers every target runs (same busybox applets in all three). */
const SERVER = [
  'while true; do nc -l -p 9000 -e wc -c; done &',
  `while true; do nc -l -p 9001 -e dd if=/dev/zero bs=64k count=${MIB * 16}; done 2>/dev/null &`,
  `while true; do dd if=/dev/zero bs=64k count=${LOOP_MIB * 16} 2>/dev/null | nc -l -p 9003; done &`,
  `mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/blob bs=64k count=${MIB * 16} 2>/dev/null && httpd -p 9002 -h /tmp/www`,
].join('\n');

const closers = new CloserStack();
const cases: CaseResult[] = [];

async function ctrTarget(cd: StartedContainerd, name: 'runc' | 'runcvm', wrapper: string, image: string, work: string): Promise<Target> {
  const net = await podNetwork();
  closers.push(`${name} namespaces`, () => net.destroy());
  const share = join(work, `${name.replace(' ', '-')}-share`);
  await mkdir(share);
  const id = `datapath-${name}`;
  const runtime = name === 'runcvm' ? ['--runc-binary', wrapper] : [];
  // CAP_SYS_ADMIN (both containers alike): the disk read case drops the VM guest's page cache through a procfs of
  // its own, /proc/sys being read-only in a container (the VM's kernel is the container's: the host's cache is untouched)
  await cd.ctr(['run', '-d', ...runtime, '--cap-add', 'CAP_SYS_ADMIN', '--with-ns', `network:${net.nsPath}`, '--mount', `type=bind,src=${share},dst=/data,options=rbind:rw`, image, id, 'sh', '-c', `${SERVER}\nexec sleep 1000000`], { timeoutMs: 120_000 });
  closers.push(`${name} container`, async () => {
    await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id], { reject: false });
    await waitFor(`${id} to stop`, async () => (await cd.ctr(['task', 'delete', id], { reject: false })).exitCode === 0, { timeoutMs: 60_000, intervalMs: 300 }).catch(() => undefined);
    await cd.ctr(['container', 'delete', id], { reject: false });
  });
  let n = 0;
  let pids: { qemu: number[]; virtiofsd: number[] } | undefined;
  const vmPids = async () => {
    const line = (await cd.ctr(['task', 'ls'])).stdout.split('\n').find((l) => l.startsWith(`${id} `));
    const tree = processTree(Number(line?.trim().split(/\s+/)[1]));
    return { qemu: tree.filter((p) => commandOf(p).includes('qemu-system')), virtiofsd: tree.filter((p) => commandOf(p).includes('virtiofsd')) };
  };
  if (name === 'runcvm') await waitFor('the runcvm QEMU process', async () => ((pids = await vmPids()).qemu.length > 0), { timeoutMs: 120_000, intervalMs: 300 });
  return {
    name,
    net,
    share,
    fifo: await fifo(work, name),
    ...(pids ? { vmPids: () => pids! } : {}),
    sh: async (script) => {
      const r = await cd.ctr(['task', 'exec', '--exec-id', `e${++n}`, id, 'sh', '-c', script], { reject: false, timeoutMs: 900_000 });
      if (r.exitCode !== 0) throw new Error(`${name}: script failed (${r.exitCode}): ${r.stderr.slice(-1500)}\n${script}`);
      return r.stdout;
    },
  };
}

async function bareTarget(work: string): Promise<{ target: Target; vm: BareVm }> {
  const net = await podNetwork();
  closers.push('bare VM namespaces', () => net.destroy());
  const dir = join(work, 'bare');
  await mkdir(dir);
  const share = join(work, 'bare-share');
  await mkdir(share);
  const vm = await startBareVm({ dir, pod: net.pod, address: { cidr: `${POD_IP}/24`, gateway: PEER_IP }, share, boot: `(${SERVER}) </dev/null >/dev/null 2>&1` });
  closers.push('bare VM', () => vm.stop());
  const target: Target = {
    name: 'bare VM',
    net,
    share,
    fifo: await fifo(work, 'bare'),
    vmPids: () => ({ qemu: [vm.pid], virtiofsd: vm.virtiofsdPid ? processTree(vm.virtiofsdPid) : [] }),
    sh: async (script) => {
      const r = await vm.sh(oneLine(script), 900_000);
      if (r.status !== 0) throw new Error(`bare VM: script failed (${r.status}): ${r.output.slice(-1500)}\n${script}`);
      return r.output;
    },
  };
  return { target, vm };
}

/**
 * The bare VM's processes into a cpu cgroup next to runcvm's container (cgroup v1 here, v2 elsewhere). Left in the root group,
 * each QEMU thread of the bare VM competes with every other task of the machine on its own, while runcvm's QEMU
 * shares its container group's one weight: on a loaded machine the bare VM got more CPU per wall second and the
 * wall-time ratios leaned against runcvm (the host-CPU ratios did not).
 */
async function sameCpuGroup(runcvm: Target, bare: Target): Promise<void> {
  const lines = readFileSync(`/proc/${runcvm.vmPids!().qemu[0]}/cgroup`, 'utf8').split('\n');
  // cgroup v1's cpu hierarchy (this machine), else the unified v2 one
  const v1 = lines.find((l) => /^\d+:[^:]*\bcpu\b[^:]*:/.test(l));
  const line = v1 ?? lines.find((l) => l.startsWith('0::'));
  const base = v1 ? `/sys/fs/cgroup/${v1.split(':')[1]}` : '/sys/fs/cgroup';
  const own = line?.split(':')[2];
  if (!own || own === '/') throw new Error(`runcvm's QEMU is in no cpu cgroup of its own (${line ?? 'no cpu line'}): cannot place the bare VM alike`);
  const dir = join(base, own.replace(/\/[^/]+$/, ''), 'datapath-bare-vm');
  await mkdir(dir);
  const p = bare.vmPids!();
  const pids = [...p.qemu, ...p.virtiofsd];
  closers.push('bare VM cpu cgroup', async () => {
    for (const pid of pids) await writeFile(join(base, 'cgroup.procs'), String(pid)).catch(() => undefined);
    await rmdir(dir);
  });
  for (const pid of pids) await writeFile(join(dir, 'cgroup.procs'), String(pid));
  process.stdout.write(`bare VM (QEMU ${p.qemu.join(' ')}) in cpu cgroup ${dir.slice(base.length)}, next to runcvm's ${own}\n`);
}

async function fifo(work: string, name: string): Promise<string> {
  const path = join(work, `${name.replace(' ', '-')}.fifo`);
  await run('mkfifo', [path]);
  return path;
}

function peer(t: Target, script: string): Promise<RunResult> {
  return run('ip', ['netns', 'exec', t.net.peer, 'sh', '-c', script], { reject: false, timeoutMs: 300_000 });
}

/** One exec round trip on runcvm's exec socket (as the exec client does it): OPEN `true` → EXIT, in ms. */
function agentRoundTrip(socket: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const decoder = new FrameDecoder();
    const s = createConnection(socket, () => {
      s.write(encodeOpen({ args: ['true'], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false }));
      s.write(encodeFrame(FrameType.EOF, 0));
    });
    s.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.type !== FrameType.EXIT) continue;
        const dt = performance.now() - t0;
        s.destroy();
        if (f.payload.readInt32BE(0) !== 0) reject(new Error(`runcvm exec of true exited ${f.payload.readInt32BE(0)}`));
        else resolve(dt);
      }
    });
    s.on('error', reject);
  });
}

/** One dd under busybox `time` (10 ms resolution), printing `<label> <min> <sec>`. */
function timedDd(label: string, dd: string): string {
  return `{ time ${dd}; } 2>&1 | sed -n 's/^real[^0-9]*\\([0-9]*\\)m *\\([0-9.]*\\)s.*/${label} \\1 \\2/p'`;
}

function parseDd(out: string, label: string): number {
  const x = new RegExp(`^${label} (\\d+) ([0-9.]+)$`, 'm').exec(out);
  if (!x) throw new Error(`no ${label} timing in: ${out.slice(-500)}`);
  return (Number(x[1]) * 60 + Number(x[2])) * 1000;
}

try {
  const fx = await runtimeFixture(closers);
  const work = await tempDir('runcvm-datapath', closers);
  const reg = await startRegistry();
  closers.push('registry', () => reg.stop());
  const image = await pushBusyboxImage(reg);
  const cd = await startContainerd();
  closers.push('containerd', () => cd.stop());
  await cd.ctr(['images', 'pull', '--plain-http', image]);

  const t0 = performance.now();
  const runc = await ctrTarget(cd, 'runc', fx.wrapper, image, work);
  const runcvm = await ctrTarget(cd, 'runcvm', fx.wrapper, image, work);
  const { target: bare, vm } = await bareTarget(work);
  await sameCpuGroup(runcvm, bare);
  // the bare VM first: it is the baseline of every network and volume case (runc is for scale)
  const targets: Target[] = [bare, runcvm, runc];
  const vms = targets.filter((t) => t.vmPids);
  /** host CPU of the VM's processes around fn, in ms (QEMU; with virtiofsd when asked) */
  const cpuOf = (t: Target, withVirtiofsd: boolean) => {
    const p = t.vmPids!();
    const all = [...p.qemu, ...(withVirtiofsd ? p.virtiofsd : [])];
    return () => all.reduce((sum, pid) => sum + cpuMs(pid), 0);
  };
  const bytes = MIB * 1024 * 1024;
  for (const t of targets) {
    // serving: the pod IP answers and one download completes (both VMs boot under TCG: many seconds)
    await waitFor(`${t.name} to serve`, async () => (await peer(t, `busybox ping -c 1 -W 1 ${POD_IP} >/dev/null && timeout 60 busybox nc ${POD_IP} 9001 <>${t.fifo} | wc -c`)).stdout.trim() === String(bytes), { timeoutMs: 300_000, intervalMs: 500 });
  }
  process.stdout.write(`all three serving after ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  // ---- exec ----
  if (only('exec')) {
  const execSocket = join(fx.stateDir, 'datapath-runcvm', 'exec.sock');
  cases.push(await measureCase({ bench: BENCH, case: 'exec round trip in the guest (true)', repetitions: Math.max(REPS, 10), pairs: [['runcvm', 'bare VM']], notes: 'runcvm: OPEN true → EXIT on the launcher\'s exec socket (launcher mux → virtio-serial → runcvm-agent fork/exec); bare VM: the line /bin/true → @@EXIT over a virtio-serial port (busybox sh fork/exec); guest under TCG' }, [
    { name: 'bare VM', run: async () => void (await vm.roundTrip()) },
    { name: 'runcvm', run: async () => void (await agentRoundTrip(execSocket)) },
  ]));
  let x = 0;
  const ctrExec = (id: string) => async () => void (await cd.ctr(['task', 'exec', '--exec-id', `x${++x}`, id, 'true'], { timeoutMs: 60_000 }));
  cases.push(await measureCase({ bench: BENCH, case: 'ctr task exec true', repetitions: Math.max(REPS, 10), pairs: [['runcvm', 'runc']], notes: 'containerd 1.6 + runc 1.1.5; target: runcvm ≤ runc + 100 ms (median, quiet machine)' }, [
    { name: 'runc', run: ctrExec('datapath-runc') },
    { name: 'runcvm', run: ctrExec('datapath-runcvm') },
  ]));
  const root = `/run/containerd/runc/${cd.namespace}`;
  cases.push(await measureCase({ bench: BENCH, case: 'runtime verb: exec ID true (no containerd)', repetitions: Math.max(REPS, 10), pairs: [['runcvm-runtime exec', 'runc exec']] }, [
    { name: 'runc exec', run: async () => void (await run('runc', ['--root', root, 'exec', 'datapath-runc', 'true'], { timeoutMs: 60_000 })) },
    { name: 'runcvm-runtime exec', run: async () => void (await run(fx.wrapper, ['--root', root, 'exec', 'datapath-runcvm', 'true'], { timeoutMs: 60_000 })) },
  ]));
  }

  // ---- network ----
  if (only('network')) {
    const load = loadMark();
    const rtts = new Map<Name, number[]>(targets.map((t) => [t.name, []]));
    for (let i = 0; i < REPS; i++) {
      for (const t of targets) {
        const out = await peer(t, `busybox ping -c 20 -i 0.05 -W 2 ${POD_IP}`);
        const values = [...out.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
        if (values.length < 15) throw new Error(`${t.name}: ping lost packets: ${out.stdout}`);
        rtts.get(t.name)!.push(...values.slice(1, 16).map((ms) => ms * 1000)); // the first echo may include ARP; 15 per round each
      }
    }
    cases.push(derivedCase({ bench: BENCH, case: 'ping RTT peer to target', unit: 'µs', load: load.end(), pairs: VM_PAIRS, repetitions: REPS, warmups: 0, notes: `each sample is one ICMP echo RTT reported by busybox ping (${REPS} rounds × 15 per target, interleaved)` },
      targets.map((t) => ({ name: t.name, values: rtts.get(t.name)! }))));
  }
  const check = (what: string, got: RunResult, want: number) => {
    if (got.stdout.trim() !== String(want)) throw new Error(`${what}: expected ${want} bytes, got "${got.stdout.trim()}" ${got.stderr}`);
  };
  const netCase = async (name: string, notes: string, script: (t: Target) => string, { reps = REPS, mib = MIB } = {}) => {
    const size = mib * 1024 * 1024;
    const cpu = new Map<string, number[]>(vms.map((t) => [t.name, []]));
    const c = await measureCase({ bench: BENCH, case: name, repetitions: reps, pairs: VM_PAIRS, notes },
      targets.map((t) => ({
        name: t.name,
        run: async () => {
          const used = t.vmPids ? cpuOf(t, false) : undefined;
          const before = used?.() ?? 0;
          check(`${t.name}: ${name}`, await peer(t, script(t)), size);
          if (used) cpu.get(t.name)!.push(used() - before);
        },
      })));
    const mbps = c.variants.map((v) => `${v.name} ${((size * 8) / (v.medianMs / 1000) / 1e6).toFixed(0)} Mbit/s`).join(', ');
    c.notes = `${c.notes}; median throughput: ${mbps}`;
    cases.push(c);
    cases.push(derivedCase({ bench: BENCH, case: `${name}: host CPU of the VM`, unit: 'ms CPU', ...(c.load ? { load: c.load } : {}), pairs: [VM_PAIRS[0]], repetitions: reps, warmups: 0, notes: 'user + system CPU time of the QEMU process during each transfer (same rounds as the wall times; moves far less with the load)' },
      vms.map((t) => ({ name: t.name, values: cpu.get(t.name)!.slice(WARMUPS) }))));
  };
  if (only('network')) {
  await netCase(`TCP upload ${MIB} MiB peer to target`, 'peer: dd | busybox nc; target: nc -l -e wc -c (wc reads the socket, 4 KiB reads); time to the byte count', () => `dd if=/dev/zero bs=64k count=${MIB * 16} 2>/dev/null | busybox nc ${POD_IP} 9000`);
  await netCase(`TCP download ${MIB} MiB target to peer`, 'target: nc -l -e dd bs=64k (dd writes 64 KiB to the socket itself); peer: busybox nc | wc -c to EOF', (t) => `busybox nc ${POD_IP} 9001 <>${t.fifo} | wc -c`);
  await netCase(`TCP download ${LOOP_MIB} MiB through busybox nc's copy loop`, `target: dd | nc -l (nc copies with poll + 1 KiB read + 1 KiB write: ${LOOP_MIB * 1024} rounds of three syscalls, CPU-bound in an emulated guest); the old bench's case, kept to show where its 9 s went; ${SLOW_REPS} repetitions (capped)`, (t) => `busybox nc ${POD_IP} 9003 <>${t.fifo} | wc -c`, { reps: SLOW_REPS, mib: LOOP_MIB });
  await netCase(`HTTP download ${MIB} MiB target to peer`, 'busybox httpd (sendfile) in the target; busybox wget in the peer', () => `busybox wget -q -O - http://${POD_IP}:9002/blob | wc -c`);
  }

  // ---- volumes: /data (virtiofs in the VMs) and the target's own disk, one dd per call, rounds interleaved ----
  if (only('data') || only('disk')) {
    const load = loadMark();
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const file = Buffer.concat(Array.from({ length: VOL_MIB }, () => chunk));
    if (only('data')) for (const t of targets) for (let i = 1; i <= VOL_REPS; i++) await writeFile(join(t.share, `r${i}`), file);
    // the read of the own disk must come from the disk, not the target's page cache: dropped first in the VMs, and
    // checked (the guest's Cached falls below the file's size). runcvm's workload sees /proc/sys read-only, as under
    // runc: it drops through a procfs mounted for it (CAP_SYS_ADMIN above). Before, the bench's drop failed
    // silently in runcvm and its "disk" read was a page-cache read. runc's figure stays a page-cache read (dropping
    // the host's cache would disturb the machine).
    const drop = (t: Target) => t.vmPids
      ? `sync; p=/proc; [ -w /proc/sys/vm/drop_caches ] && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || { mkdir -p /tmp/procfs && { mountpoint -q /tmp/procfs || mount -t proc proc /tmp/procfs; } && p=/tmp/procfs && echo 3 > /tmp/procfs/sys/vm/drop_caches; } || { echo 'drop_caches failed' >&2; exit 1; }; c=$(sed -n 's/^Cached: *\\([0-9]*\\) kB/\\1/p' $p/meminfo); [ "$c" -lt ${VOL_MIB * 1024} ] || { echo "page cache not dropped: Cached $c kB" >&2; exit 1; }`
      : 'sync';
    const allOps: { key: 'data-write' | 'data-read' | 'disk-exec' | 'disk-idle' | 'disk-write' | 'disk-read'; name: string; virtiofs: boolean; script: (i: number, t: Target) => string; notes: string }[] = [
      { key: 'data-write', name: `write ${VOL_MIB} MiB to /data (virtiofs)`, virtiofs: true, script: (i) => `${timedDd('t', `dd if=/dev/zero of=/data/w${i} bs=1M count=${VOL_MIB} conv=fsync`)}; rm -f /data/w${i}`, notes: 'dd bs=1M conv=fsync; runc: bind mount; VMs: virtiofs (bare VM: Debian virtiofsd with its defaults)' },
      { key: 'data-read', name: `read ${VOL_MIB} MiB from /data (virtiofs)`, virtiofs: true, script: (i) => timedDd('t', `dd if=/data/r${i} of=/dev/null bs=1M`), notes: 'dd bs=1M of a file the host wrote (never in the guest\'s cache)' },
      // the host-CPU figures of each dd call include starting its shell (runcvm: ctr exec → agent → fork/exec in the
      // guest's namespaces; bare VM: one eval in its control shell): this case is that floor alone
      { key: 'disk-exec', name: 'an empty call (the floor of the own-disk CPU figures)', virtiofs: false, script: () => timedDd('t', 'true'), notes: 'busybox time true: the shell a dd call starts, without the dd' },
      // and what the guest costs at rest over a write's duration (timers, runcvm's agent and init, the bare VM's shell)
      { key: 'disk-idle', name: 'an idle guest for 2 s (background CPU)', virtiofs: false, script: () => timedDd('t', 'sleep 2'), notes: 'busybox time sleep 2: host CPU of QEMU while the guest does nothing, plus the call' },
      { key: 'disk-write', name: `write ${VOL_MIB} MiB to the own disk`, virtiofs: false, script: (i) => timedDd('t', `dd if=/dev/zero of=/root/w${i} bs=1M count=${VOL_MIB} conv=fsync`), notes: 'dd bs=1M conv=fsync to /root; runc: its overlay rootfs; bare VM: ext4 root (virtio-blk, QEMU default cache); runcvm: overlay on its upper disk' },
      { key: 'disk-read', name: `read ${VOL_MIB} MiB from the own disk`, virtiofs: false, script: (i, t) => `${drop(t)}; ${timedDd('t', `dd if=/root/w${i} of=/dev/null bs=1M`)}; rm -f /root/w${i}`, notes: 'dd bs=1M of the file just written, after drop_caches in the VMs, checked (runc cannot drop the host\'s cache: a page-cache read)' },
    ];
    if (only('disk')) {
      // what the own disk is in each VM (mounts, the block queue, memory) and where its QEMU runs on the host
      const facts = "grep -E ' / | /run/| /root ' /proc/mounts; for q in /sys/block/vd*/queue; do echo \"$q: $(cat $q/scheduler) ra=$(cat $q/read_ahead_kb) wc=$(cat $q/write_cache)\"; done; grep -E 'MemTotal|MemFree|^Cached' /proc/meminfo; cat /proc/self/cgroup | head -3; ls /proc/sys/vm/drop_caches -l; ps | grep -c ext4lazyinit";
      for (const t of vms) {
        const pids = t.vmPids!().qemu;
        process.stdout.write(`--- ${t.name}: host cgroup of QEMU: ${pids.map((p) => readFileSync(`/proc/${p}/cgroup`, 'utf8').split('\n').filter((l) => /cpu[,:]/.test(l)).join(' ')).join(' | ')}\n${await t.sh(facts).catch((e: Error) => e.message)}\n`);
      }
    }
    const ops = allOps.filter((o) => only(o.key.startsWith('data') ? 'data' : 'disk'));
    const wall = new Map(ops.map((o) => [o.key, new Map<Name, number[]>(targets.map((t) => [t.name, []]))]));
    const cpu = new Map(ops.map((o) => [o.key, new Map<Name, number[]>(vms.map((t) => [t.name, []]))]));
    for (let i = 1; i <= VOL_REPS; i++) {
      for (const o of ops) {
        for (const t of targets) {
          const used = t.vmPids ? cpuOf(t, o.virtiofs) : undefined;
          const before = used?.() ?? 0;
          const out = await t.sh(o.script(i, t));
          if (used) cpu.get(o.key)!.get(t.name)!.push(used() - before);
          wall.get(o.key)!.get(t.name)!.push(parseDd(out, 't'));
        }
      }
    }
    const end = load.end();
    for (const o of ops) {
      cases.push(derivedCase({ bench: BENCH, case: o.name, load: end, pairs: VM_PAIRS, repetitions: VOL_REPS, warmups: 0, notes: `${o.notes}; busybox time inside the target (10 ms resolution); ${VOL_REPS} rounds interleaved` },
        targets.map((t) => ({ name: t.name, values: wall.get(o.key)!.get(t.name)! }))));
      cases.push(derivedCase({ bench: BENCH, case: `${o.name}: host CPU of the VM`, unit: 'ms CPU', load: end, pairs: [VM_PAIRS[0]], repetitions: VOL_REPS, warmups: 0, notes: `user + system CPU time of QEMU${o.virtiofs ? ' and virtiofsd' : ''} during each dd call (includes the exec of its shell)` },
        vms.map((t) => ({ name: t.name, values: cpu.get(o.key)!.get(t.name)! }))));
    }
  }
  const medians = cases.map((c) => `${c.case}: ${c.pairs?.map((p) => `${p.of}/${p.to} ×${p.ratio.toFixed(2)}`).join(', ') ?? ''}`);
  process.stdout.write(`\n${medians.join('\n')}\n`);
  // a filtered run writes its own file (runcvm-datapath-disk.json, …): the full run's results stay whole
  const resultsName = wanted.size === GROUPS.length ? BENCH : `${BENCH}-${[...wanted].join('-')}`;
  process.stdout.write(`results: ${writeResults(resultsName, cases, 'tcg', ['QEMU under TCG (no usable KVM here): VM figures are emulated-CPU figures; runcvm / bare VM is the ratio that carries over'])}\n`);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  const errors = await closers.close();
  if (errors.length) process.stderr.write(`cleanup: ${errors.map((e) => e.message).join('; ')}\n`);
}
