/**
 * Benchmark measurement: fixed warm-ups and repetitions, A/B(/C…) interleaved so that machine noise hits every
 * variant alike, wall time per run and peak memory (RSS summed over the process tree) sampled from /proc.
 * Results are plain data; bench/lib/report.ts writes them to JSON and draws the SVG plots.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

export interface Variant {
  name: string;
  /** runs one measured iteration; returns the root pid to sample for memory, if any */
  run: (sample: (pid: number) => void) => Promise<void>;
  /** optional untimed preparation before every iteration (e.g. clearing a cache for "cold") */
  before?: () => Promise<void>;
}

/** A positive integer from the environment, or the default (BENCH_REPS=1 for a quick check of every bench). */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? NaN : Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

/** Fixed repetitions and warm-ups for every bench: 5 and 1 unless BENCH_REPS / BENCH_WARMUPS say otherwise. */
export const REPS = envInt('BENCH_REPS', 5);
export const WARMUPS = envInt('BENCH_WARMUPS', 1);

/** Repetitions capped for expensive cases (e.g. 1 GB images, VM boots under TCG); the cap is recorded in notes. */
export function repsAtMost(cap: number): number {
  return Math.max(1, Math.min(REPS, cap));
}

export interface VariantResult {
  name: string;
  timesMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  peakRssMiB?: number;
  /**
   * median CPU time (user + system, ms) of the run's child processes and their descendants as they were waited for
   * (this process's cutime + cstime): what the variant cost the machine, far less noisy under load than wall time
   */
  cpuMs?: number;
}

export interface CaseResult {
  bench: string;
  case: string;
  baseline: string;
  variants: VariantResult[];
  /** median of each variant over the baseline's median */
  ratios: Record<string, number>;
  /** what medianMs/minMs/maxMs/timesMs hold when the case is not a wall time (e.g. 'MiB' for idle memory) */
  unit?: string;
  warmups?: number;
  repetitions?: number;
  notes?: string;
  /** 1/5/15-minute load averages when the case started and ended (the machine is shared: every figure carries it) */
  load?: CaseLoad;
  /** ratios between two named variants (e.g. runcvm / bare VM, runcvm / runc) besides the ratios to the baseline */
  pairs?: PairRatio[];
}

export interface CaseLoad {
  start: number[];
  end: number[];
}

export interface PairRatio {
  of: string;
  to: string;
  /** median over the interleaved rounds of of[i] / to[i] (noise in one round hits both); ratio of medians if unpaired */
  ratio: number;
  /** median(of) / median(to) */
  ratioOfMedians: number;
  /** the per-round ratios (interleaved rounds only), for their spread */
  rounds?: number[];
  /** spread of the per-round ratios: min, quartiles, max */
  spread?: { min: number; q1: number; q3: number; max: number };
  /** the same from the CPU time of each run's process tree (measureCase): load stretches it far less than wall time */
  cpu?: { ratio: number; spread?: { min: number; q1: number; q3: number; max: number } };
}

const roundLoad = () => loadavg().map((x) => Math.round(x * 100) / 100);

/** The load now; `end()` gives the case's {start, end}. */
export function loadMark(): { end: () => CaseLoad } {
  const start = roundLoad();
  return { end: () => ({ start, end: roundLoad() }) };
}

/** Pair ratios from per-round values (index i of each list is the same interleaved round). */
export function pairRatios(values: Map<string, number[]>, pairs: readonly (readonly [string, string])[]): PairRatio[] {
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return pairs.flatMap(([of, to]) => {
    const a = values.get(of)?.filter(Number.isFinite) ?? [];
    const b = values.get(to)?.filter(Number.isFinite) ?? [];
    // a zero below the line (e.g. a 10 ms timer reading 0 for a page-cache read) gives no ratio
    if (!a.length || !b.length || median(b) <= 0) return [];
    const ratioOfMedians = median(a) / median(b);
    const rounds = a.length === b.length ? a.map((x, i) => x / b[i]!).filter(Number.isFinite) : [];
    const paired = rounds.length ? median(rounds) : ratioOfMedians;
    const out: PairRatio = { of, to, ratio: r3(paired), ratioOfMedians: r3(ratioOfMedians) };
    if (rounds.length > 1) {
      out.rounds = rounds.map(r3);
      out.spread = { min: r3(Math.min(...rounds)), q1: r3(quantile(rounds, 0.25)), q3: r3(quantile(rounds, 0.75)), max: r3(Math.max(...rounds)) };
    }
    return [out];
  });
}

/** Linear-interpolated quantile (q in [0, 1]); median(v) === quantile(v, 0.5). */
export function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (at - lo);
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** CPU time of this process's waited-for children, in ms (/proc/self/stat cutime + cstime; 10 ms ticks). */
export function childrenCpuMs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 16 and 17 of stat(5), counted from 1 with pid and comm before the ')' cut
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return NaN;
  }
}

function childrenOf(pid: number): number[] {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    const kids: number[] = [];
    for (const t of tasks) {
      const text = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (text) kids.push(...text.split(/\s+/).map(Number));
    }
    return kids;
  } catch {
    return [];
  }
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Sum of RSS over a process and all its descendants, in KiB. */
export function treeRssKiB(root: number): number {
  let total = 0;
  const stack = [root];
  const seen = new Set<number>();
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += rssKiB(pid);
    stack.push(...childrenOf(pid));
  }
  return total;
}

/** Polls the tree RSS of the registered pids every 20 ms; returns the peak in MiB. */
class PeakSampler {
  private peak = 0;
  private readonly pids = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  start(): void {
    this.timer = setInterval(() => {
      let sum = 0;
      for (const p of this.pids) sum += treeRssKiB(p);
      if (sum > this.peak) this.peak = sum;
    }, 20);
  }
  add = (pid: number): void => {
    this.pids.add(pid);
  };
  stop(): number | undefined {
    if (this.timer) clearInterval(this.timer);
    return this.pids.size ? Math.round((this.peak / 1024) * 10) / 10 : undefined;
  }
}

export interface CaseOptions {
  bench: string;
  case: string;
  warmups?: number;
  repetitions?: number;
  notes?: string;
  /** extra ratios [of, to] to report, from the same interleaved rounds */
  pairs?: readonly (readonly [string, string])[];
  /**
   * reverse the order of the variants every other round (A B, B A, A B, …): what runs first in a round (a cooler
   * page cache, a load spike as the round starts) does not always favour the same variant
   */
  alternate?: boolean;
  /** print each round's times and the load as it ends (long cases on a shared machine) */
  roundLines?: boolean;
}

/** Runs the variants interleaved (A B C, A B C, …); the first variant is the baseline for the ratios. */
export async function measureCase(options: CaseOptions, variants: Variant[]): Promise<CaseResult> {
  const warmups = options.warmups ?? WARMUPS;
  const reps = options.repetitions ?? REPS;
  const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const cpu = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const peaks = new Map<string, number>();
  const load = loadMark();
  for (let i = 0; i < warmups + reps; i++) {
    const order = options.alternate && i % 2 === 1 ? [...variants].reverse() : variants;
    const round: string[] = [];
    for (const v of order) {
      if (v.before) await v.before();
      const sampler = new PeakSampler();
      sampler.start();
      const c0 = childrenCpuMs();
      const t0 = performance.now();
      // a failed run stops its sampler too: its interval timer would keep the bench process alive after the error
      await v.run(sampler.add).catch((err: unknown) => {
        sampler.stop();
        throw err;
      });
      const dt = performance.now() - t0;
      const dc = childrenCpuMs() - c0;
      const peak = sampler.stop();
      if (i >= warmups) {
        times.get(v.name)!.push(dt);
        cpu.get(v.name)!.push(dc);
        if (peak !== undefined) peaks.set(v.name, Math.max(peaks.get(v.name) ?? 0, peak));
      }
      round.push(`${v.name} ${Math.round(dt)} ms (cpu ${dc})`);
    }
    if (options.roundLines) process.stdout.write(`  ${i < warmups ? 'warm-up' : `round ${i - warmups + 1}/${reps}`}: ${round.join(', ')}; load ${roundLoad()[0]}\n`);
  }
  const results: VariantResult[] = variants.map((v) => {
    const t = times.get(v.name)!;
    const r: VariantResult = {
      name: v.name,
      timesMs: t.map((x) => Math.round(x * 10) / 10),
      medianMs: Math.round(median(t) * 10) / 10,
      minMs: Math.round(Math.min(...t) * 10) / 10,
      maxMs: Math.round(Math.max(...t) * 10) / 10,
    };
    const peak = peaks.get(v.name);
    if (peak !== undefined) r.peakRssMiB = peak;
    const c = cpu.get(v.name)!.filter(Number.isFinite);
    if (c.length) r.cpuMs = Math.round(median(c));
    return r;
  });
  const base = results[0]!.medianMs;
  const ratios = Object.fromEntries(results.map((r) => [r.name, Math.round((r.medianMs / base) * 1000) / 1000]));
  const out: CaseResult = { bench: options.bench, case: options.case, baseline: results[0]!.name, variants: results, ratios, warmups, repetitions: reps, load: load.end() };
  if (options.notes) out.notes = options.notes;
  if (options.pairs) {
    const byCpu = new Map(pairRatios(cpu, options.pairs).map((p) => [`${p.of}\n${p.to}`, p]));
    out.pairs = pairRatios(times, options.pairs).map((p) => {
      const c = byCpu.get(`${p.of}\n${p.to}`);
      return c ? { ...p, cpu: { ratio: c.ratio, ...(c.spread ? { spread: c.spread } : {}) } } : p;
    });
  }
  printCase(out);
  return out;
}

/** A case built from values measured inside the variants (e.g. time to first output, idle RSS): same shape and ratios. */
export function derivedCase(
  options: { bench: string; case: string; unit?: string; notes?: string; warmups?: number; repetitions?: number; load?: CaseLoad; pairs?: readonly (readonly [string, string])[] },
  values: { name: string; values: number[] }[],
): CaseResult {
  const round = (x: number) => Math.round(x * 10) / 10;
  const variants: VariantResult[] = values.map(({ name, values: v }) => {
    const ok = v.filter((x) => Number.isFinite(x));
    return ok.length
      ? { name, timesMs: ok.map(round), medianMs: round(median(ok)), minMs: round(Math.min(...ok)), maxMs: round(Math.max(...ok)) }
      : { name, timesMs: [], medianMs: NaN, minMs: NaN, maxMs: NaN };
  });
  const base = variants[0]!.medianMs;
  const ratios = Object.fromEntries(variants.map((r) => [r.name, Math.round((r.medianMs / base) * 1000) / 1000]));
  const out: CaseResult = { bench: options.bench, case: options.case, baseline: variants[0]!.name, variants, ratios };
  if (options.unit) out.unit = options.unit;
  if (options.warmups !== undefined) out.warmups = options.warmups;
  if (options.repetitions !== undefined) out.repetitions = options.repetitions;
  if (options.notes) out.notes = options.notes;
  if (options.load) out.load = options.load;
  if (options.pairs) out.pairs = pairRatios(new Map(values.map((v) => [v.name, v.values])), options.pairs);
  printCase(out);
  return out;
}

/** ", min ×0.95, quartiles ×0.99-×1.04, max ×1.12" when the pair has rounds to spread */
export function spreadText(p: PairRatio): string {
  const s = p.spread;
  return s ? `, min ×${s.min.toFixed(2)}, quartiles ×${s.q1.toFixed(2)}-×${s.q3.toFixed(2)}, max ×${s.max.toFixed(2)}` : '';
}

export function printCase(r: CaseResult): void {
  const lines = [`${r.bench} / ${r.case} (baseline: ${r.baseline})`];
  for (const v of r.variants) {
    const mem = (v.peakRssMiB !== undefined ? `  peak ${v.peakRssMiB} MiB` : '') + (v.cpuMs !== undefined ? `  cpu ${v.cpuMs} ms` : '');
    lines.push(`  ${v.name.padEnd(28)} median ${String(v.medianMs).padStart(9)} ${r.unit ?? 'ms'}  ratio ${(r.ratios[v.name] ?? NaN).toFixed(3)}${mem}`);
  }
  for (const p of r.pairs ?? []) {
    lines.push(`  ${p.of} / ${p.to}: ×${p.ratio.toFixed(2)} (median of ${p.rounds?.length ?? 1} per-round ratio(s)${spreadText(p)}; ratio of medians ×${p.ratioOfMedians.toFixed(2)})`);
    if (p.cpu) lines.push(`    cpu time: ×${p.cpu.ratio.toFixed(2)} per round${p.cpu.spread ? spreadText({ spread: p.cpu.spread } as PairRatio) : ''}`);
  }
  if (r.load) lines.push(`  load ${r.load.start.join(' ')} → ${r.load.end.join(' ')}`);
  process.stdout.write(lines.join('\n') + '\n');
}
