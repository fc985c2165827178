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

# A V8 start-up snapshot of one bundle (Node 20 `--build-snapshot`: one CommonJS file using builtins only), its
# modules already evaluated: NAME.cjs (dynamic imports lowered to require(): a snapshot's scripts have no dynamic-
# import callback; import.meta.url is the file's URL at build time, so it is built in its final place beside
# NAME.mjs), NAME.blob, and NAME.blob.key: the identity of the node that built it (device, inode, size, mtime) and
# its node options. A snapshot loads only in that node under those options (a foreign or truncated one crashes
# node), so its users check the key and that the blob is newer than NAME.mjs; the key is removed first and written
# last (tmp + rename). The snapshot is run once: its output must match PROBE (a glob) for `-- --root /probe state
# probe`. A node that cannot build or run it leaves none (the .mjs is used, only slower).
#   start_up_snapshot NAME ENTRY DIR PROBE NODE_FILE NODE_OPTIONS COMMAND... (COMMAND: how to run that node)
start_up_snapshot() {
  local name=$1 entry=$2 dir=$3 probe=$4 node_file=$5 options=$6
  shift 6
  rm -f "$dir/$name.blob.key"
  "$ESBUILD" "$entry" --bundle --platform=node --target=node20 --format=cjs --log-level=warning \
    --supported:dynamic-import=false --define:import.meta.url=__runcvm_url \
    "--banner:js=var __runcvm_url = require('node:url').pathToFileURL(__filename).href;" --outfile="$tmp/$name.cjs"
  install -D -m 0644 "$tmp/$name.cjs" "$dir/$name.cjs"
  # shellcheck disable=SC2053 # PROBE is a glob
  if (cd "$tmp" && "$@" --snapshot-blob "$tmp/$name.blob" --build-snapshot "$dir/$name.cjs" 2>"$tmp/$name.err") &&
    [[ $(cd "$tmp" && RUNCVM_RUNC=echo "$@" --snapshot-blob "$tmp/$name.blob" -- --root /probe state probe 2>&1) == $probe ]]; then
    mv -f "$tmp/$name.blob" "$dir/$name.blob"
    echo "$(stat -L -c '%d:%i:%s:%Y' "$node_file")${options:+ $options}" > "$tmp/$name.blob.key"
    mv -f "$tmp/$name.blob.key" "$dir/$name.blob.key"
  else
    rm -f "$dir/$name.blob"
    say "warning: no start-up snapshot for $name.mjs ($(grep -v 'not yet fully verified\|It may still work\|To request support\|trace-warnings' "$tmp/$name.err" 2>/dev/null | head -3 | tr '\n' ' ')); it starts from $name.mjs"
  fi
}

build_guest runcvm-init

common=(--bundle --platform=node --target=node20 --format=esm --log-level=warning
  "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);")
"$ESBUILD" src/runcvm/launcher/entry.ts "${common[@]}" --outfile="$tmp/launcher.mjs"
install -D -m 0644 "$tmp/launcher.mjs" "$GUEST/lib/runcvm/launcher.mjs"
"$ESBUILD" src/runcvm/runtime/entry.ts "${common[@]}" --outfile="$tmp/runtime.mjs"
install -D -m 0644 "$tmp/runtime.mjs" "$ASSETS/runtime/runtime.mjs"
install -D -m 0644 "$tmp/runtime.mjs" "$ROOT/dist/runcvm/runtime/runtime.mjs"

# The start-up snapshot of the runtime bundle, for the node the dispatcher runs by default: it must start and reach
# runc with runc's argv (a stub runc here)
start_up_snapshot runtime src/runcvm/runtime/entry.ts "$ASSETS/runtime" "--root /probe state probe" "$(command -v node)" "" node

# The launcher's, built and probed by the guest package's own node (through its loader) with the launcher's node
# options, LAUNCHER_NODE_FLAGS, which must stay those of src/runcvm/bundle/transforms/index.ts (a unit test checks);
# create compares the key (runtime/facts.ts launcherSnapshotFits). Outside a container the launcher starts, then
# stops at its missing launch spec: main ran.
LAUNCHER_NODE_FLAGS=()
start_up_snapshot launcher src/runcvm/launcher/entry.ts "$GUEST/lib/runcvm" "*cannot read the launch spec*" "$GUEST/bin/node" "${LAUNCHER_NODE_FLAGS[*]}" \
  "$GUEST/lib/ld" --library-path "$GUEST/lib" "$GUEST/bin/node" "${LAUNCHER_NODE_FLAGS[@]}"

# exec (owner: exec, docs/dev/notes/exec.md): the guest agent (copied into each VM's writable disk by create), the
# static exec client (run by runc in the launcher container) and the runtime's exec verb
build_guest runcvm-agent
build_guest runcvm-exec
rm -f "$GUEST/lib/runcvm/exec-client.mjs"
"$ESBUILD" src/runcvm/exec/entry.ts "${common[@]}" --outfile="$tmp/exec.mjs"
install -D -m 0644 "$tmp/exec.mjs" "$ROOT/dist/runcvm/runtime/exec.mjs"
printf '%s\n' "$KEY" > "$STAMP"
say "runcvm-init, launcher.mjs → $GUEST; runtime.mjs → dist/runcvm/runtime"
