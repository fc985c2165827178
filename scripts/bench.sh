#!/usr/bin/env bash
# Every benchmark under bench/ (fixed warm-ups and repetitions, variants interleaved), then the README table.
# Results: bench/results/*.json and *.svg. Benchmarks are never part of `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p bench/results
status=0
for b in bench/*.ts; do
  [[ -e $b ]] || continue
  echo "[bench] $b $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  npx vite-node "$b" || { echo "[bench] $b failed" >&2; status=1; }
done
npx vite-node bench/lib/readme-table.ts --images ./ > bench/results/summary.md
npx vite-node bench/lib/readme-table.ts > docs/benchmarks.md
echo "[bench] summary in bench/results/summary.md and docs/benchmarks.md" >&2
exit $status
