/**
 * Where a runcvm start's time goes, cold vs template (issue 17; not a test): `npx vite-node bench/runcvm-template-phases.ts`
 * (BENCH_ROUNDS, default 3). Interleaved rounds of `ctr run --rm busybox sh -c "echo ready"` booted cold and restored
 * from the VM template; each run's launcher logs its `start-up phases` line (launcher/main.ts, ms since the
 * launcher process started) at info, which this reads from ctr's stderr (RUNCVM_LOG_LEVEL=INFO) and lines up with
 * ctr's spawn and the first output line: ctr → launcher process (ctr, shim, runtime create, runc, Node start), Node
 * → main (module loading), main → spawn (network, volumes, template checks, plan), spawn → cont (QEMU start + the
 * restore), cont → resumed (the guest's first frame: runcvm-resume, modules, root mount, switch_root, runcvm-init
 * opening the port), resumed → ready (runcvm-init's phases), ready → output (the workload), output → ctr's line.
 * Prints medians per phase and `uptime` before/after. Finer guest marks: put `echo "TMARK name" >/dev/console` lines in
 * a local build's initramfs /init (the console is the container's stdout) and list them in BENCH_MARKS=a,b: each
 * is timed when its line reaches ctr's stdout (not for committing: the console must stay the workload's own).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec/index.js';
import { CloserStack } from '../src/core/fsx/index.js';
import { busyboxRuntime } from './lib/busybox-runtime.js';
import { waitFor } from '../test/harness/wait.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const closers = new CloserStack();

type Row = Record<string, number>;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2 : NaN;
}

/** one run: ctr spawn → first "ready" line, and the launcher's phases rebased on ctr's spawn (ms) */
async function once(args: string[]): Promise<Row> {
  const t0 = Date.now();
  let first = NaN;
  const marks: Record<string, number> = {};
  const r = await run('ctr', args, {
    reject: false,
    timeoutMs: 300_000,
    onStdoutLine: (l) => {
      if (Number.isNaN(first) && l.includes('ready')) first = Date.now() - t0;
      const mk = /TMARK (\S+)/.exec(l);
      if (mk) marks[mk[1]!] = Date.now() - t0;
    },
  });
  const line = r.stderr.split('\n').find((l) => l.includes('start-up phases'));
  if (r.exitCode !== 0 || Number.isNaN(first) || !line) throw new Error(`${r.command}: exit ${r.exitCode}: ${r.stderr.slice(-1500)}`);
  const f: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+)=(\d+)/g)) f[m[1]!] = Number(m[2]);
  const base = f.at! - t0;
  const row: Row = { launcher: base, first };
  for (const [k, v] of Object.entries(f)) if (k !== 'at') row[k] = base + v;
  Object.assign(row, marks);
  row.fromTemplate = r.stderr.includes('template: restored') ? 1 : 0;
  return row;
}

try {
  const { up0, fx, cd, busybox } = await busyboxRuntime(closers);
  const tmpl = await fx.wrapperWith('runcvm-runtime-tmpl', { RUNCVM_TEMPLATE: 'on' });
  let n = 0;
  const args = (wrapper: string) => ['--address', cd.socket, '-n', cd.namespace, 'run', '--rm', '--runc-binary', wrapper, '--env', 'RUNCVM_LOG_LEVEL=INFO', busybox, `p${++n}`, 'sh', '-c', 'echo ready'];
  await once(args(tmpl)); // cold, starts the builder
  const tdir = join(fx.cacheDir, 'templates');
  await waitFor('the VM template', async () => {
    for (const name of await readdir(tdir).catch(() => [] as string[])) if (/^[0-9a-f]{64}$/.test(name) && (await stat(join(tdir, name, 'manifest.json')).then(() => true, () => false))) return true;
    return false;
  }, { timeoutMs: 300_000, intervalMs: 1000 });
  await once(args(tmpl)); // warm-up restore
  const rows: Record<string, Row[]> = { cold: [], template: [] };
  for (let i = 0; i < ROUNDS; i++) {
    rows.cold!.push(await once(args(fx.wrapper)));
    const t = await once(args(tmpl));
    if (!t.fromTemplate) throw new Error('the template run was not restored');
    rows.template!.push(t);
  }
  const order = ['launcher', 'main', 'listening', 'spawn', 'cont', 'restored', ...(process.env.BENCH_MARKS ?? '').split(',').filter(Boolean), 'resumed', 'started', 'ready', 'output', 'first'];
  process.stdout.write(`uptime before: ${up0}\nuptime after:  ${(await run('uptime', [])).stdout.trim()}\n`);
  process.stdout.write(`median ms since ctr spawn (${ROUNDS} interleaved rounds)\n${'phase'.padEnd(10)} ${'cold'.padStart(7)} ${'template'.padStart(9)}\n`);
  for (const k of order) {
    const c = median(rows.cold!.map((r) => r[k]!).filter((v) => v !== undefined));
    const t = median(rows.template!.map((r) => r[k]!).filter((v) => v !== undefined));
    process.stdout.write(`${k.padEnd(10)} ${Number.isNaN(c) ? '-'.padStart(7) : c.toFixed(0).padStart(7)} ${Number.isNaN(t) ? '-'.padStart(9) : t.toFixed(0).padStart(9)}\n`);
  }
  process.stdout.write(`raw: ${JSON.stringify(rows)}\n`);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await closers.close();
}
