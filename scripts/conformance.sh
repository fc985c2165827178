#!/usr/bin/env bash
# Runs two third-party suites against runc and runcvm side by side (docs/conformance.md): the OCI runtime-spec
# validation programs of opencontainers/runtime-tools and runc's own bats integration tests. The suites are never
# part of this repository: bring their sources to folders of your own, at the revisions docs/conformance.md names.
#
#   scripts/conformance.sh build        RT_SRC RUNC_SRC       build both offline (vendored Go modules), busybox tarball
#   scripts/conformance.sh runtime-tools RT_SRC RUNTIME OUT    one TAP file per validation program into OUT
#   scripts/conformance.sh bats         RUNC_SRC RUNTIME OUT  one TAP file per bats file into OUT (each under a tty;
#                                                             FILES="exec tty" for some of them only)
#   scripts/conformance.sh verdicts     runtime-tools|bats OUT   one verdict per program / test
#   scripts/conformance.sh wrapper      DIR                   a runcvm wrapper with private state/cache/log under DIR
#
# Needs (by hand, only for these suites; `npm test` does not): apt-get install golang-go bats gawk (jq, runc,
# busybox-static and script(1) are already on a machine set up by scripts/setup.sh). Run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# FILES="exec tty" runs (and scores) only those bats files
read -r -a RUNC_FILES <<<"${FILES:-run exec start_detached create kill delete cwd mounts tty events}"

need() {
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "conformance: $t is missing; fix: apt-get install -y golang-go bats gawk jq" >&2; exit 2; }
  done
}

go_offline() {
  # Debian 12's Go 1.19, the suites' own vendored modules, no network
  GOFLAGS=-mod=vendor GOPROXY=off GOCACHE="${GOCACHE:-$1/.gocache}" "${@:2}"
}

busybox_tarball() {
  # runc's tests untar testdata/busybox-<arch>.tar.xz (get-images.sh would download it): made from busybox-static
  local td=$1/tests/integration/testdata t
  [ -s "$td/busybox-amd64.tar.xz" ] && return 0
  t=$(mktemp -d)
  chmod 755 "$t"
  mkdir -p "$t"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,root,home,var,run,tmp}
  cp /bin/busybox "$t/bin/busybox"
  for a in $(/bin/busybox --list-full); do [ "$a" = bin/busybox ] || ln -sf /bin/busybox "$t/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$t/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$t/etc/group"
  chmod 1777 "$t/tmp"
  chmod 700 "$t/root"
  tar -C "$t" -cJf "$td/busybox-amd64.tar.xz" .
  rm -rf "$t"
  # only hooks.bats (not run here) uses the Debian image; get-images.sh needs the file to exist
  [ -e "$td/debian-amd64.tar.xz" ] || : >"$td/debian-amd64.tar.xz"
}

cmd=${1:-}
shift || true
case "$cmd" in
  build)
    need go jq
    rt=$(cd "$1" && pwd) rc=$(cd "$2" && pwd)
    (cd "$rt" && go_offline "$rt" make runtimetest validation-executables >/dev/null)
    (cd "$rc" && go_offline "$rc" go build -o contrib/cmd/recvtty/recvtty ./contrib/cmd/recvtty)
    busybox_tarball "$rc"
    echo "conformance: built $(ls "$rt"/validation/*/*.t | wc -l) validation programs, runc's recvtty, the busybox tarball"
    ;;
  runtime-tools)
    rt=$(cd "$1" && pwd) runtime=$2 out=$3
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    cd "$rt"
    for p in validation/*/*.t; do
      t=$(basename "$p" .t)
      start=$(date +%s)
      rc=0
      RUNTIME=$runtime timeout -k 10 600 "./$p" >"$out/$t.tap" 2>"$out/$t.err" </dev/null || rc=$?
      echo "rc=$rc secs=$(($(date +%s) - start))" >"$out/$t.rc"
    done
    ;;
  bats)
    need bats gawk jq script
    rc_src=$(cd "$1" && pwd) runtime=$2 out=$3
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    cd "$rc_src"
    for f in "${RUNC_FILES[@]}"; do
      start=$(date +%s)
      rc=0
      # a controlling tty for the tty tests; a file that hangs (events oom under runcvm today) is stopped after
      # FILE_TIMEOUT seconds and its unfinished tests count as failures (bats' BATS_TEST_TIMEOUT cannot be used:
      # its watchdog is a child the tests' bare `wait` waits for)
      RUNC=$runtime timeout -k 10 "${FILE_TIMEOUT:-1800}" script -qefc "bats -t tests/integration/$f.bats" /dev/null >"$out/$f.tap" 2>&1 </dev/null || rc=$?
      echo "rc=$rc secs=$(($(date +%s) - start))" >"$out/$f.rc"
    done
    ;;
  verdicts)
    kind=$1 out=$2
    if [ "$kind" = runtime-tools ]; then
      # PASS: exit 0, no `not ok`, and >=1 `ok` (or, for the programs that report only failures, their own `1..0`
      # plan without an error); process_rlimits_fail passes when the runtime refused the container.
      # EMPTY (a failure): no result at all, or `ok` lines over a container stdout that was empty.
      for f in "$out"/*.tap; do
        t=$(basename "$f" .tap)
        rc=$(sed 's/rc=\([0-9]*\).*/\1/' "$out/$t.rc")
        ok=$(grep -c '^ok' "$f" || true)
        nok=$(grep -c '^not ok' "$f" || true)
        if [ "$t" = process_rlimits_fail ]; then
          if [ "$rc" = 0 ] && grep -q 'failed to create the container' "$out/$t.err"; then v=PASS; else v=FAIL; fi
        elif [ "$rc" != 0 ] || [ "$nok" != 0 ]; then v=FAIL
        elif grep -q '"stdout": ""' "$f"; then v=EMPTY
        elif [ "$ok" -gt 0 ]; then v=PASS
        elif grep -q '^1\.\.0' "$f" && ! grep -q '"error"' "$f"; then v=PASS
        elif [ ! -s "$f" ]; then v=EMPTY
        else v=FAIL; fi
        echo "$t $v"
      done
    else
      for f in "${RUNC_FILES[@]}"; do
        tap=$out/$f.tap
        plan=$(grep -m1 -o '^1\.\.[0-9]*' "$tap" | cut -d. -f3 || true)
        for n in $(seq 1 "${plan:-0}"); do
          line=$(grep -E "^(ok|not ok) $n " "$tap" | head -1 || true)
          if [ -z "$line" ]; then echo "$f $n FAIL (not reached: the file was stopped)"; continue; fi
          case "$line" in
            "ok "*"# skip"*) v=skip ;;
            "ok "*) v=pass ;;
            *) v=FAIL ;;
          esac
          echo "$f $n $v $(echo "$line" | sed -E "s/^(ok|not ok) $n //; s/ # skip.*//")"
        done
      done
    fi
    ;;
  wrapper)
    dir=$(mkdir -p "$1" && cd "$1" && pwd)
    mkdir -p "$dir"/{state,cache,log}
    cat >"$dir/runcvm" <<EOF
#!/bin/sh
export RUNCVM_STATE_DIR=$dir/state RUNCVM_CACHE_DIR=$dir/cache RUNCVM_LOG_DIR=$dir/log
exec $here/bin/runcvm-runtime "\$@"
EOF
    chmod +x "$dir/runcvm"
    echo "$dir/runcvm"
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
