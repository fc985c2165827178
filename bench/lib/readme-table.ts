/** Prints a Markdown table of every case in bench/results/*.json (median ms and ratio to the case's baseline). */
import { readAllResults, slug } from './report.js';

const files = readAllResults();
const out: string[] = [];
for (const f of files) {
  out.push(`### ${f.bench}`, '', `Taken ${f.takenAt} on ${f.machine.cpu}, ${f.machine.cores} cores, ${f.machine.memoryGiB} GiB, accel ${f.machine.accel}, kernel ${f.machine.kernel}.`, '');
  out.push('| case | variant | median ms | ratio to baseline | peak RSS MiB |', '|---|---|---:|---:|---:|');
  for (const c of f.cases) {
    for (const v of c.variants) {
      out.push(`| ${c.case} | ${v.name}${v.name === c.baseline ? ' (baseline)' : ''} | ${v.medianMs} | ${(c.ratios[v.name] ?? 0).toFixed(3)} | ${v.peakRssMiB ?? ''} |`);
    }
  }
  out.push('');
  for (const c of f.cases) out.push(`![${f.bench}: ${c.case}](bench/results/${slug(f.bench)}--${slug(c.case)}.svg)`);
  out.push('');
}
process.stdout.write(out.join('\n') + '\n');
