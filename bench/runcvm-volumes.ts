/**
 * Volume throughput: sequential write and read of 64 MiB through a volume inside a runcvm microVM vs the host path.
 *
 *   npx vite-node bench/runcvm-volumes.ts          (as root; needs var/assets and containerd; BENCH_REPS, capped at 3)
 *
 * Variants (same busybox `dd bs=1M count=64`, write with conv=fsync, read of a file the VM has never cached):
 *   host            dd on the host folder itself (the baseline)
 *   runc bind       the folder bind-mounted into a runc container (ctr run)
 *   runcvm virtiofs the folder bind-mounted into a runcvm container: virtiofsd + vhost-user-fs in the VM
 *   runcvm disk     a RUNCVM_DISKS ext4 image on that folder, virtio-blk in the VM (reads after drop_caches)
 *   runcvm rootfs   the VM's own writable layer (overlay on the per-container ext4 disk), for reference
 *   runcvm tmpfs    a tmpfs inside the VM: what the emulated CPU can move at all (the ceiling for every VM variant)
 * Each container runs every repetition in one VM (a boot under TCG costs ~20 s and is not what is measured); the
 * times are dd's own. Files the VM reads were written by the host beforehand, so every read variant starts from the
 * host page cache. Results: bench/results/runcvm-volumes.json (+ SVG per case). Under TCG (this machine: no usable
 * KVM) the VM numbers measure the emulator as much as virtiofs; read them as ratios to the host.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec/index.js';
import { CloserStack, tempDir } from '../src/core/fsx/index.js';
import { startContainerd } from '../test/harness/services/containerd.js';
import { startRegistry } from '../test/harness/services/registry.js';
import { pushBusyboxImage } from '../test/harness/images.js';
import { runtimeFixture } from '../test/e2e/runcvm/setup.js';
import { median, repsAtMost, type CaseResult, type VariantResult } from './lib/measure.js';
import { writeResults } from './lib/report.js';

const RUNS = repsAtMost(3);
const MiB = 64;

/**
 * A busybox shell script printing `write|read MIN SEC` lines for RUNS repetitions on DIR. busybox dd prints no
 * timing, so each dd runs under busybox `time` (10 ms resolution: fine for the VM's seconds; the host baseline uses
 * GNU dd's own microsecond timing instead, see hostScript).
 */
function ddScript(dir: string, opts: { dropCaches: boolean; readPrefix: string; keep?: boolean; label?: string }): string {
  const drop = opts.dropCaches ? 'sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null;' : '';
  const real = (what: string) => `sed -n 's/^real[^0-9]*\\([0-9]*\\)m *\\([0-9.]*\\)s.*/${opts.label ?? ''}${what} \\1 \\2/p'`;
  return [
    `for i in $(seq 1 ${RUNS}); do`,
    `  { time dd if=/dev/zero of=${dir}/w$i bs=1M count=${MiB} conv=fsync; } 2>&1 | ${real('write')};`,
    `  ${drop}`,
    `  { time dd if=${opts.readPrefix}$i of=/dev/null bs=1M; } 2>&1 | ${real('read')};`,
    opts.keep ? '' : `  rm -f ${dir}/w$i;`,
    'done',
  ].join('\n');
}

/** The host baseline: GNU dd's own timing (`copied, 0.194 s`), same sizes and flags. */
function hostScript(dir: string): string {
  const secs = (what: string) => `sed -n 's/.*copied, \\([0-9.]*\\) s.*/${what} 0 \\1/p'`;
  return [
    `for i in $(seq 1 ${RUNS}); do`,
    `  dd if=/dev/zero of=${dir}/w$i bs=1M count=${MiB} conv=fsync 2>&1 | ${secs('write')}`,
    `  dd if=${dir}/r$i of=/dev/null bs=1M 2>&1 | ${secs('read')}`,
    `  rm -f ${dir}/w$i`,
    'done',
  ].join('\n');
}

function parse(out: string, label = ''): { write: number[]; read: number[] } {
  const res = { write: [] as number[], read: [] as number[] };
  for (const line of out.split('\n')) {
    const m = new RegExp(`^${label}(write|read) (\\d+) ([0-9.]+)$`).exec(line.trim());
    if (m) res[m[1] as 'write' | 'read'].push((Number(m[2]) * 60 + Number(m[3])) * 1000);
  }
  return res;
}

function variant(name: string, timesMs: number[]): VariantResult {
  if (timesMs.length === 0) throw new Error(`${name}: no timings parsed (dd output format?)`);
  return { name, timesMs, medianMs: median(timesMs), minMs: Math.min(...timesMs), maxMs: Math.max(...timesMs) };
}

function toCase(caseName: string, variants: VariantResult[]): CaseResult {
  const base = variants[0]!.medianMs;
  const ratios: Record<string, number> = {};
  for (const v of variants) ratios[v.name] = Number((v.medianMs / base).toFixed(2));
  return {
    bench: 'runcvm-volumes',
    case: caseName,
    baseline: variants[0]!.name,
    variants,
    ratios,
    notes: `${MiB} MiB sequential, bs=1M, ${RUNS} repetitions in one VM each; MiB/s = ${MiB} / (median ms / 1000); TCG (no usable KVM)`,
  };
}

async function main(): Promise<void> {
  const closers = new CloserStack();
  try {
    const fx = await runtimeFixture(closers);
    const dir = await tempDir('runcvm-vol-bench', closers);
    const reg = await startRegistry();
    closers.push('registry', () => reg.stop());
    const image = await pushBusyboxImage(reg);
    const cd = await startContainerd();
    closers.push('containerd', () => cd.stop());
    await cd.ctr(['images', 'pull', '--plain-http', image]);

    const share = join(dir, 'share');
    const disks = join(dir, 'disks');
    await mkdir(share);
    await mkdir(disks);
    const chunk = Buffer.alloc(1024 * 1024, 7);
    for (let i = 1; i <= RUNS; i++) await writeFile(join(share, `r${i}`), Buffer.concat(Array.from({ length: MiB }, () => chunk)));
    let seq = 0;
    const ctr = async (runtime: string[], env: string[], script: string): Promise<string> => {
      const r = await cd.ctr(['run', '--rm', ...runtime, ...env.flatMap((e) => ['--env', e]), '--mount', `type=bind,src=${share},dst=/data,options=rbind:rw`, '--mount', `type=bind,src=${disks},dst=/disks,options=rbind:rw`, image, `bench${++seq}`, 'sh', '-c', script], { reject: false, timeoutMs: 900_000 });
      if (r.exitCode !== 0) throw new Error(`ctr run failed (${r.exitCode}): ${r.stderr.slice(-2000)}`);
      return r.stdout;
    };
    const vm = ['--runc-binary', fx.wrapper];

    const host = parse((await run('bash', ['-c', hostScript(share)], { env: { PATH: '/usr/bin:/bin' } })).stdout);
    const runc = parse(await ctr([], [], ddScript('/data', { dropCaches: false, readPrefix: '/data/r' })));
    // same VM: first the emulator's ceiling (a tmpfs inside the VM, files written there first), then virtiofs
    const ceilingScript = `mkdir -p /t && mount -t tmpfs -o size=200m t /t 2>/dev/null || true; for i in $(seq 1 ${RUNS}); do dd if=/dev/zero of=/t/r$i bs=1M count=${MiB} 2>/dev/null; done; ${ddScript('/t', { dropCaches: false, readPrefix: '/t/r', label: 'mem-' })}; rm -f /t/r*`;
    const vfsOut = await ctr(vm, [], `${ceilingScript}\n${ddScript('/data', { dropCaches: false, readPrefix: '/data/r' })}`);
    const vfs = parse(vfsOut);
    const mem = parse(vfsOut, 'mem-');
    const disk = parse(await ctr(vm, ['RUNCVM_DISKS=/disks/bench.img,/mnt/disk,ext4,512M'], ddScript('/mnt/disk', { dropCaches: true, readPrefix: '/mnt/disk/w', keep: true })));
    const root = parse(await ctr(vm, ['RUNCVM_ROOTFS_SIZE=512M'], ddScript('/root', { dropCaches: true, readPrefix: '/root/w', keep: true })));

    const cases = (['write', 'read'] as const).map((k) =>
      toCase(`${k} ${MiB} MiB`, [
        variant('host', host[k]),
        variant('runc bind', runc[k]),
        variant('runcvm virtiofs', vfs[k]),
        variant('runcvm disk (ext4)', disk[k]),
        variant('runcvm rootfs', root[k]),
        variant('runcvm tmpfs (TCG ceiling)', mem[k]),
      ]),
    );
    for (const c of cases) {
      console.log(`\n${c.case}`);
      for (const v of c.variants) console.log(`  ${v.name.padEnd(28)} median ${v.medianMs.toFixed(0).padStart(6)} ms  ${(MiB / (v.medianMs / 1000)).toFixed(0).padStart(6)} MiB/s  x${c.ratios[v.name]}`);
    }
    console.log(`\nresults: ${writeResults('runcvm-volumes', cases, 'tcg')}`);
    await rm(join(disks, 'bench.img'), { force: true });
  } finally {
    await closers.close();
  }
}

await main();
