/**
 * Guest boot benchmark (TypeScript wrapper so that `npm run bench` runs it): runs bench/guest-boot.sh, which boots
 * the guest kernel assets under QEMU TCG round-robin (vmlinux vs bzImage, lz4 vs gzip initramfs, all module groups
 * vs core only) and prints launch → guest-marker wall times; this wrapper turns its table into
 * bench/results/guest-boot.json and an SVG.
 *
 *   npx vite-node bench/guest-boot.ts        (BENCH_REPS, capped at 2 rounds: each boot takes 5-20 s under TCG here)
 */
import { run } from '../src/core/exec/index.js';
import { projectPath } from '../src/core/paths.js';
import { derivedCase, repsAtMost } from './lib/measure.js';
import { writeResults } from './lib/report.js';

const ROUNDS = repsAtMost(2);

async function main(): Promise<void> {
  const r = await run('bash', [projectPath('bench', 'guest-boot.sh'), String(ROUNDS)], { reject: false, timeoutMs: 1_800_000, onStderrLine: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(r.stdout);
  if (r.exitCode !== 0) throw new Error(`bench/guest-boot.sh failed (exit ${r.exitCode}): ${r.stderr.slice(-1500)}`);
  // | vmlinux + lz4 | 2345 ms (2345 2401) | 1200 ms (1190 1210) |
  const values = (text: string | undefined) => (text ?? '').trim().split(/\s+/).map(Number).filter((x) => Number.isFinite(x));
  const matches = [...r.stdout.matchAll(/^\| ([^|]+?) \| \S+ ms \(([^)]*)\) \| \S+ ms(?: \(([^)]*)\))? \|/gm)];
  const rows = matches.map((m) => ({ name: m[1]!, values: values(m[2]) }));
  const cpuRows = matches.map((m) => ({ name: m[1]!, values: values(m[3]).filter((x) => x > 0) }));
  if (!rows.length) throw new Error(`no rows parsed from bench/guest-boot.sh output:\n${r.stdout}`);
  const trailer = /\(load average at the end: [^)]*\)/.exec(r.stdout)?.[0] ?? '';
  const c = derivedCase({
    bench: 'guest-boot',
    case: 'QEMU launch to guest init marker',
    warmups: 0,
    repetitions: ROUNDS,
    notes: `bench/guest-boot.sh, ${ROUNDS} round-robin rounds, -m 256, 1 vCPU, QEMU TCG; ${trailer}`,
  }, rows);
  const cases = [c];
  if (cpuRows.some((row) => row.values.length)) {
    cases.push(derivedCase({
      bench: 'guest-boot',
      case: 'QEMU CPU time for the whole boot',
      unit: 'ms CPU',
      warmups: 0,
      repetitions: ROUNDS,
      notes: 'user + system CPU time of QEMU from launch to power-off (GNU time): much less sensitive to other load than wall time',
    }, cpuRows));
  }
  process.stdout.write(`results: ${writeResults('guest-boot', cases, 'tcg', ['QEMU under TCG: on a KVM host the same boot is several times faster'])}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
