/**
 * Where the host side of a runcvm start goes, before the launcher runs (issue 17; not a test):
 * `npx vite-node bench/runcvm-host-phases.ts` (BENCH_ROUNDS, default 5; BENCH_TEMPLATE=off for cold boots).
 * `ctr run --rm busybox sh -c "echo ready"` through a wrapper that stamps each runtime verb's entry and exit and runs
 * (BENCH_STRACE=on) `create`'s node under `strace -tt -f -b execve` (children detached at their execve)
 * to split create into node start-up → runc spawn → runc exit → node exit. Lines it up with ctr's spawn and the
 * launcher's `start-up phases` line; prints medians (ms since ctr's spawn) and `uptime`. BENCH_BASELINE=/abs/dispatcher
 * (e.g. an older bin/runcvm-runtime saved beside it, `git show REV:bin/runcvm-runtime > bin/.runcvm-runtime-REV`)
 * interleaves its rounds with this tree's and prints both columns and their difference; BENCH_BASELINE_GUEST_DIR gives
 * the baseline another guest package (e.g. `cp -al var/assets/guest DIR && rm DIR/lib/runcvm/launcher.blob.key`:
 * the launcher without its snapshot). BENCH_TREE_FIRST=1 runs this tree's variant first in each round; BENCH_BURST=N
 * adds N containers started at once per variant and round.
 */
import { readFile, readdir, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec/index.js';
import { CloserStack } from '../src/core/fsx/index.js';
import { busyboxRuntime } from './lib/busybox-runtime.js';
import { RUNTIME_BIN } from '../test/e2e/runcvm/setup.js';
import { waitFor } from '../test/harness/wait.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const TEMPLATE = process.env.BENCH_TEMPLATE !== 'off';
const STRACE = process.env.BENCH_STRACE === 'on'; // its node wrapper is not the node the snapshot was built by: no snapshot
const closers = new CloserStack();
type Row = Record<string, number>;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2 : NaN;
}

/** HH:MM:SS.micro (strace -tt, local time) → ms since the epoch, on the day of `ref` */
function straceMs(t: string, ref: number): number {
  const [h, m, s] = t.split(':');
  const d = new Date(ref);
  d.setHours(Number(h), Number(m), 0, 0);
  return d.getTime() + Number(s) * 1000;
}

try {
  const { up0, fx, cd, busybox } = await busyboxRuntime(closers);
  const log = join(fx.dir, 'verbs.log');
  const straceOut = join(fx.dir, 'create.strace');
  const nodeWrap = join(fx.dir, 'node-traced');
  await writeFile(nodeWrap, `#!/bin/sh\nexec strace -tt -f -b execve -e trace=execve,clone,vfork,wait4,exit_group,openat -o '${straceOut}' node "$@"\n`);
  await chmod(nodeWrap, 0o755);
  const env: Record<string, string> = { RUNCVM_TEMPLATE: TEMPLATE ? 'on' : 'off', ...(STRACE ? { RUNCVM_NODE: nodeWrap } : {}) };
  const exports = Object.entries({ RUNCVM_STATE_DIR: fx.stateDir, RUNCVM_CACHE_DIR: fx.cacheDir, RUNCVM_LOG_DIR: fx.logDir, ...env }).map(([k, v]) => `export ${k}='${v}'`).join('\n');
  const traced = async (name: string, bin: string, extra = '') => {
    const path = join(fx.dir, name);
    await writeFile(path, `#!/bin/sh\n${exports}\n${extra}t0=$(date +%s%N)\nverb=\nfor a; do case "$a" in create|start|delete|kill|state) verb=$a; break ;; esac; done\n'${bin}' "$@"\nrc=$?\necho "$verb $t0 $(date +%s%N)" >> '${log}'\nexit $rc\n`);
    await chmod(path, 0o755);
    return path;
  };
  const variants: Record<string, string> = { ...(process.env.BENCH_BASELINE ? { baseline: await traced('baseline', process.env.BENCH_BASELINE, process.env.BENCH_BASELINE_GUEST_DIR ? `export RUNCVM_GUEST_DIR='${process.env.BENCH_BASELINE_GUEST_DIR}'\n` : '') } : {}), tree: await traced('traced', RUNTIME_BIN) };
  // BENCH_TREE_FIRST=1: this tree's run first in each round (an order effect shows as a swapped difference)
  const order = process.env.BENCH_TREE_FIRST ? Object.keys(variants).reverse() : Object.keys(variants);
  let n = 0;
  const once = async (wrapper: string): Promise<Row> => {
    await rm(log, { force: true });
    await rm(straceOut, { force: true });
    const t0 = Date.now();
    let first = NaN;
    const r = await run('ctr', ['--address', cd.socket, '-n', cd.namespace, 'run', '--rm', '--runc-binary', wrapper, '--env', 'RUNCVM_LOG_LEVEL=INFO', busybox, `h${++n}`, 'sh', '-c', 'echo ready'], {
      reject: false, timeoutMs: 300_000,
      onStdoutLine: (l) => { if (Number.isNaN(first) && l.includes('ready')) first = Date.now() - t0; },
    });
    const end = Date.now() - t0;
    const line = r.stderr.split('\n').find((l) => l.includes('start-up phases'));
    if (r.exitCode !== 0 || !line) throw new Error(`${r.command}: exit ${r.exitCode}: ${r.stderr.slice(-1500)}`);
    const row: Row = { first, end, fromTemplate: r.stderr.includes('template: restored') ? 1 : 0 };
    const f: Record<string, number> = {};
    for (const m of line.matchAll(/(\w+)=(\d+)/g)) f[m[1]!] = Number(m[2]);
    row.launcher = f.at! - t0;
    row.launcherMain = f.at! - t0 + (f.main ?? NaN);
    for (const l of (await readFile(log, 'utf8')).trim().split('\n')) {
      const [verb, a, b] = l.split(' ');
      if (!verb || row[`${verb}>`] !== undefined) continue;
      row[`${verb}>`] = Number(BigInt(a!) / 1000000n) - t0;
      row[`${verb}<`] = Number(BigInt(b!) / 1000000n) - t0;
    }
    if (STRACE) {
      if (process.env.BENCH_KEEP) await writeFile(join(process.env.BENCH_KEEP, `create-${n}.strace`), await readFile(straceOut));
      const st = (await readFile(straceOut, 'utf8')).trim().split('\n');
      // `strace -f -o` prefixes each line with its pid: the time is the first HH:MM:SS.micro field
      const at = (re: RegExp) => { const l = st.find((x) => re.test(x)); const t = l?.match(/\d+:\d+:\d+\.\d+/)?.[0]; return t ? straceMs(t, t0) - t0 : NaN; };
      row['node.execve'] = at(/ execve\(/);
      row['node.spawn'] = at(/ clone3?\(|vfork\(/);
      row['node.wait4'] = at(/ wait4\(/);
      row['node.exit'] = at(/ exit_group\(/);
    }
    return row;
  };
  if (TEMPLATE) {
    await once(variants.tree!);
    const tdir = join(fx.cacheDir, 'templates');
    await waitFor('the VM template', async () => {
      for (const name of await readdir(tdir).catch(() => [] as string[])) if (/^[0-9a-f]{64}$/.test(name) && (await stat(join(tdir, name, 'manifest.json')).then(() => true, () => false))) return true;
      return false;
    }, { timeoutMs: 300_000, intervalMs: 1000 });
  }
  for (const w of Object.values(variants)) await once(w);
  const rows: Record<string, Row[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < ROUNDS; i++) for (const k of order) rows[k]!.push(await once(variants[k]!));
  // BENCH_BURST=N: then N containers at once per variant and round (wall time until all exited)
  const BURST = Number(process.env.BENCH_BURST ?? 0);
  const bursts: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; BURST && i < ROUNDS; i++) {
    for (const k of order) {
      const t0 = Date.now();
      await Promise.all(Array.from({ length: BURST }, () => run('ctr', ['--address', cd.socket, '-n', cd.namespace, 'run', '--rm', '--runc-binary', variants[k]!, busybox, `h${++n}`, 'sh', '-c', 'echo ready'], { timeoutMs: 600_000 })));
      bursts[k]!.push(Date.now() - t0);
    }
  }
  process.stdout.write(`uptime before: ${up0}\nuptime after:  ${(await run('uptime', [])).stdout.trim()}\n`);
  const keys = ['create>', 'node.execve', 'node.spawn', 'node.wait4', 'node.exit', 'create<', 'start>', 'start<', 'launcher', 'launcherMain', 'first', 'delete>', 'end'];
  const med = (rs: Row[], k: string) => median(rs.map((r) => r[k]!).filter((v) => v !== undefined && !Number.isNaN(v)));
  process.stdout.write(`median ms since ctr spawn, ${ROUNDS} interleaved rounds, template ${TEMPLATE ? 'on' : 'off'}, restored ${Object.values(rows).flat().filter((r) => r.fromTemplate).length}/${Object.values(rows).flat().length}\n`);
  process.stdout.write(`${'phase'.padEnd(13)}${Object.keys(rows).map((k) => k.padStart(9)).join('')}${rows.baseline ? '     diff' : ''}\n`);
  for (const k of keys) {
    const v = Object.values(rows).map((rs) => med(rs, k));
    process.stdout.write(`${k.padEnd(13)}${v.map((x) => x.toFixed(0).padStart(9)).join('')}${rows.baseline ? (v[1]! - v[0]!).toFixed(0).padStart(9) : ''}\n`);
  }
  if (BURST) process.stdout.write(`${BURST} at once, ms until all exited: ${Object.entries(bursts).map(([k, v]) => `${k} median ${median(v).toFixed(0)} [${v.join(', ')}]`).join('; ')}\n`);
  process.stdout.write(`raw: ${JSON.stringify(rows)}\n`);
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await closers.close();
}
