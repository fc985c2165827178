/**
 * runcvm start-up benchmark (not a test): `npx vite-node bench/runcvm-start.ts`  (BENCH_REPS, BENCH_WARMUPS)
 *
 * 1. `ctr run` → first output line and → exit, for runc, runcvm, and the bare hypervisor booting the same kernel and
 *    initramfs to a trivial init (the floor on this machine; target runcvm / bare ≤ 1.15). The bare QEMU uses the
 *    runtime's machine flags (src/runcvm/hypervisor/qemu: microvm,pit=on,pic=off,rtc=on, tcg tb-size=64, -cpu max,
 *    512 MiB, 1 vCPU) and its kernel command line, with runcvm.modules=none and a static init that prints and powers off.
 * 2. start time against image size once the base disk is cached: 10 MB, 100 MB (busybox + a random file), 200 MB
 *    (debootstrap) and 1 GB (debootstrap + an 800 MB layer; skipped with a printed reason when disk space is short).
 * 3. 10 containers started at once (`ctr run --rm` ×10 in parallel): wall time until all have exited.
 * 4. host memory per idle microVM: RSS summed over the container's process tree (launcher + QEMU) ~5 s after the
 *    guest answered an exec, for -m 256M vs 512M (ctr --memory-limit), with an idle runc container for scale.
 * 5. the added cost of a pass-through verb (`list`) through bin/runcvm-runtime over runc itself (target < 5 ms).
 * VM templates (issue 17): 1 and 3 also run `runcvm template` (RUNCVM_TEMPLATE=on, restored from the template of the
 * same shape, built once before by an untimed container), and 4b compares host memory as PSS (smaps_rollup over the
 * container's process tree: shared pages split between their mappers) of idle containers of each kind side by side
 * (runc, runcvm cold, runcvm template), for each count in BENCH_PSS_COUNT (default 2,4: started in steps, so 4 costs
 * 2 more containers of each kind), BENCH_PSS_SETTLE_S (default 15) after the last answered an exec, in total and
 * by process (launcher, QEMU). BENCH_NO_SWEEP=1 skips 2 (and its image pushes) for a quicker run.
 * BENCH_BASELINE=/abs/dispatcher (an older bin/runcvm-runtime saved in bin/, see bench/runcvm-host-phases.ts) adds
 * "runcvm template (baseline)" to 1 and 3, with BENCH_BASELINE_GUEST_DIR as its guest package when set.
 * Variants are interleaved so load elsewhere on the machine hits them alike. Results: bench/results/runcvm-start.json.
 */
import { mkdir, writeFile, statfs } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../src/core/exec/index.js';
import { CloserStack, tempDir } from '../src/core/fsx/index.js';
import { projectPath } from '../src/core/paths.js';
import { cpuKhzFromCpuinfo } from '../src/runcvm/hypervisor/accel.js';
import { kernelCmdline } from '../src/runcvm/hypervisor/index.js';
import { startContainerd } from '../test/harness/services/containerd.js';
import { startRegistry, type StartedRegistry } from '../test/harness/services/registry.js';
import { buildahStore, pushBusyboxImage, pushDebootstrapImage, registryFlags } from '../test/harness/images.js';
import { pushVariant, runtimeFixture } from '../test/e2e/runcvm/setup.js';
import { waitFor } from '../test/harness/wait.js';
import { readdir, readFile as readFileAsync, stat } from 'node:fs/promises';
import { derivedCase, envInt, loadMark, measureCase, repsAtMost, treeRssKiB, WARMUPS, REPS, type CaseResult } from './lib/measure.js';
import { writeResults } from './lib/report.js';

const BENCH = 'runcvm-start';
const closers = new CloserStack();
const cases: CaseResult[] = [];
const notes: string[] = ['QEMU under TCG (software emulation): /dev/kvm here is KVM-PVM and cannot run the guest; on a KVM host boot is several times faster'];
// every VM boot takes ~15-30 s under TCG on this loaded 2-core machine: VM cases are capped (recorded in notes)
const START_REPS = repsAtMost(3);
const SWEEP_REPS = repsAtMost(2);
const BURST_REPS = repsAtMost(1);
const IDLE_REPS = repsAtMost(2);
const NO_SWEEP = process.env.BENCH_NO_SWEEP === '1';

/** `ps` rows (pid, ppid, args…) of `pid` and its descendants. */
async function treeRows(pid: number): Promise<string[][]> {
  const ps = await run('ps', ['-eo', 'pid,ppid,args'], { reject: false });
  const rows = ps.stdout.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((r) => r.length > 2);
  const tree = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rows) if (tree.has(Number(r[1])) && !tree.has(Number(r[0]))) { tree.add(Number(r[0])); grew = true; }
  }
  return rows.filter((r) => tree.has(Number(r[0])));
}

/**
 * PSS (KiB) of `pid` and its descendants by role (smaps_rollup: shared pages divided between their mappers): QEMU, the
 * launcher (node running launcher.mjs or its start-up snapshot launcher.blob), anything else (runc's workload).
 */
async function treePssByRole(pid: number): Promise<Record<'QEMU' | 'launcher' | 'other', number>> {
  const out = { QEMU: 0, launcher: 0, other: 0 };
  for (const r of await treeRows(pid)) {
    const role = r.some((a) => a.includes('qemu-system')) ? 'QEMU' : r.some((a) => /\/launcher\.(mjs|blob)$/.test(a)) ? 'launcher' : 'other';
    out[role] += Number(/^Pss:\s+(\d+) kB/m.exec(await readFileAsync(`/proc/${r[0]}/smaps_rollup`, 'utf8').catch(() => ''))?.[1] ?? 0);
  }
  return out;
}

const TRIVIAL_INIT = `#include <fcntl.h>
#include <unistd.h>
#include <sys/reboot.h>
int main(void) { int fd = open("/dev/console", O_WRONLY); write(fd, "ready\\n", 6); sync(); reboot(RB_POWER_OFF); return 0; }
`;

/** Run a command, resolving with [ms to the first stdout line containing `marker`, ms to exit]. */
async function timed(file: string, args: string[], marker = 'ready', sample?: (pid: number) => void): Promise<[number, number]> {
  const t0 = performance.now();
  let first = NaN;
  const r = await run(file, args, {
    reject: false,
    timeoutMs: 300_000,
    ...(sample ? { onSpawn: sample } : {}),
    onStdoutLine: (l) => {
      if (Number.isNaN(first) && l.includes(marker)) first = performance.now() - t0;
    },
  });
  if (r.exitCode !== 0 || Number.isNaN(first)) throw new Error(`${r.command}: exit ${r.exitCode}, marker ${Number.isNaN(first) ? 'missing' : 'seen'}: ${(r.stderr + r.stdout).slice(-1500)}`);
  return [first, performance.now() - t0];
}

/** debootstrap + one layer holding an incompressible file of `mib` MiB, pushed uncompressed (saves a gzip pass). */
async function pushBigImage(reg: StartedRegistry, debian: string, mib: number, dir: string): Promise<string> {
  const store = await buildahStore();
  try {
    const file = join(dir, 'big.bin');
    await run('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${mib}`, 'status=none'], { timeoutMs: 600_000 });
    const { args } = registryFlags(reg);
    const ctr = (await store.buildah(['from', '--isolation', 'chroot', ...args, '--name', 'bench-big', `docker://${debian}`], { timeoutMs: 600_000 })).stdout.trim();
    await store.buildah(['copy', ctr, file, '/big.bin'], { timeoutMs: 600_000 });
    await store.buildah(['commit', '--timestamp', '0', ctr, 'localhost/bench-big:latest'], { timeoutMs: 600_000 });
    const ref = `${reg.host}/bench-big:latest`;
    await store.buildah(['push', ...args, '--disable-compression', 'localhost/bench-big:latest', `docker://${ref}`], { timeoutMs: 900_000 });
    return ref;
  } finally {
    await store.close();
    await run('rm', ['-f', join(dir, 'big.bin')], { reject: false });
  }
}

try {
  const fx = await runtimeFixture(closers);
  const dir = await tempDir('runcvm-bench', closers);
  const reg = await startRegistry();
  closers.push('registry', () => reg.stop());
  const cd = await startContainerd();
  closers.push('containerd', () => cd.stop());
  const busybox = await pushBusyboxImage(reg);
  const ten = NO_SWEEP ? '' : await pushVariant(reg, 'ten-mb', { bigFileMiB: 7 });
  const hundred = NO_SWEEP ? '' : await pushVariant(reg, 'hundred-mb', { bigFileMiB: 97 });
  const debian = NO_SWEEP ? '' : await pushDebootstrapImage(reg);
  const fs = await statfs(dir);
  const freeGiB = (fs.bavail * fs.bsize) / 2 ** 30;
  let gig: string | undefined;
  if (NO_SWEEP) {
    notes.push('BENCH_NO_SWEEP=1: the image size sweep was skipped');
  } else if (freeGiB < 12) {
    const why = `1 GB image skipped: ${freeGiB.toFixed(1)} GiB free under ${dir} (needs ~12 GiB: layer file, buildah store, registry, containerd content + snapshot, runcvm base disk)`;
    process.stdout.write(`${why}\n`);
    notes.push(why);
  } else {
    gig = await pushBigImage(reg, debian, 800, dir);
  }
  for (const ref of [busybox, ten, hundred, debian, ...(gig ? [gig] : [])].filter(Boolean)) await cd.ctr(['images', 'pull', '--plain-http', ref], { timeoutMs: 900_000 });
  closers.push('stray containers', async () => {
    const ls = await cd.ctr(['task', 'ls', '-q'], { reject: false });
    for (const id of ls.stdout.split('\n').map((s) => s.trim()).filter(Boolean)) {
      await cd.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id], { reject: false });
      await cd.ctr(['task', 'delete', '-f', id], { reject: false, timeoutMs: 60_000 });
    }
    const cs = await cd.ctr(['containers', 'ls', '-q'], { reject: false });
    for (const id of cs.stdout.split('\n').map((s) => s.trim()).filter(Boolean)) await cd.ctr(['containers', 'rm', id], { reject: false });
  });

  // bare hypervisor: same kernel, initramfs, machine flags and memory as runcvm; a static init that prints and powers off
  const kernel = projectPath('var', 'assets', 'kernel');
  const rootfs = join(dir, 'trivial');
  for (const d of ['dev', 'proc', 'sys']) await mkdir(join(rootfs, d), { recursive: true });
  await writeFile(join(dir, 'init.c'), TRIVIAL_INIT);
  await run('gcc', ['-static', '-Os', '-o', join(rootfs, 'init'), join(dir, 'init.c')]);
  await run('mke2fs', ['-q', '-t', 'ext4', '-d', rootfs, join(dir, 'trivial.ext4'), '16M']);
  const khz = cpuKhzFromCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
  const cmdline = kernelCmdline({ rootDevice: '/dev/vda', debug: false, kernelDebug: false, append: 'runcvm.init=/init', modules: 'none', ...(khz ? { tscKhz: khz } : {}) });
  const bareArgs = ['-M', 'microvm,pit=on,pic=off,rtc=on', '-accel', 'tcg,tb-size=64', '-cpu', 'max', '-smp', '1', '-m', '512M', '-nodefaults', '-no-user-config', '-no-reboot', '-nographic',
    '-kernel', join(kernel, 'vmlinux'), '-initrd', join(kernel, 'initramfs.img'), '-append', cmdline,
    '-drive', `id=root,file=${join(dir, 'trivial.ext4')},format=raw,if=none,readonly=on`, '-device', 'virtio-blk-device,drive=root', '-serial', 'stdio'];

  let n = 0;
  // VM templates: the node setting in the runtime's environment; the same shape as the cold runs (no NIC: ctr's new
  // network namespace holds only lo)
  const tmplWrapper = await fx.wrapperWith('runcvm-runtime-tmpl', { RUNCVM_TEMPLATE: 'on' });
  const baseline = process.env.BENCH_BASELINE;
  let baseWrapper = '';
  if (baseline) {
    baseWrapper = join(fx.dir, 'runcvm-runtime-baseline');
    const env = { RUNCVM_STATE_DIR: fx.stateDir, RUNCVM_CACHE_DIR: fx.cacheDir, RUNCVM_LOG_DIR: fx.logDir, RUNCVM_TEMPLATE: 'on', ...(process.env.BENCH_BASELINE_GUEST_DIR ? { RUNCVM_GUEST_DIR: process.env.BENCH_BASELINE_GUEST_DIR } : {}) };
    await writeFile(baseWrapper, `#!/bin/sh\n${Object.entries(env).map(([k, v]) => `export ${k}='${v}'`).join('\n')}\nexec '${baseline}' "$@"\n`, { mode: 0o755 });
  }
  type Rt = boolean | 'template' | 'baseline';
  const rtFlags = (vm: Rt) => (vm ? ['--runc-binary', vm === 'baseline' ? baseWrapper : vm === 'template' ? tmplWrapper : fx.wrapper] : []);
  const ctrRun = (image: string, vm: Rt, cmd: string[], extra: string[] = []) =>
    ['--address', cd.socket, '-n', cd.namespace, 'run', '--rm', ...rtFlags(vm), ...extra, image, `b${++n}`, ...cmd];
  const echo = ['sh', '-c', 'echo ready'];
  // the first container of the shape boots cold and starts the builder (untimed); every timed template run restores
  await timed('ctr', ctrRun(busybox, 'template', echo));
  const tdir = join(fx.cacheDir, 'templates');
  await waitFor('the VM template to be built', async () => {
    for (const name of await readdir(tdir).catch(() => [] as string[])) if (/^[0-9a-f]{64}$/.test(name) && (await stat(join(tdir, name, 'manifest.json')).then(() => true, () => false))) return true;
    return false;
  }, { timeoutMs: 300_000, intervalMs: 1000 });
  const restored = async (args: string[]) => {
    const r = await run('ctr', [...args.slice(0, args.indexOf('run') + 1), '--env', 'RUNCVM_LOG_LEVEL=INFO', ...args.slice(args.indexOf('run') + 1)], { reject: false, timeoutMs: 300_000 });
    if (r.exitCode !== 0 || !r.stderr.includes('template: restored')) throw new Error(`not restored from the template: ${r.stderr.slice(-1500)}`);
  };
  await restored(ctrRun(busybox, 'template', echo));
  if (baseline) await restored(ctrRun(busybox, 'baseline', echo));

  // 1. first output / exit
  const firsts: Record<string, number[]> = { 'bare qemu': [], runcvm: [], 'runcvm template': [], ...(baseline ? { 'runcvm template (baseline)': [] } : {}), runc: [] };
  const startVariant = (name: 'runc' | 'runcvm' | 'runcvm template' | 'runcvm template (baseline)') => ({
    name,
    run: async () => void firsts[name]!.push((await timed('ctr', ctrRun(busybox, name === 'runc' ? false : name === 'runcvm' ? true : name === 'runcvm template' ? 'template' : 'baseline', echo)))[0]),
  });
  cases.push(await measureCase({ bench: BENCH, case: 'ctr run → exit (busybox, echo)', repetitions: START_REPS, notes: 'wall time from spawning ctr (or QEMU) to its exit; peak RSS only for bare QEMU (the runcvm VM runs under the containerd shim: see the idle-memory case)' }, [
    { name: 'bare qemu', run: async (sample) => void firsts['bare qemu']!.push((await timed('qemu-system-x86_64', bareArgs, 'ready', sample))[0]) },
    startVariant('runcvm'),
    startVariant('runcvm template'),
    ...(baseline ? [startVariant('runcvm template (baseline)')] : []),
    startVariant('runc'),
  ]));
  cases.push(derivedCase({ bench: BENCH, case: 'ctr run → first output', warmups: WARMUPS, repetitions: START_REPS, pairs: [['runcvm', 'runcvm template'], ['runcvm template', 'runc'], ...(baseline ? [['runcvm template (baseline)', 'runcvm template'] as [string, string]] : [])], notes: 'wall time from spawning ctr (or QEMU) to the first stdout line "ready"; runcvm template: restored from the VM template of the same shape (RUNCVM_TEMPLATE=on)' },
    Object.entries(firsts).map(([name, v]) => ({ name, values: v.slice(WARMUPS) }))));

  // 2. image size sweep, base disks cached (one untimed run of each first)
  const sizes: [string, string][] = [['10 MB', ten], ['100 MB', hundred], ['200 MB (debootstrap)', debian], ...(gig ? [['1 GB (debootstrap + 800 MB)', gig] as [string, string]] : [])];
  if (!NO_SWEEP) for (const [, ref] of sizes) await timed('ctr', ctrRun(ref, true, echo));
  if (!NO_SWEEP) cases.push(await measureCase({ bench: BENCH, case: 'runcvm start vs image size (cached base disk)', repetitions: SWEEP_REPS, warmups: 0, notes: `ctr run --rm IMAGE sh -c "echo ready" with the runcvm base disk already built (an untimed first run of each image builds it: that run is the warm-up); ${SWEEP_REPS} repetitions (capped: every run boots a VM under TCG)` },
    sizes.map(([label, ref]) => ({ name: `runcvm ${label}`, run: async () => void (await timed('ctr', ctrRun(ref, true, echo))) }))));

  // 3. ten at once
  const burst = (vm: Rt) => async () => {
    await Promise.all(Array.from({ length: 10 }, () => timed('ctr', ctrRun(busybox, vm, echo))));
  };
  cases.push(await measureCase({ bench: BENCH, case: '10 containers started at once', repetitions: BURST_REPS, warmups: 0, pairs: [['runcvm ×10', 'runcvm template ×10'], ...(baseline ? [['runcvm template (baseline) ×10', 'runcvm template ×10'] as [string, string]] : [])], notes: `10 × ctr run --rm busybox sh -c "echo ready" in parallel, wall time until all exited; ${BURST_REPS} repetitions (capped); 2 host cores, TCG; runcvm template ×10: all restored from one template` }, [
    { name: 'runc ×10', run: burst(false) },
    { name: 'runcvm ×10', run: burst(true) },
    { name: 'runcvm template ×10', run: burst('template') },
    ...(baseline ? [{ name: 'runcvm template (baseline) ×10', run: burst('baseline') }] : []),
  ]));

  // 4. host memory per idle microVM
  const qemuMemory = new Set<string>();
  const idle: Record<string, number[]> = { 'runc (sleep)': [], 'runcvm -m 256M': [], 'runcvm -m 512M': [] };
  const idleOnce = async (name: string, vm: boolean, limit?: number) => {
    const id = `idle${++n}`;
    await cd.ctr(['run', '-d', ...(vm ? ['--runc-binary', fx.wrapper] : []), ...(limit ? ['--memory-limit', String(limit)] : []), busybox, id, 'sleep', '100000'], { timeoutMs: 120_000 });
    try {
      let e = 0;
      await waitFor(`${id} to answer an exec`, async () => (await cd.ctr(['task', 'exec', '--exec-id', `w${++e}`, id, 'true'], { reject: false, timeoutMs: 60_000 })).exitCode === 0, { timeoutMs: 240_000, intervalMs: 500 });
      await new Promise((r) => setTimeout(r, 5000));
      const ls = await cd.ctr(['task', 'ls']);
      const pid = Number(ls.stdout.split('\n').find((l) => l.startsWith(`${id} `))?.trim().split(/\s+/)[1]);
      idle[name]!.push(treeRssKiB(pid) / 1024);
      if (vm) {
        // check that the VM really got the size asked for: the -m of the QEMU process in the container's tree
        const qemu = (await treeRows(pid)).find((r) => r.some((a) => a.includes('qemu-system')));
        const m = qemu ? qemu[qemu.indexOf('-m') + 1] : undefined;
        qemuMemory.add(`${name}: QEMU -m ${m ?? 'not found'}`);
      }
    } finally {
      await cd.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id], { reject: false });
      await waitFor(`${id} to stop`, async () => !(await cd.ctr(['task', 'ls'], { reject: false })).stdout.includes(`${id} `) || (await cd.ctr(['task', 'delete', '-f', id], { reject: false, timeoutMs: 60_000 })).exitCode === 0, { timeoutMs: 60_000, intervalMs: 500 }).catch(() => undefined);
      await cd.ctr(['containers', 'rm', id], { reject: false });
    }
  };
  for (let i = 0; i < IDLE_REPS; i++) {
    await idleOnce('runc (sleep)', false);
    await idleOnce('runcvm -m 256M', true, 256 * 2 ** 20);
    await idleOnce('runcvm -m 512M', true, 512 * 2 ** 20);
  }
  cases.push(derivedCase({ bench: BENCH, case: 'host memory per idle container', unit: 'MiB', warmups: 0, repetitions: IDLE_REPS, notes: 'RSS summed over the container\'s process tree (runc: the sleep; runcvm: launcher + QEMU) 5 s after the guest answered an exec; the containerd shim (same for both) is not counted; ratios are against the runc container; guest RAM is touched lazily, so RSS hardly depends on -m' + (qemuMemory.size ? ` (checked: ${[...qemuMemory].join(', ')})` : '') },
    Object.entries(idle).map(([name, values]) => ({ name, values }))));

  // 4b. PSS per idle container, BENCH_PSS_COUNT of each kind side by side (what templates share shows only between
  // mappers, so the figure depends on how many there are): started in steps (2, then 2 more: the counts cost only the
  // largest), each step measured once its new containers answered an exec and BENCH_PSS_SETTLE_S passed
  const pssCounts = [...new Set((process.env.BENCH_PSS_COUNT ?? '2,4').split(',').map(Number).filter((c) => Number.isInteger(c) && c > 0))].sort((a, b) => a - b);
  const settleMs = envInt('BENCH_PSS_SETTLE_S', 15) * 1000;
  const kinds: [string, Rt][] = [['runc', false], ['runcvm cold', true], ['runcvm template', 'template']];
  const pssLoad = loadMark();
  // pss[count][kind]: the containers' totals; parts[count]['kind: process']: launcher / QEMU per container
  const pss = new Map<number, Record<string, number[]>>(pssCounts.map((c) => [c, {}]));
  const parts = new Map<number, Record<string, number[]>>(pssCounts.map((c) => [c, {}]));
  for (const [name, vm] of kinds) {
    const ids: string[] = [];
    try {
      for (const count of pssCounts) {
        const fresh = Array.from({ length: count - ids.length }, () => `pss${++n}`);
        ids.push(...fresh);
        for (const id of fresh) await cd.ctr(['run', '-d', ...rtFlags(vm), busybox, id, 'sleep', '100000'], { timeoutMs: 120_000 });
        for (const id of fresh) {
          let e = 0;
          await waitFor(`${id} to answer an exec`, async () => (await cd.ctr(['task', 'exec', '--exec-id', `w${++e}`, id, 'true'], { reject: false, timeoutMs: 60_000 })).exitCode === 0, { timeoutMs: 240_000, intervalMs: 500 });
        }
        await new Promise((r) => setTimeout(r, settleMs));
        const ls = await cd.ctr(['task', 'ls']);
        for (const id of ids) {
          const byRole = await treePssByRole(Number(ls.stdout.split('\n').find((l) => l.startsWith(`${id} `))?.trim().split(/\s+/)[1]));
          (pss.get(count)![name] ??= []).push(Object.values(byRole).reduce((a, b) => a + b, 0) / 1024);
          if (vm) for (const role of ['launcher', 'QEMU'] as const) (parts.get(count)![`${name}: ${role}`] ??= []).push((byRole[role] ?? 0) / 1024);
        }
      }
    } finally {
      for (const id of ids) {
        await cd.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id], { reject: false });
        await waitFor(`${id} to stop`, async () => !(await cd.ctr(['task', 'ls'], { reject: false })).stdout.includes(`${id} `) || (await cd.ctr(['task', 'delete', '-f', id], { reject: false, timeoutMs: 60_000 })).exitCode === 0, { timeoutMs: 60_000, intervalMs: 500 }).catch(() => undefined);
        await cd.ctr(['containers', 'rm', id], { reject: false });
      }
    }
  }
  const pssNotes = (count: number) => `PSS (smaps_rollup) summed over the container's process tree (runc: the sleep; runcvm: launcher + QEMU; the containerd shim is not counted) of ${count} idle containers of one kind running side by side (the kinds one after the other), ${settleMs / 1000} s after the last of them answered an exec; pages shared between processes (the node and QEMU binaries and libraries, the template's RAM file mapped privately by each restored VM) are divided between their mappers, so the more containers, the less each pays; BENCH_PSS_COUNT=${pssCounts.join(',')}, BENCH_PSS_SETTLE_S=${settleMs / 1000}`;
  const load = pssLoad.end();
  for (const count of pssCounts) {
    cases.push(derivedCase({ bench: BENCH, case: `host memory (PSS) per idle container, ${count} side by side, cold vs template`, unit: 'MiB', warmups: 0, repetitions: count, notes: `${pssNotes(count)}; ratios against runc`, load, pairs: [['runcvm template', 'runcvm cold']] },
      kinds.map(([name]) => ({ name, values: pss.get(count)![name] ?? [] }))));
    cases.push(derivedCase({ bench: BENCH, case: `host memory (PSS) per idle container by process, ${count} side by side`, unit: 'MiB', warmups: 0, repetitions: count, notes: `the same containers as "host memory (PSS) per idle container, ${count} side by side": the launcher (Node) and QEMU apart`, load, pairs: [['runcvm template: launcher', 'runcvm cold: launcher'], ['runcvm template: QEMU', 'runcvm cold: QEMU']] },
      Object.entries(parts.get(count)!).map(([name, values]) => ({ name, values }))));
  }

  // 5. pass-through verb
  const root = join(dir, 'runc-root');
  await mkdir(root);
  cases.push(await measureCase({ bench: BENCH, case: 'pass-through verb (list)', repetitions: Math.max(30, REPS * 6), warmups: 3, notes: 'bin/runcvm-runtime is a POSIX sh dispatcher that execs runc for pass-through verbs' }, [
    { name: 'runc', run: async () => void (await run('runc', ['--root', root, 'list'])) },
    { name: 'runcvm-runtime', run: async () => void (await run(projectPath('bin', 'runcvm-runtime'), ['--root', root, 'list'])) },
  ]));
  const pt = cases.at(-1)!;
  process.stdout.write(`pass-through overhead: ${(pt.variants[1]!.medianMs - pt.variants[0]!.medianMs).toFixed(1)} ms\n`);
  process.stdout.write(`results: ${writeResults(BENCH, cases, 'tcg', notes)}\n`);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await closers.close();
}
