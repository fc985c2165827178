#!/usr/bin/env bash
# The whole suite: setup (idempotent), lint, type-check, then every unit and e2e test with vitest.
# Ends with the plain summary line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
echo "[test] lint" >&2
npx eslint . || exit 1
echo "[test] type-check" >&2
npx tsc -p tsconfig.json --noEmit || exit 1
mkdir -p test-results
rm -f test-results/vitest.json
npx vitest run "$@"
status=$?
node scripts/summary.mjs test-results/vitest.json || true
exit $status
