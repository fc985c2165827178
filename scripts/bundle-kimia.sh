#!/usr/bin/env bash
# kimia's start-up bundle: src/kimia and src/core in one ESM file, dist/kimia/main.bundle.js, beside the tsc output.
# npm packages stay external (loaded from node_modules when, and only when, a path needs them), and so does the
# linter: it loads the tsc output next to the bundle, so that its YAML parser is not imported on every start.
# bin/kimia prefers the bundle over dist/kimia/main.js when it is as new. A failure here only costs start-up time.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! npx esbuild src/kimia/main.ts --bundle --platform=node --target=node20 --format=esm --packages=external \
    '--external:./lint/index.js' --outfile=dist/kimia/main.bundle.js --log-level=warning; then
  rm -f dist/kimia/main.bundle.js
  echo "[setup] kimia bundle not built (esbuild failed): bin/kimia runs dist/kimia/main.js" >&2
fi
