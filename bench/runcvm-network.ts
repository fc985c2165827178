/**
 * Network cost of the microVM: the same workload on the same path, under plain runc and under runcvm.
 *
 *   npx vite-node bench/runcvm-network.ts          (as root; BENCH_REPS=5 repetitions, BENCH_WARMUPS=1)
 *
 * Topology (only in namespaces created here): for each runtime a pod namespace whose eth0 is a veth to a peer
 * namespace (pod 10.88.0.2/24, peer 10.88.0.1), the container joined to the pod namespace with
 * `ctr run --with-ns network:…`. Under runcvm the path is peer → veth → br-eth0 → tap-eth0 → QEMU virtio-net (no
 * vhost: /dev/vhost-net does not exist here) → guest; under runc it is peer → veth → container.
 * Cases:
 *   - ping RTT: 20 ICMP echoes peer → pod IP (each sample is one RTT as ping reports it);
 *   - TCP upload: 8 MiB (BENCH_MIB) peer → container (busybox `dd | nc`; the container's `nc -l -e wc -c` answers with the byte
 *     count, so the time covers delivery, not just the sender's socket buffer);
 *   - TCP download: 8 MiB container → peer (`dd | nc -l` in the container; the peer counts to EOF);
 *   - HTTP download: the same 8 MiB from busybox httpd (sendfile, large writes) → peer `wget`.
 * The runcvm figures here are under QEMU TCG (software emulation): expect a large factor; with KVM + vhost-net the
 * same path costs far less. Results: bench/results/runcvm-network.json and SVGs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../src/core/exec/index.js';
import { CloserStack } from '../src/core/fsx/index.js';
import { measureCase, median, printCase, REPS, type CaseResult } from './lib/measure.js';
import { writeResults } from './lib/report.js';
import { startContainerd } from '../test/harness/services/containerd.js';
import { startRegistry } from '../test/harness/services/registry.js';
import { pushBusyboxImage } from '../test/harness/images.js';
import { runtimeFixture } from '../test/e2e/runcvm/setup.js';
import { podNetwork, POD_IP, type PodNetwork } from '../test/e2e/network-helpers.js';

const RUNS = REPS;
const MIB = Number(process.env.BENCH_MIB ?? 8);
const BENCH = 'runcvm-network';

/** Serves the two TCP cases until SIGTERM (trap + wait, so the signal ends it at once, under runc and in the VM). */
const SERVER = [
  'trap "exit 0" TERM INT',
  `while true; do nc -l -p 9000 -e wc -c; done &`,
  `while true; do dd if=/dev/zero bs=64k count=${MIB * 16} 2>/dev/null | nc -l -p 9001; done &`,
  `mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/blob bs=64k count=${MIB * 16} 2>/dev/null && httpd -p 9002 -h /tmp/www`,
  'echo SERVING',
  'sleep 1000000 & wait',
].join('\n');

type Runtime = 'runc' | 'runcvm';

interface Running {
  rt: Runtime;
  id: string;
  net: PodNetwork;
  fifo: string;
}

async function peer(r: Running, script: string): Promise<RunResult> {
  return run('ip', ['netns', 'exec', r.net.peer, 'sh', '-c', script], { reject: false, timeoutMs: 300_000 });
}

async function main(): Promise<void> {
  const closers = new CloserStack();
  try {
    const fx = await runtimeFixture(closers);
    const reg = await startRegistry();
    closers.push('registry', () => reg.stop());
    const image = await pushBusyboxImage(reg);
    const cd = await startContainerd();
    closers.push('containerd', () => cd.stop());
    await cd.ctr(['images', 'pull', '--plain-http', image]);
    const work = await mkdtemp(join(tmpdir(), 'rcvmnet-bench-'));
    closers.push('work dir', () => rm(work, { recursive: true, force: true }));

    const running: Running[] = [];
    for (const rt of ['runc', 'runcvm'] as const) {
      const net = await podNetwork();
      closers.push(`${rt} namespaces`, () => net.destroy());
      const id = `netbench-${rt}`;
      const fifo = join(work, `${rt}.fifo`);
      await run('mkfifo', [fifo]);
      const flags = [...(rt === 'runcvm' ? ['--runc-binary', fx.wrapper] : []), '--with-ns', `network:${net.nsPath}`];
      await cd.ctr(['run', '-d', ...flags, image, id, 'sh', '-c', SERVER]);
      closers.push(`${rt} container`, async () => {
        await cd.ctr(['task', 'kill', id], { reject: false });
        for (let i = 0; i < 100; i++) {
          const ls = await cd.ctr(['task', 'ls'], { reject: false });
          if (!ls.stdout.includes(id) || /STOPPED/.test(ls.stdout.split('\n').find((l) => l.includes(id)) ?? '')) break;
          await new Promise((res) => setTimeout(res, 200));
        }
        await cd.ctr(['task', 'delete', '-f', id], { reject: false });
        await cd.ctr(['container', 'delete', id], { reject: false });
      });
      const r: Running = { rt, id, net, fifo };
      // ready when the pod IP answers and a download completes (the VM boots under TCG: a few seconds)
      const t0 = Date.now();
      for (;;) {
        const alive = await peer(r, `busybox ping -c 1 -W 1 ${POD_IP} >/dev/null && timeout 120 busybox nc ${POD_IP} 9001 <>${fifo} | wc -c`);
        if (alive.stdout.trim() === String(MIB * 1024 * 1024)) break;
        if (Date.now() - t0 > 180_000) throw new Error(`${rt}: the container never served (last: ${alive.stdout} ${alive.stderr})`);
        await new Promise((res) => setTimeout(res, 500));
      }
      process.stdout.write(`${rt}: serving after ${Date.now() - t0} ms\n`);
      running.push(r);
    }

    const cases: CaseResult[] = [];

    // ping RTT: samples are the RTTs ping reports (interleaved runs of 20)
    const rtts = new Map<Runtime, number[]>(running.map((r) => [r.rt, []]));
    for (let i = 0; i < RUNS; i++) {
      for (const r of running) {
        const out = await peer(r, `busybox ping -c 20 -i 0.05 -W 2 ${POD_IP}`);
        const values = [...out.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
        if (values.length < 15) throw new Error(`${r.rt}: ping lost packets: ${out.stdout}`);
        rtts.get(r.rt)!.push(...values.slice(1)); // the first echo may include ARP
      }
    }
    const rttVariants = running.map((r) => {
      const t = rtts.get(r.rt)!;
      return { name: r.rt, timesMs: t.map((x) => Math.round(x * 1000) / 1000), medianMs: Math.round(median(t) * 1000) / 1000, minMs: Math.min(...t), maxMs: Math.max(...t) };
    });
    const rttCase: CaseResult = {
      bench: BENCH,
      case: 'ping RTT peer to container',
      baseline: 'runc',
      variants: rttVariants,
      ratios: Object.fromEntries(rttVariants.map((v) => [v.name, Math.round((v.medianMs / rttVariants[0]!.medianMs) * 10) / 10])),
      notes: `each sample is one ICMP echo RTT reported by ping (${RUNS} x 19 per runtime); accel tcg`,
    };
    printCase(rttCase);
    cases.push(rttCase);

    const bytes = MIB * 1024 * 1024;
    const check = (what: string, got: RunResult) => {
      if (got.stdout.trim() !== String(bytes)) throw new Error(`${what}: expected ${bytes} bytes, got "${got.stdout.trim()}" ${got.stderr}`);
    };
    const upload = await measureCase(
      { bench: BENCH, case: `TCP upload ${MIB} MiB peer to container`, repetitions: RUNS, notes: 'busybox dd | nc to nc -l -e wc -c; time to the byte count' },
      running.map((r) => ({ name: r.rt, run: async () => check(`${r.rt} upload`, await peer(r, `dd if=/dev/zero bs=64k count=${MIB * 16} 2>/dev/null | busybox nc ${POD_IP} 9000`)) })),
    );
    cases.push(upload);
    const download = await measureCase(
      { bench: BENCH, case: `TCP download ${MIB} MiB container to peer`, repetitions: RUNS, notes: 'busybox dd | nc -l in the container; the peer counts to EOF' },
      running.map((r) => ({ name: r.rt, run: async () => check(`${r.rt} download`, await peer(r, `busybox nc ${POD_IP} 9001 <>${r.fifo} | wc -c`)) })),
    );
    cases.push(download);
    // the same direction with large writes (httpd sends the file with sendfile): separates the NIC path from the
    // cost of busybox nc's small writes, which dominates inside an emulated (TCG) guest
    const http = await measureCase(
      { bench: BENCH, case: `HTTP download ${MIB} MiB container to peer`, repetitions: RUNS, notes: 'busybox httpd (sendfile) in the container; busybox wget in the peer' },
      running.map((r) => ({ name: r.rt, run: async () => check(`${r.rt} http download`, await peer(r, `busybox wget -q -O - http://${POD_IP}:9002/blob | wc -c`)) })),
    );
    cases.push(http);

    for (const c of [upload, download, http]) {
      const mbps = c.variants.map((v) => `${v.name} ${((bytes * 8) / (v.medianMs / 1000) / 1e6).toFixed(0)} Mbit/s`).join(', ');
      c.notes = `${c.notes ?? ''}; median throughput: ${mbps}`;
      process.stdout.write(`  ${c.case}: ${mbps}\n`);
    }
    process.stdout.write(`results: ${writeResults(BENCH, cases, 'tcg')}\n`);
  } finally {
    const errors = await closers.close();
    if (errors.length) process.stderr.write(`cleanup: ${errors.map((e) => e.message).join('; ')}\n`);
  }
}

await main();
