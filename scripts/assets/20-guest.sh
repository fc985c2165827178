#!/usr/bin/env bash
# The runcvm GUEST PACKAGE: a self-contained, read-only folder the runtime bind-mounts into every container at
# /.runcvm/guest, so that the launcher and its tools (QEMU, ip, node, e2fsprogs, virtiofsd, busybox) run in any image:
# glibc, musl, busybox-only or no shell at all.
#
#   bash scripts/assets/20-guest.sh        # idempotent; rebuilds only when the binary list, a source binary or
#                                          # this script changed (a second run is a no-op in milliseconds)
#   RUNCVM_ASSETS=DIR (default var/assets)   FORCE=1 to rebuild
#
# Layout (contract in docs/dev/guest-boot.md):
#   bin/X                          host binaries from scripts/assets/guest-binaries.txt; dynamic ones patched with
#                                  interpreter /.runcvm/guest/lib/ld and DT_RPATH /.runcvm/guest/lib
#   lib/ld                         the host's glibc loader (ld-linux-x86-64.so.2)
#   lib/*.so*                      every shared library they need (ldd, recursively), by soname
#   lib/x86_64-linux-gnu/qemu/     QEMU's loadable modules (accel-tcg-x86_64.so: TCG is a module in Debian);
#                                  QEMU finds them relative to its own binary (bin/../lib/x86_64-linux-gnu/qemu)
#   share/qemu/                    QEMU firmware for -M microvm (bios-microvm.bin, qboot.rom, pvh.bin, linuxboot*)
#   etc/mke2fs.conf                for MKE2FS_CONFIG=/.runcvm/guest/etc/mke2fs.conf
#   manifest.json
# var/assets/guest is a symlink to the current build (.guest-<hash>): mount it with its real path (mount --bind
# resolves the symlink once), so a later rebuild never touches the files under a running container.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ASSETS=${RUNCVM_ASSETS:-$ROOT/var/assets}
OUT=$ASSETS/guest
LIST=scripts/assets/guest-binaries.txt
PREFIX=/.runcvm/guest
QEMU_MODULES=(accel-tcg-x86_64.so)
QEMU_DATA=(bios-microvm.bin qboot.rom pvh.bin linuxboot.bin linuxboot_dma.bin multiboot_dma.bin kvmvapic.bin)
say() { printf '[assets:guest] %s\n' "$*" >&2; }
die() { printf '[assets:guest] error: %s\n' "$1" >&2; [[ -n ${2:-} ]] && printf '[assets:guest] fix: %s\n' "$2" >&2; exit 1; }

[[ -f $LIST ]] || die "$LIST missing" "restore it from git"

# The list, resolved to the first existing alternative per line ("a|b|c"); a trailing "?" makes a line optional.
resolve_list() {
  local line alts alt found optional
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}; line=${line//[[:space:]]/}
    [[ -n $line ]] || continue
    optional=0
    [[ $line == *\? ]] && { optional=1; line=${line%\?}; }
    found=
    IFS='|' read -ra alts <<<"$line"
    for alt in "${alts[@]}"; do [[ -f $alt ]] && { found=$alt; break; }; done
    if [[ -n $found ]]; then echo "$found"
    elif ((optional)); then say "optional binary not on this host, skipped: $line"
    else die "guest binary $line not found on this host" "npm run setup (installs the Debian packages), or edit $LIST"
    fi
  done <"$LIST"
}
# (command substitution, not process substitution: a die inside resolve_list must stop this script)
resolved=$(resolve_list) || exit 1
mapfile -t BINARIES <<<"$resolved"
[[ -n $resolved ]] || die "no binaries in $LIST" "add at least one absolute path"

LOADER=$(readlink -f /lib64/ld-linux-x86-64.so.2)
QEMU_MODDIR=/usr/lib/x86_64-linux-gnu/qemu
QEMU_DATADIR=/usr/share/qemu

# Cache key: this script, the list, and size+mtime of every input file (stat is cheap; hashing node's 99 MB is not).
inputs_key() {
  {
    sha256sum "$0" "$LIST" | cut -d' ' -f1
    stat -L -c '%n %s %Y' "${BINARIES[@]}" "$LOADER" /etc/mke2fs.conf 2>/dev/null
    for m in "${QEMU_MODULES[@]}"; do stat -L -c '%n %s %Y' "$QEMU_MODDIR/$m" 2>/dev/null || true; done
    for d in "${QEMU_DATA[@]}"; do stat -L -c '%n %s %Y' "$QEMU_DATADIR/$d" 2>/dev/null || true; done
  } | sha256sum | cut -d' ' -f1
}
KEY=$(inputs_key)
if [[ -z ${FORCE:-} && -f $OUT/.stamp && $(cat "$OUT/.stamp") == "$KEY" && -f $OUT/manifest.json ]]; then
  exit 0
fi

for tool in patchelf ldd file readelf; do
  command -v "$tool" >/dev/null || die "$tool not found" "apt-get install -y patchelf binutils file (or npm run setup)"
done

say "building the guest package (${#BINARIES[@]} binaries)"
mkdir -p "$ASSETS"
STAGE=$(mktemp -d "$ASSETS/.guest-stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,lib,share/qemu,etc} "$STAGE/lib/x86_64-linux-gnu/qemu"

is_dynamic() { readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }

declare -A LIBS=() # soname → host path
collect_libs() {   # every library $1 needs, recursively (ldd already walks the whole tree)
  local name arrow path _rest
  while read -r name arrow path _rest; do
    [[ $arrow == '=>' && -n $path && $path == /* ]] || continue
    [[ -z ${LIBS[$name]:-} ]] && LIBS[$name]=$path
  done < <(ldd "$1" 2>/dev/null)
  if ldd "$1" 2>/dev/null | grep -q '=> not found'; then
    die "$1 needs a library this host lacks: $(ldd "$1" | grep 'not found' | head -1 | xargs)" "apt-get install the package that provides it"
  fi
}

patch_exec() { # $1 = copied binary
  patchelf --set-interpreter "$PREFIX/lib/ld" --force-rpath --set-rpath "$PREFIX/lib" "$1"
}

dynamic=() static=()
for src in "${BINARIES[@]}"; do
  name=$(basename "$src")
  [[ -e $STAGE/bin/$name ]] && die "two guest binaries are named $name" "remove one from $LIST"
  cp -L "$src" "$STAGE/bin/$name"
  chmod 0755 "$STAGE/bin/$name"
  if is_dynamic "$src"; then
    collect_libs "$src"
    patch_exec "$STAGE/bin/$name"
    dynamic+=("$name")
  else
    static+=("$name")
  fi
done

qemu_modules=()
if [[ -e $STAGE/bin/qemu-system-x86_64 ]]; then
  for m in "${QEMU_MODULES[@]}"; do
    [[ -f $QEMU_MODDIR/$m ]] || { say "QEMU module $m not on this host (built in?), skipped"; continue; }
    cp -L "$QEMU_MODDIR/$m" "$STAGE/lib/x86_64-linux-gnu/qemu/$m"
    collect_libs "$QEMU_MODDIR/$m"
    qemu_modules+=("$m")
  done
  for d in "${QEMU_DATA[@]}"; do
    [[ -f $QEMU_DATADIR/$d ]] && cp -L "$QEMU_DATADIR/$d" "$STAGE/share/qemu/$d"
  done
  [[ -f $STAGE/share/qemu/bios-microvm.bin ]] ||
    die "$QEMU_DATADIR/bios-microvm.bin missing: QEMU -M microvm cannot start" "apt-get install --reinstall qemu-system-data"
fi

for soname in "${!LIBS[@]}"; do
  path=${LIBS[$soname]}
  cp -L "$path" "$STAGE/lib/$soname"
  chmod 0644 "$STAGE/lib/$soname"
  # A library with its own RPATH/RUNPATH would stop the executable's DT_RPATH from applying to its dependencies.
  if readelf -d "$path" 2>/dev/null | grep -qE '\((RPATH|RUNPATH)\)'; then
    patchelf --force-rpath --set-rpath "$PREFIX/lib" "$STAGE/lib/$soname"
  fi
done
cp -L "$LOADER" "$STAGE/lib/ld"
chmod 0755 "$STAGE/lib/ld"
[[ -f /etc/mke2fs.conf ]] && cp /etc/mke2fs.conf "$STAGE/etc/mke2fs.conf"

json_list() { local first=1; printf '['; for x in "$@"; do ((first)) || printf ', '; first=0; printf '"%s"' "$x"; done; printf ']'; }
mapfile -t libnames < <(printf '%s\n' "${!LIBS[@]}" | LC_ALL=C sort)
mapfile -t sources < <(printf '%s\n' "${BINARIES[@]}")
cat >"$STAGE/manifest.json" <<JSON
{
  "prefix": "$PREFIX",
  "loader": "lib/ld",
  "loaderSource": "$LOADER",
  "glibc": "$(ldd --version | head -1 | awk '{print $NF}')",
  "binaries": $(json_list "${sources[@]}"),
  "dynamic": $(json_list "${dynamic[@]}"),
  "static": $(json_list "${static[@]}"),
  "libs": $(json_list "${libnames[@]}"),
  "qemuModules": $(json_list "${qemu_modules[@]}"),
  "qemuData": $(json_list $(ls "$STAGE/share/qemu")),
  "sizeBytes": $(du -sb "$STAGE" | cut -f1)
}
JSON
echo "$KEY" >"$STAGE/.stamp"
chmod 0755 "$STAGE"

# Publish: every build is its own folder .guest-<key>.<time>, and `guest` is a symlink swapped atomically (rename). A
# container bind-mounts the folder the symlink named at its start, so a rebuild never changes or deletes files under
# a running container: the previous build is kept, older ones are removed.
FINAL=$ASSETS/.guest-${KEY:0:12}.$(date +%s%N)
mv "$STAGE" "$FINAL"
previous=$(readlink "$OUT" 2>/dev/null || true)
if [[ -d $OUT && ! -L $OUT ]]; then # a folder from an older layout of this script
  mv "$OUT" "$ASSETS/.guest-legacy.$$"
  previous=.guest-legacy.$$
fi
ln -sfn "$(basename "$FINAL")" "$ASSETS/.guest.link.$$"
mv -T "$ASSETS/.guest.link.$$" "$OUT"
for old in "$ASSETS"/.guest-*; do
  name=$(basename "$old")
  [[ $name == "$(basename "$FINAL")" || $name == "${previous##*/}" ]] || rm -rf "$old"
done
trap - EXIT
say "ready: $OUT -> $(basename "$FINAL") ($(du -sh "$FINAL/" | cut -f1), ${#dynamic[@]} dynamic + ${#static[@]} static binaries, ${#LIBS[@]} libraries)"
