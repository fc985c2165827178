#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine (run as root): apt packages, npm ci, TypeScript build, guest
# assets (kernel, initramfs, guest package). Each step checks first, so a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '[setup] %s\n' "$*" >&2; }

APT_PACKAGES=(
  docker-registry apache2-utils openssl ca-certificates curl git jq
  buildah runc uidmap skopeo umoci containerd docker.io
  qemu-system-x86 qemu-utils busybox-static e2fsprogs cpio xz-utils lz4 zstd kmod iproute2 debootstrap
  gcc libc6-dev patchelf file procps psmisc util-linux musl musl-tools
)

missing_packages() {
  # One dpkg-query for all packages (a loop costs ~20 ms a package). dpkg-query exits 1 when any package is unknown
  # to dpkg (the normal case on a fresh machine), so its status is ignored: what it printed is the answer.
  local installed
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null | awk '$4 == "installed" {print $1}' || true)
  for p in "${APT_PACKAGES[@]}"; do
    grep -qx "$p" <<<"$installed" || printf '%s\n' "$p"
  done
}

# Setup's own failures name the cause and the fix. Exit 6: the machine lacks something setup cannot fix itself
# (root, disk space, the Debian archive, a package apt does not know); 1: a step failed (its output is shown).
fail_env() { # CAUSE FIX
  say "error: $1"
  say "fix: $2"
  exit 6
}

node_version_ok() {
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 5) ? 0 : 1)'
}

# free MiB of the filesystem holding DIR (or its nearest existing parent)
free_mib() {
  local d=$1
  while [[ ! -e $d ]]; do d=$(dirname "$d"); done
  df -Pm "$d" | awk 'NR == 2 {print $4}'
}

need_space() { # DIR MIB WHAT
  local free; free=$(free_mib "$1")
  if (( free < $2 )); then
    fail_env "not enough disk space: $1 has $free MiB free; $3 needs about $2 MiB" \
      "free space on that filesystem (apt-get clean, unused container images, old caches) or grow it, then rerun"
  fi
}

# The first line of apt's output that says the archive could not be reached, if any.
apt_network_error() {
  grep -m1 -E 'Failed to fetch|Temporary failure resolving|Could not resolve|Could not connect|Unable to connect|Connection timed out|Network is unreachable' "$1" || true
}

step_apt() {
  local missing
  mapfile -t missing < <(missing_packages)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]}"
    say "fix: run this script as root (sudo npm run setup), or install them with apt-get"
    exit 6
  fi
  # about 300 MiB of downloads and 900 MiB installed when every package is missing (a bare Debian 12)
  need_space /var/cache/apt/archives 2048 "installing ${#missing[@]} Debian packages"
  need_space /usr 2048 "installing ${#missing[@]} Debian packages"
  say "installing ${#missing[@]} Debian packages: ${missing[*]}"
  # Never let package postinst scripts start system services (containerd, docker, registry) on this machine; the
  # guard is removed again if setup put it there.
  local guard=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
  fi
  export DEBIAN_FRONTEND=noninteractive
  local log; log=$(mktemp)
  local status=0 net
  apt-get update -qq >"$log" 2>&1 || status=$?
  net=$(apt_network_error "$log")
  if [[ -n $net ]]; then
    [[ -n $guard ]] && rm -f "$guard"
    rm -f "$log"
    fail_env "cannot reach the Debian archive: ${net#[WE]: }" \
      "check this machine's network, DNS (/etc/resolv.conf) and any proxy (Acquire::http::Proxy under /etc/apt/apt.conf.d); \`apt-get update\` must succeed, then rerun"
  fi
  if [[ $status -ne 0 ]]; then
    cat "$log" >&2
    [[ -n $guard ]] && rm -f "$guard"
    rm -f "$log"
    say "error: apt-get update failed (its output is above)"
    say "fix: repair the apt sources it names (/etc/apt/sources.list, /etc/apt/sources.list.d), then rerun"
    exit 1
  fi
  # a package apt does not know: sources without Debian 12 (bookworm) main, or a name that is wrong
  local unknown=() p known
  known=$(apt-cache pkgnames 2>/dev/null)
  for p in "${missing[@]}"; do
    grep -qxF "$p" <<<"$known" || unknown+=("$p")
  done
  if [[ ${#unknown[@]} -gt 0 ]]; then
    [[ -n $guard ]] && rm -f "$guard"
    rm -f "$log"
    fail_env "apt cannot find the Debian package(s): ${unknown[*]}" \
      "these are in Debian 12 (bookworm) main: make sure /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources names http://deb.debian.org/debian bookworm main (or a mirror of it), run apt-get update, then rerun"
  fi
  status=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 || status=$?
  [[ -n $guard ]] && rm -f "$guard"
  if [[ $status -ne 0 ]]; then
    net=$(apt_network_error "$log")
    if [[ -n $net ]]; then
      rm -f "$log"
      fail_env "cannot reach the Debian archive: ${net#[WE]: }" \
        "check this machine's network, DNS (/etc/resolv.conf) and any proxy (Acquire::http::Proxy under /etc/apt/apt.conf.d), then rerun"
    fi
    if grep -q 'No space left on device' "$log"; then
      rm -f "$log"
      fail_env "the disk filled up while apt installed the packages" "free space (apt-get clean, old caches), then rerun"
    fi
    grep -v '^debconf: ' "$log" >&2
    rm -f "$log"
    say "error: apt-get install failed (its output is above)"
    say "fix: run \`apt-get install -f\` to repair a half-installed state, then rerun"
    exit 1
  fi
  rm -f "$log"
}

step_npm() {
  if [[ -d node_modules && node_modules/.package-lock.json -nt package-lock.json ]]; then return 0; fi
  # npm ci, the build and the guest assets take about 600 MiB in the checkout
  need_space "$ROOT" 1024 "installing the npm dependencies, the build and the guest assets"
  say "npm ci"
  local log="${TMPDIR:-/tmp}/npm-ci.$$.log"
  if ! npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>"$log"; then
    cat "$log" >&2
    rm -f "$log"
    say "npm ci failed (its messages are above)"
    say "fix: check that the npm registry is reachable (npm ping), then rerun; a lock file out of sync with package.json is a project bug to report"
    exit 1
  fi
  rm -f "$log"
  touch node_modules/.package-lock.json
}

step_build() {
  local stamp=dist/.build-stamp
  if [[ -f $stamp ]] && [[ -z $(find src tsconfig.json tsconfig.build.json package.json -newer "$stamp" -print -quit) ]]; then
    return 0
  fi
  say "building TypeScript"
  # the stamp takes the time the build STARTED: a source saved during the build makes the next run rebuild
  local started; started=$(mktemp)
  rm -rf dist
  npx tsc -p tsconfig.build.json
  bash scripts/bundle-kimia.sh
  mv "$started" "$stamp"
}

step_assets() {
  # Each asset script is itself idempotent and cached by version.
  for script in scripts/assets/*.sh; do
    [[ -e $script ]] || continue
    bash "$script"
  done
}

if ! command -v node >/dev/null || ! node_version_ok; then
  fail_env "Node.js >= 20.5 is needed; this machine has $(node --version 2>/dev/null || echo none)" \
    "install Node.js 20 (Debian 12's own nodejs is 18): the nodejs package from NodeSource (deb.nodesource.com, node_20.x), Debian 13's nodejs, or the nodejs.org tarball under /usr/local; then rerun"
fi
step_apt
# One setup at a time per checkout: parallel test runs must not rebuild dist/ or the assets under each other.
mkdir -p var
exec 9>var/.setup.lock
flock 9
step_npm
step_build
step_assets
