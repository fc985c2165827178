#!/usr/bin/env bash
# The main job on built-in defaults: build examples/hello with kimia, push it to a local registry started here,
# run it as a microVM with runcvm through containerd, and print the workload's output and exit code.
# Everything runs under a temporary folder and is stopped and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh

say() { printf '\033[1m[demo] %s\033[0m\n' "$*" >&2; }
WORK=$(mktemp -d /tmp/runcvm-demo.XXXXXX)
PIDS=()
cleanup() {
  set +e
  if [[ -S $WORK/containerd.sock ]]; then
    ctr --address "$WORK/containerd.sock" -n demo tasks kill -s KILL demo-hello >/dev/null 2>&1
    ctr --address "$WORK/containerd.sock" -n demo containers rm demo-hello >/dev/null 2>&1
  fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  # containerd leaves its snapshot mounts behind when killed: unmount everything under the work dir
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# 1. registry (Debian docker-registry) on 127.0.0.1 only
PORT=$(free_port)
REGISTRY=127.0.0.1:$PORT
cat > "$WORK/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry}, delete: {enabled: true}}
http: {addr: $REGISTRY}
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://$REGISTRY/v2/" >/dev/null && break; sleep 0.05; done
say "registry listening on $REGISTRY"

# 2. build and push with kimia (context: the example plus a static busybox, so nothing comes from the internet)
mkdir -p "$WORK/context"
cp examples/hello/Dockerfile examples/hello/hello.sh "$WORK/context/"
cp /bin/busybox "$WORK/context/busybox"
IMAGE=$REGISTRY/demo/hello:latest
say "kimia: building examples/hello and pushing $IMAGE"
"$ROOT/bin/kimia" --context "$WORK/context" --destination "$IMAGE" --insecure \
  --digest-file "$WORK/digest" --cache=false
say "pushed $IMAGE@$(cat "$WORK/digest")"

if [[ ! -x $ROOT/bin/runcvm-runtime ]]; then
  say "runcvm-runtime is not built yet: stopping after the build"
  exit 0
fi

# 3. containerd with its own root, state and socket; run the image as a microVM through runcvm
cat > "$WORK/containerd.toml" <<TOML
version = 2
root = "$WORK/containerd/root"
state = "$WORK/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$WORK/containerd.sock"
TOML
containerd --config "$WORK/containerd.toml" >"$WORK/containerd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [[ -S $WORK/containerd.sock ]] && ctr --address "$WORK/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.05; done
CTR=(ctr --address "$WORK/containerd.sock" -n demo)
"${CTR[@]}" images pull --plain-http "$IMAGE" >/dev/null
say "runcvm: starting $IMAGE as a microVM (QEMU; TCG software emulation where KVM is unusable)"
set +e
"${CTR[@]}" run --rm --runc-binary "$ROOT/bin/runcvm-runtime" "$IMAGE" demo-hello
status=$?
set -e
say "workload exit code: $status"
