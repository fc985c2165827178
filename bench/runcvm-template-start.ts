/**
 * VM templates (issue 17), start-up only (not a test): `npx vite-node bench/runcvm-template-start.ts` (BENCH_ROUNDS)
 *
 * `ctr run` → first output line of busybox, with no network (loopback only), for a cold boot (RUNCVM_TEMPLATE=off)
 * and a restore from the template of the same shape (RUNCVM_TEMPLATE=on, built first by one container), rounds
 * interleaved so load elsewhere hits both alike; prints the medians, the ratio and `uptime` before and after.
 * bench/runcvm-start.ts will carry the full comparison (10 at once, PSS per idle VM) once templates are merged.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec/index.js';
import { CloserStack } from '../src/core/fsx/index.js';
import { startRuncvmSuite } from '../test/e2e/runcvm/setup.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const closers = new CloserStack();

async function uptime(): Promise<string> {
  return (await run('uptime', [], { reject: false })).stdout.trim().replace(/^.*load average: /, 'load ');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { fx, cd, image } = await startRuncvmSuite(closers);
  const cold = await fx.wrapperWith('runcvm-cold', { RUNCVM_TEMPLATE: 'off' });
  const tmpl = await fx.wrapperWith('runcvm-tmpl', { RUNCVM_TEMPLATE: 'on' });
  let seq = 0;
  const first = async (wrapper: string): Promise<{ ms: number; stderr: string }> => {
    const t0 = performance.now();
    let ms = NaN;
    const r = await cd.ctr(['run', '--rm', '--runc-binary', wrapper, '--env', 'RUNCVM_LOG_LEVEL=INFO', image, `b${++seq}`, 'echo', 'ready'], {
      reject: false,
      timeoutMs: 300_000,
      onStdoutLine: (l: string) => {
        if (Number.isNaN(ms) && l.includes('ready')) ms = performance.now() - t0;
      },
    });
    if (r.exitCode !== 0 || Number.isNaN(ms)) throw new Error(`ctr run: exit ${r.exitCode}: ${r.stderr.slice(-1000)}`);
    return { ms, stderr: r.stderr };
  };
  // the first container of the shape boots cold and starts the builder; wait for its template
  await first(tmpl);
  const dir = join(fx.cacheDir, 'templates');
  for (let i = 0; i < 300; i++) {
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}$/.test(n));
    if (names.length && (await stat(join(dir, names[0]!, 'manifest.json')).then(() => true, () => false))) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const before = await uptime();
  const times: Record<'cold' | 'template', number[]> = { cold: [], template: [] };
  for (let round = 0; round < ROUNDS; round++) {
    // alternate which goes first in a round
    const order: ('cold' | 'template')[] = round % 2 ? ['template', 'cold'] : ['cold', 'template'];
    for (const v of order) {
      const r = await first(v === 'cold' ? cold : tmpl);
      if (v === 'template' && !r.stderr.includes('template: restored')) throw new Error(`not restored: ${r.stderr.slice(-1500)}`);
      times[v].push(r.ms);
    }
  }
  const after = await uptime();
  const c = median(times.cold);
  const t = median(times.template);
  process.stdout.write(
    `ctr run → first output (${ROUNDS} interleaved rounds, ${before} → ${after})\n` +
      `  cold boot: median ${(c / 1000).toFixed(2)} s  [${times.cold.map((x) => (x / 1000).toFixed(2)).join(', ')}]\n` +
      `  template:  median ${(t / 1000).toFixed(2)} s  [${times.template.map((x) => (x / 1000).toFixed(2)).join(', ')}]\n` +
      `  ratio cold / template: ×${(c / t).toFixed(2)}\n`,
  );
}

try {
  await main();
} finally {
  await closers.close();
}
