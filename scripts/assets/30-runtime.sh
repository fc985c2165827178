#!/usr/bin/env bash
# runcvm runtime pieces built from this repository (owner: runcvm runtime core):
#   - the launcher bundle   → $GUEST/lib/runcvm/launcher.mjs   (esbuild, runs on the package's node), and its
#     start-up snapshot launcher.blob + .key (built by that node; create uses it when the key fits)
#   - the guest init        → $GUEST/bin/runcvm-init            (gcc -static -Os, runs as PID 1 in the VM)
#   - the runtime bundle    → dist/runcvm/runtime/runtime.mjs   (esbuild, one file: faster `create` start-up)
#   - its start-up snapshot → $ASSETS/runtime/runtime.blob + .key (V8 snapshot of runtime.cjs, for the node that built
#     it: bin/runcvm-runtime uses it only when its node's identity is the key's, else runtime.mjs)
# Idempotent and cheap (~1 s); rerun after scripts/assets/20-guest.sh rebuilt the guest folder.
#   RUNCVM_ASSETS=DIR (default var/assets)   RUNCVM_GUEST_DIR=DIR (default $RUNCVM_ASSETS/guest)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ASSETS=${RUNCVM_ASSETS:-$ROOT/var/assets}
GUEST=${RUNCVM_GUEST_DIR:-$ASSETS/guest}
say() { printf '[assets:runtime] %s\n' "$*" >&2; }
die() { printf '[assets:runtime] error: %s\n' "$1" >&2; [[ -n ${2:-} ]] && printf '[assets:runtime] fix: %s\n' "$2" >&2; exit 1; }

command -v gcc >/dev/null || die "gcc not found" "apt-get install -y gcc libc6-dev"
ESBUILD=$ROOT/node_modules/.bin/esbuild
[[ -x $ESBUILD ]] || die "esbuild not found" "npm ci"
[[ -d $GUEST ]] || die "guest package $GUEST not found" "bash scripts/assets/20-guest.sh"

mkdir -p "$GUEST/lib/runcvm" "$GUEST/bin" "$ROOT/dist/runcvm/runtime"

# Cached: rebuild only when a source, this script or the guest package build (20-guest.sh swaps its symlink)
# changed, or an output is missing.
OUTPUTS=("$GUEST/bin/runcvm-init" "$GUEST/bin/runcvm-agent" "$GUEST/bin/runcvm-exec" "$GUEST/lib/runcvm/launcher.mjs"
  "$ASSETS/runtime/runtime.mjs" "$ASSETS/runtime/runtime.cjs" "$ROOT/dist/runcvm/runtime/runtime.mjs" "$ROOT/dist/runcvm/runtime/exec.mjs")
STAMP=$ASSETS/runtime/.inputs
# the identity bin/runcvm-runtime compares before using the snapshot: the node it runs by default (PATH), resolved
node_key() { stat -L -c '%d:%i:%s:%Y' "$(command -v node)"; }
inputs_key() {
  { readlink -f "$GUEST"; node_key; find src/runcvm src/core scripts/assets/30-runtime.sh scripts/gen-guest-contract.ts -type f -printf '%p %s %T@\n' | LC_ALL=C sort; } | sha256sum | cut -d' ' -f1
}
KEY=$(inputs_key)
fresh=1
for f in "${OUTPUTS[@]}"; do [[ -e $f ]] || fresh=0; done
if [[ $fresh == 1 && -f $STAMP && $(cat "$STAMP") == "$KEY" ]]; then exit 0; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The guest contract (src/runcvm/guest/contract.ts → contract.h): never build C from a header that disagrees with
# the TypeScript, or host and guest would speak two protocols.
"$ESBUILD" scripts/gen-guest-contract.ts --bundle --platform=node --target=node20 --format=esm --log-level=warning --outfile="$tmp/gen-guest-contract.mjs"
node "$tmp/gen-guest-contract.mjs" --check || die "the guest contract header is stale" "npm run gen:guest-contract, then rerun"

# gcc -static -Os for one guest program, its sources from src/runcvm/guest/sources.txt
build_guest() {
  local name=$1 srcs
  srcs=$(sed -n "s/^$name: //p" src/runcvm/guest/sources.txt)
  [[ -n $srcs ]] || die "no sources for $name in src/runcvm/guest/sources.txt" "restore the file from git"
  # shellcheck disable=SC2086 # a space-separated list of file names
  (cd src/runcvm/guest && gcc -static -Os -Wall -Wextra -o "$tmp/$name" $srcs)
  strip "$tmp/$name" 2>/dev/null || true
  install -D -m 0755 "$tmp/$name" "$GUEST/bin/$name"
}

build_guest runcvm-init

common=(--bundle --platform=node --target=node20 --format=esm --log-level=warning
  "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);")
"$ESBUILD" src/runcvm/launcher/entry.ts "${common[@]}" --outfile="$tmp/launcher.mjs"
install -D -m 0644 "$tmp/launcher.mjs" "$GUEST/lib/runcvm/launcher.mjs"
"$ESBUILD" src/runcvm/runtime/entry.ts "${common[@]}" --outfile="$tmp/runtime.mjs"
install -D -m 0644 "$tmp/runtime.mjs" "$ASSETS/runtime/runtime.mjs"
install -D -m 0644 "$tmp/runtime.mjs" "$ROOT/dist/runcvm/runtime/runtime.mjs"

# The start-up snapshot (Node 20: `--build-snapshot` takes one CommonJS file using builtins only). Dynamic imports
# become require() (a snapshot's scripts have no dynamic-import callback); import.meta.url becomes the file's URL,
# computed at build time: so the snapshot is built from runtime.cjs in its final place, beside runtime.mjs. The
# snapshot's key is written last (tmp + rename), after the blob: the dispatcher needs both, and the blob newer than
# runtime.mjs. A node that cannot build or run it leaves none (runtime.mjs is used, only slower).
rm -f "$ASSETS/runtime/runtime.blob.key"
"$ESBUILD" src/runcvm/runtime/entry.ts --bundle --platform=node --target=node20 --format=cjs --log-level=warning \
  --supported:dynamic-import=false --define:import.meta.url=__runcvm_url \
  "--banner:js=var __runcvm_url = require('node:url').pathToFileURL(__filename).href;" --outfile="$tmp/runtime.cjs"
install -D -m 0644 "$tmp/runtime.cjs" "$ASSETS/runtime/runtime.cjs"
if (cd "$tmp" && node --snapshot-blob "$tmp/runtime.blob" --build-snapshot "$ASSETS/runtime/runtime.cjs" 2>"$tmp/snapshot.err") &&
  # the snapshot must start and reach runc with runc's argv (a stub runc here)
  [[ $(RUNCVM_RUNC=echo node --snapshot-blob "$tmp/runtime.blob" -- --root /probe state probe 2>&1) == "--root /probe state probe" ]]; then
  mv -f "$tmp/runtime.blob" "$ASSETS/runtime/runtime.blob"
  node_key > "$tmp/runtime.blob.key"
  mv -f "$tmp/runtime.blob.key" "$ASSETS/runtime/runtime.blob.key"
else
  rm -f "$ASSETS/runtime/runtime.blob"
  say "warning: no start-up snapshot for the runtime ($(grep -v 'not yet fully verified\|It may still work\|To request support\|trace-warnings' "$tmp/snapshot.err" | head -3 | tr '\n' ' ')); create starts from runtime.mjs"
fi

# The launcher's start-up snapshot, the same way, built and probed by the guest package's own node (through its
# loader): a snapshot loads only in the node that built it and under the same V8 options, so its key is that node's
# identity and LAUNCHER_NODE_FLAGS, which must stay those of src/runcvm/bundle/transforms/index.ts (a unit test
# checks). create compares the key (runtime/facts.ts launcherSnapshotFits) and otherwise runs launcher.mjs.
LAUNCHER_NODE_FLAGS=()
rm -f "$GUEST/lib/runcvm/launcher.blob.key"
"$ESBUILD" src/runcvm/launcher/entry.ts --bundle --platform=node --target=node20 --format=cjs --log-level=warning \
  --supported:dynamic-import=false --define:import.meta.url=__runcvm_url \
  "--banner:js=var __runcvm_url = require('node:url').pathToFileURL(__filename).href;" --outfile="$tmp/launcher.cjs"
install -D -m 0644 "$tmp/launcher.cjs" "$GUEST/lib/runcvm/launcher.cjs"
gnode=("$GUEST/lib/ld" --library-path "$GUEST/lib" "$GUEST/bin/node" "${LAUNCHER_NODE_FLAGS[@]}")
if (cd "$tmp" && "${gnode[@]}" --snapshot-blob "$tmp/launcher.blob" --build-snapshot "$GUEST/lib/runcvm/launcher.cjs" 2>"$tmp/snapshot.err") &&
  # outside a container the launcher starts, then stops at its missing launch spec: main ran
  [[ $(cd "$tmp" && "${gnode[@]}" --snapshot-blob "$tmp/launcher.blob" 2>&1) == *"cannot read the launch spec"* ]]; then
  mv -f "$tmp/launcher.blob" "$GUEST/lib/runcvm/launcher.blob"
  echo "$(stat -L -c '%d:%i:%s:%Y' "$GUEST/bin/node")${LAUNCHER_NODE_FLAGS[*]:+ ${LAUNCHER_NODE_FLAGS[*]}}" > "$tmp/launcher.blob.key"
  mv -f "$tmp/launcher.blob.key" "$GUEST/lib/runcvm/launcher.blob.key"
else
  rm -f "$GUEST/lib/runcvm/launcher.blob"
  say "warning: no start-up snapshot for the launcher ($(grep -v 'not yet fully verified\|It may still work\|To request support\|trace-warnings' "$tmp/snapshot.err" | head -3 | tr '\n' ' ')); VMs start from launcher.mjs"
fi

# exec (owner: exec, docs/dev/notes/exec.md): the guest agent (copied into each VM's writable disk by create), the
# static exec client (run by runc in the launcher container) and the runtime's exec verb
build_guest runcvm-agent
build_guest runcvm-exec
rm -f "$GUEST/lib/runcvm/exec-client.mjs"
"$ESBUILD" src/runcvm/exec/entry.ts "${common[@]}" --outfile="$tmp/exec.mjs"
install -D -m 0644 "$tmp/exec.mjs" "$ROOT/dist/runcvm/runtime/exec.mjs"
printf '%s\n' "$KEY" > "$STAMP"
say "runcvm-init, launcher.mjs → $GUEST; runtime.mjs → dist/runcvm/runtime"
