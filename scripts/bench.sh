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
  echo "[bench] $b" >&2
  npx vite-node "$b" || { echo "[bench] $b failed" >&2; status=1; }
done
npx vite-node bench/lib/readme-table.ts > bench/results/summary.md
echo "[bench] summary in bench/results/summary.md" >&2
exit $status
