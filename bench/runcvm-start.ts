/**
 * runcvm start-up benchmark (not a test): `npx vite-node bench/runcvm-start.ts [REPS]`
 *
 * 1. `ctr run` → first output line and → exit, for runc, runcvm, and the bare hypervisor booting the same kernel and
 *    initramfs to a trivial init (the floor on this machine; target runcvm / bare ≤ 1.15).
 * 2. a 10 MB and a 200 MB image once their base disks are cached (target: within 10 % of each other).
 * 3. the added cost of a pass-through verb (`list`) through bin/runcvm-runtime over runc itself (target < 5 ms).
 * Variants are interleaved so load elsewhere on the machine hits them alike. Results: bench/results/runcvm-start.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec/index.js';
import { CloserStack, tempDir } from '../src/core/fsx/index.js';
import { projectPath } from '../src/core/paths.js';
import { cpuKhzFromCpuinfo } from '../src/runcvm/hypervisor/accel.js';
import { kernelCmdline } from '../src/runcvm/hypervisor/index.js';
import { startContainerd } from '../test/harness/services/containerd.js';
import { startRegistry } from '../test/harness/services/registry.js';
import { pushBusyboxImage, pushDebootstrapImage } from '../test/harness/images.js';
import { pushVariant, runtimeFixture } from '../test/e2e/runcvm/setup.js';
import { measureCase, median, type CaseResult } from './lib/measure.js';
import { writeResults } from './lib/report.js';
import { readFileSync } from 'node:fs';

const REPS = Number(process.argv[2] ?? 3);
const closers = new CloserStack();
const cases: CaseResult[] = [];

const TRIVIAL_INIT = `#include <fcntl.h>
#include <unistd.h>
#include <sys/reboot.h>
int main(void) { int fd = open("/dev/console", O_WRONLY); write(fd, "ready\\n", 6); sync(); reboot(RB_POWER_OFF); return 0; }
`;

/** Run a command, resolving with [ms to the first stdout line containing `marker`, ms to exit]. */
async function timed(file: string, args: string[], marker = 'ready'): Promise<[number, number]> {
  const t0 = performance.now();
  let first = NaN;
  await run(file, args, {
    reject: false,
    timeoutMs: 180_000,
    onStdoutLine: (l) => {
      if (Number.isNaN(first) && l.includes(marker)) first = performance.now() - t0;
    },
  });
  return [first, performance.now() - t0];
}

try {
  const fx = await runtimeFixture(closers);
  const dir = await tempDir('runcvm-bench', closers);
  const reg = await startRegistry();
  closers.push('registry', () => reg.stop());
  const cd = await startContainerd();
  closers.push('containerd', () => cd.stop());
  const busybox = await pushBusyboxImage(reg);
  const small = await pushVariant(reg, 'ten-mb', { bigFileMiB: 7 });
  const debian = await pushDebootstrapImage(reg);
  for (const ref of [busybox, small, debian]) await cd.ctr(['images', 'pull', '--plain-http', ref], { timeoutMs: 600_000 });

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
  const firsts: Record<string, number[]> = { runc: [], runcvm: [], 'bare qemu': [] };
  const ctrVariant = (name: 'runc' | 'runcvm', image: string, cmd = ['sh', '-c', 'echo ready']) => ({
    name,
    run: async () => {
      const flags = name === 'runcvm' ? ['--runc-binary', fx.wrapper] : [];
      const [first] = await timed('ctr', ['--address', cd.socket, '-n', cd.namespace, 'run', '--rm', ...flags, image, `b${++n}`, ...cmd]);
      firsts[name]!.push(first);
    },
  });
  const start = await measureCase({ bench: 'runcvm-start', case: 'ctr run → exit (busybox, echo)', repetitions: REPS, warmups: 1 }, [
    { name: 'bare qemu', run: async () => void firsts['bare qemu']!.push((await timed('qemu-system-x86_64', bareArgs))[0]) },
    ctrVariant('runcvm', busybox),
    ctrVariant('runc', busybox),
  ]);
  cases.push(start);
  const firstLine = Object.fromEntries(Object.entries(firsts).map(([k, v]) => [k, Math.round(median(v.slice(1)))]));
  const bare = firstLine['bare qemu']!;
  const firstCase: CaseResult = {
    bench: 'runcvm-start',
    case: 'ctr run → first output',
    baseline: 'bare qemu',
    variants: Object.entries(firsts).map(([name, v]) => ({ name, timesMs: v.slice(1).map(Math.round), medianMs: firstLine[name]!, minMs: Math.round(Math.min(...v.slice(1))), maxMs: Math.round(Math.max(...v.slice(1))) })),
    ratios: Object.fromEntries(Object.entries(firstLine).map(([k, v]) => [k, Math.round((v / bare) * 1000) / 1000])),
  };
  cases.push(firstCase);
  process.stdout.write(`runcvm-start / ctr run → first output: ${JSON.stringify(firstLine)} ratios ${JSON.stringify(firstCase.ratios)}\n`);

  cases.push(
    await measureCase({ bench: 'runcvm-start', case: 'cached base disk: 10 MB vs 200 MB image', repetitions: REPS, warmups: 1 }, [
      ctrVariant('runcvm', small),
      { ...ctrVariant('runcvm', debian), name: 'runcvm 200 MB' },
    ]),
  );

  const root = join(dir, 'runc-root');
  await mkdir(root);
  cases.push(
    await measureCase({ bench: 'runcvm-start', case: 'pass-through verb (list)', repetitions: Math.max(30, REPS * 10), warmups: 3 }, [
      { name: 'runc', run: async () => void (await run('runc', ['--root', root, 'list'])) },
      { name: 'runcvm-runtime', run: async () => void (await run(projectPath('bin', 'runcvm-runtime'), ['--root', root, 'list'])) },
    ]),
  );
  const pt = cases.at(-1)!;
  process.stdout.write(`pass-through overhead: ${(pt.variants[1]!.medianMs - pt.variants[0]!.medianMs).toFixed(1)} ms\n`);
  process.stdout.write(`results: ${writeResults('runcvm-start', cases, 'tcg')}\n`);
} finally {
  await closers.close();
}
