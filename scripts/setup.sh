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

step_apt() {
  local missing
  mapfile -t missing < <(missing_packages)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]}"
    say "fix: run this script as root (sudo npm run setup), or install them with apt-get"
    exit 6
  fi
  say "installing ${#missing[@]} Debian packages: ${missing[*]}"
  # Never let package postinst scripts start system services (containerd, docker, registry) on the host.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

step_npm() {
  if [[ -d node_modules && node_modules/.package-lock.json -nt package-lock.json ]]; then return 0; fi
  say "npm ci"
  if ! npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>"${TMPDIR:-/tmp}/npm-ci.$$.log"; then
    # npm 11 leaves other platforms' optional packages (rollup's) out of the lock file it writes, then `npm ci`
    # calls the same lock file out of sync (EUSAGE). `npm install` installs exactly the locked versions and leaves
    # the lock file unchanged.
    if grep -q EUSAGE "${TMPDIR:-/tmp}/npm-ci.$$.log"; then
      say "npm ci refused the lock file (npm 11 optional-platform quirk): installing the locked versions with npm install"
      npm install --no-audit --no-fund --loglevel=error >/dev/null
    else
      cat "${TMPDIR:-/tmp}/npm-ci.$$.log" >&2
      rm -f "${TMPDIR:-/tmp}/npm-ci.$$.log"
      exit 1
    fi
  fi
  rm -f "${TMPDIR:-/tmp}/npm-ci.$$.log"
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

step_apt
# One setup at a time per checkout: parallel test runs must not rebuild dist/ or the assets under each other.
mkdir -p var
exec 9>var/.setup.lock
flock 9
step_npm
step_build
step_assets
