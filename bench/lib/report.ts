/**
 * Writes benchmark results to bench/results/<bench>.json and draws one SVG bar chart per case (median with
 * min–max whiskers), so the README's numbers and plots always come from a run, never from hand edits.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPS, WARMUPS, type CaseResult } from './measure.js';

export const RESULTS_DIR = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'results');

/** Load averages when the bench started (this module is imported first thing) and when it wrote its results. */
const LOAD_AT_START = loadavg().map((x) => Math.round(x * 100) / 100);
const STARTED_AT = new Date().toISOString();

export interface BenchFile {
  bench: string;
  takenAt: string;
  startedAt?: string;
  machine: { cpu: string; cores: number; memoryGiB: number; accel: string; kernel: string };
  /** 1/5/15-minute load averages (`uptime`) at the start and at the end of the bench */
  load?: { start: number[]; end: number[] };
  /** BENCH_REPS / BENCH_WARMUPS in force (cases may cap repetitions; see each case) */
  repetitions?: number;
  warmups?: number;
  notes?: string[];
  cases: CaseResult[];
}

export function machineFacts(accel: string): BenchFile['machine'] {
  let kernel = '';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    kernel = 'unknown';
  }
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), accel, kernel };
}

/**
 * `partial`: this run measured only some cases (a case filter): the other cases of the last file are kept as they
 * were (each with its own load and repetitions) and a note says which ones and when they were taken.
 */
export function writeResults(bench: string, cases: CaseResult[], accel = 'n/a', notes: string[] = [], partial = false): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  if (partial) {
    let old: BenchFile | undefined;
    try {
      old = JSON.parse(readFileSync(join(RESULTS_DIR, `${bench}.json`), 'utf8')) as BenchFile;
    } catch {
      old = undefined;
    }
    const now = new Set(cases.map((c) => c.case));
    const kept = (old?.cases ?? []).filter((c) => !now.has(c.case));
    if (kept.length) {
      notes = [...notes, `only ${cases.map((c) => `"${c.case}"`).join(', ')} measured in this run; ${kept.map((c) => `"${c.case}"`).join(', ')} kept from the run of ${old!.takenAt}`];
      // in the order of the last full run, the new cases where they were
      const order = (old?.cases ?? []).map((c) => c.case);
      cases = [...kept, ...cases].sort((a, b) => (order.indexOf(a.case) + 1 || Infinity) - (order.indexOf(b.case) + 1 || Infinity));
    }
  }
  const file: BenchFile = {
    bench,
    takenAt: new Date().toISOString(),
    startedAt: STARTED_AT,
    machine: machineFacts(accel),
    load: { start: LOAD_AT_START, end: loadavg().map((x) => Math.round(x * 100) / 100) },
    repetitions: REPS,
    warmups: WARMUPS,
    cases,
  };
  if (notes.length) file.notes = notes;
  const path = join(RESULTS_DIR, `${bench}.json`);
  writeFileSync(path, JSON.stringify(file, null, 2) + '\n');
  const svgs = new Set(cases.map((c) => `${slug(bench)}--${slug(c.case)}.svg`));
  // plots of cases this bench no longer has would otherwise linger next to fresh ones
  for (const f of readdirSync(RESULTS_DIR)) if (f.startsWith(`${slug(bench)}--`) && f.endsWith('.svg') && !svgs.has(f)) rmSync(join(RESULTS_DIR, f), { force: true });
  for (const c of cases) writeFileSync(join(RESULTS_DIR, `${slug(bench)}--${slug(c.case)}.svg`), barChart(c));
  return path;
}

export function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Horizontal bars: one per variant, median bar, min–max whisker, ratio label. */
export function barChart(c: CaseResult): string {
  const rowH = 28;
  const left = 230;
  const width = 760;
  const plotW = width - left - 130;
  const top = 40;
  const height = top + c.variants.length * rowH + 30;
  const unit = c.unit ?? 'ms';
  const num = (v: number | null) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const max = Math.max(...c.variants.map((v) => num(v.maxMs))) || 1;
  const x = (ms: number | null) => left + (num(ms) / max) * plotW;
  const rows = c.variants
    .map((v, i) => {
      const y = top + i * rowH;
      const fill = v.name === c.baseline ? '#8c8c8c' : '#3b7dd8';
      return [
        `<text x="${left - 8}" y="${y + 17}" text-anchor="end">${esc(v.name)}</text>`,
        `<rect x="${left}" y="${y + 4}" width="${Math.max(1, x(v.medianMs) - left)}" height="18" fill="${fill}"/>`,
        `<line x1="${x(v.minMs)}" x2="${x(v.maxMs)}" y1="${y + 13}" y2="${y + 13}" stroke="#222"/>`,
        `<text x="${x(v.maxMs) + 6}" y="${y + 17}">${Number.isFinite(num(v.medianMs)) && v.timesMs.length ? `${num(v.medianMs).toFixed(0)} ${unit} (×${num(c.ratios[v.name] ?? 0).toFixed(2)})` : 'no data'}</text>`,
      ].join('');
    })
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="14" font-weight="bold">${esc(`${c.bench}: ${c.case}`)} — ${unit === 'ms' ? 'median wall time' : `median ${unit}`}, whiskers min–max</text>`,
    rows,
    `</svg>`,
    '',
  ].join('\n');
}

/** All results files, for the README table generator. */
export function readAllResults(): BenchFile[] {
  try {
    return readdirSync(RESULTS_DIR)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(RESULTS_DIR, f), 'utf8')) as BenchFile);
  } catch {
    return [];
  }
}
