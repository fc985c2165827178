/**
 * Benchmark measurement: fixed warm-ups and repetitions, A/B(/C…) interleaved so that machine noise hits every
 * variant alike, wall time per run and peak memory (RSS summed over the process tree) sampled from /proc.
 * Results are plain data; bench/lib/report.ts writes them to JSON and draws the SVG plots.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface Variant {
  name: string;
  /** runs one measured iteration; returns the root pid to sample for memory, if any */
  run: (sample: (pid: number) => void) => Promise<void>;
  /** optional untimed preparation before every iteration (e.g. clearing a cache for "cold") */
  before?: () => Promise<void>;
}

export interface VariantResult {
  name: string;
  timesMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  peakRssMiB?: number;
}

export interface CaseResult {
  bench: string;
  case: string;
  baseline: string;
  variants: VariantResult[];
  /** median of each variant over the baseline's median */
  ratios: Record<string, number>;
  notes?: string;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
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
}

/** Runs the variants interleaved (A B C, A B C, …); the first variant is the baseline for the ratios. */
export async function measureCase(options: CaseOptions, variants: Variant[]): Promise<CaseResult> {
  const warmups = options.warmups ?? 1;
  const reps = options.repetitions ?? 5;
  const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const peaks = new Map<string, number>();
  for (let i = 0; i < warmups + reps; i++) {
    for (const v of variants) {
      if (v.before) await v.before();
      const sampler = new PeakSampler();
      sampler.start();
      const t0 = performance.now();
      await v.run(sampler.add);
      const dt = performance.now() - t0;
      const peak = sampler.stop();
      if (i >= warmups) {
        times.get(v.name)!.push(dt);
        if (peak !== undefined) peaks.set(v.name, Math.max(peaks.get(v.name) ?? 0, peak));
      }
    }
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
    return r;
  });
  const base = results[0]!.medianMs;
  const ratios = Object.fromEntries(results.map((r) => [r.name, Math.round((r.medianMs / base) * 1000) / 1000]));
  const out: CaseResult = { bench: options.bench, case: options.case, baseline: results[0]!.name, variants: results, ratios };
  if (options.notes) out.notes = options.notes;
  printCase(out);
  return out;
}

export function printCase(r: CaseResult): void {
  const lines = [`${r.bench} / ${r.case} (baseline: ${r.baseline})`];
  for (const v of r.variants) {
    const mem = v.peakRssMiB !== undefined ? `  peak ${v.peakRssMiB} MiB` : '';
    lines.push(`  ${v.name.padEnd(28)} median ${String(v.medianMs).padStart(9)} ms  ratio ${r.ratios[v.name]!.toFixed(3)}${mem}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}
