/**
 * VM templates (issue 17), start-up only (not a test): `npx vite-node bench/runcvm-template-start.ts` (BENCH_ROUNDS)
 *
 * `ctr run` → first output line of busybox, with no network (loopback only), for a cold boot (RUNCVM_TEMPLATE=off)
 * and a restore from the template of the same shape (RUNCVM_TEMPLATE=on, built first by one container), rounds
 * interleaved so load elsewhere hits both alike; prints the medians, the ratio and `uptime` before and after; then
 * the QEMU PSS (smaps_rollup) of two idle VMs of each kind side by side.
 * bench/runcvm-start.ts will carry the full comparison (10 at once, PSS per idle VM) once templates are merged.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
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
  // host memory per idle VM: PSS of each QEMU (smaps_rollup) once two of each kind idle side by side
  const ids: string[] = [];
  for (const [i, w] of [cold, tmpl, cold, tmpl].entries()) {
    const id = `idle${i}`;
    await cd.ctr(['run', '-d', '--runc-binary', w, image, id, 'sleep', '600'], { timeoutMs: 120_000 });
    ids.push(id);
  }
  const qemus = async () => {
    const ps = await run('ps', ['-eo', 'pid,args'], { reject: false });
    const out: { pid: string; kind: 'cold' | 'template' }[] = [];
    for (const l of ps.stdout.split('\n').filter((x) => x.includes('qemu-system') && x.includes('/.runcvm/'))) {
      const pid = l.trim().split(/\s+/)[0]!;
      const mi = await readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '');
      if (mi.includes(fx.dir)) out.push({ pid, kind: l.includes('-incoming') ? 'template' : 'cold' });
    }
    return out;
  };
  for (let i = 0; i < 120 && (await qemus()).length < 4; i++) await new Promise((r) => setTimeout(r, 1000));
  await new Promise((r) => setTimeout(r, 15_000)); // booted and idle (TCG: a cold boot takes seconds)
  const pss: Record<'cold' | 'template', number[]> = { cold: [], template: [] };
  for (const q of await qemus()) {
    const m = /^Pss:\s+(\d+) kB/m.exec(await readFile(`/proc/${q.pid}/smaps_rollup`, 'utf8').catch(() => ''));
    if (m) pss[q.kind].push(Number(m[1]));
  }
  for (const id of ids) {
    await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id], { reject: false });
    await new Promise((r) => setTimeout(r, 500));
    await cd.ctr(['task', 'delete', '-f', id], { reject: false });
    await cd.ctr(['container', 'delete', id], { reject: false });
  }
  const after = await uptime();
  const c = median(times.cold);
  const t = median(times.template);
  process.stdout.write(
    `QEMU PSS per idle VM (KiB, 2 of each side by side): cold ${pss.cold.join(', ')}; template ${pss.template.join(', ')}` +
      (pss.cold.length && pss.template.length ? ` (template/cold ×${(median(pss.template) / median(pss.cold)).toFixed(2)})\n` : '\n'),
  );
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
