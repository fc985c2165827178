/**
 * Writes benchmark results to bench/results/<bench>.json and draws one SVG bar chart per case (median with
 * min–max whiskers), so the README's numbers and plots always come from a run, never from hand edits.
 */
import { mkdirSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { CaseResult } from './measure.js';

export const RESULTS_DIR = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'results');

export interface BenchFile {
  bench: string;
  takenAt: string;
  machine: { cpu: string; cores: number; memoryGiB: number; accel: string; kernel: string };
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

export function writeResults(bench: string, cases: CaseResult[], accel = 'n/a'): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file: BenchFile = { bench, takenAt: new Date().toISOString(), machine: machineFacts(accel), cases };
  const path = join(RESULTS_DIR, `${bench}.json`);
  writeFileSync(path, JSON.stringify(file, null, 2) + '\n');
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
  const max = Math.max(...c.variants.map((v) => v.maxMs)) || 1;
  const x = (ms: number) => left + (ms / max) * plotW;
  const rows = c.variants
    .map((v, i) => {
      const y = top + i * rowH;
      const fill = v.name === c.baseline ? '#8c8c8c' : '#3b7dd8';
      return [
        `<text x="${left - 8}" y="${y + 17}" text-anchor="end">${esc(v.name)}</text>`,
        `<rect x="${left}" y="${y + 4}" width="${Math.max(1, x(v.medianMs) - left)}" height="18" fill="${fill}"/>`,
        `<line x1="${x(v.minMs)}" x2="${x(v.maxMs)}" y1="${y + 13}" y2="${y + 13}" stroke="#222"/>`,
        `<text x="${x(v.maxMs) + 6}" y="${y + 17}">${v.medianMs.toFixed(0)} ms (×${(c.ratios[v.name] ?? 0).toFixed(2)})</text>`,
      ].join('');
    })
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="14" font-weight="bold">${esc(`${c.bench}: ${c.case}`)} — median wall time, whiskers min–max</text>`,
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
