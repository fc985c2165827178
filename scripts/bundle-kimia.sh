#!/usr/bin/env bash
# kimia's start-up bundle: src/kimia and src/core in one ESM file, dist/kimia/main.bundle.js, beside the tsc output.
# dockerfile-ast (with the vscode-languageserver types it loads) and smol-toml go inside the bundle: every build
# parses its Dockerfile, and loading dockerfile-ast from node_modules, 20 files resolved and compiled one by one, cost
# ~100 ms of an unchanged rebuild against ~15 ms bundled (measured at load 5). An external package imported by any
# bundled module is hoisted to a static import at the bundle's top, so an external one would load on every start,
# `--version` included. The other npm packages stay external (loaded from node_modules only when a path needs them:
# undici, tar, yaml…), and so does the linter: it loads the tsc output next to the bundle, so that its YAML parser is
# not imported on every start.
# bin/kimia prefers the bundle over dist/kimia/main.js when it is as new. A failure here only costs start-up time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLED='dockerfile-ast smol-toml'
# every other dependency external, by name (esbuild's --packages=external has no exception list)
mapfile -t externals < <(BUNDLED="$BUNDLED" node -e '
  const deps = Object.keys(require("./package.json").dependencies ?? {});
  const bundled = new Set(process.env.BUNDLED.split(" "));
  for (const d of deps) if (!bundled.has(d)) { console.log(`--external:${d}`); console.log(`--external:${d}/*`); }')
if ! npx esbuild src/kimia/main.ts --bundle --platform=node --target=node20 --format=esm "${externals[@]}" \
    '--external:./lint/index.js' --outfile=dist/kimia/main.bundle.js --log-level=warning; then
  rm -f dist/kimia/main.bundle.js
  echo "[setup] kimia bundle not built (esbuild failed): bin/kimia runs dist/kimia/main.js" >&2
fi
