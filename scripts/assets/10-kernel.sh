#!/usr/bin/env bash
# Guest kernel assets for runcvm: an uncompressed vmlinux (PVH boot, about half the boot time of a bzImage under
# TCG) and a small initramfs (busybox-static + the virtio/ext4/overlay/fuse/virtiofs/NFSv3 modules + /init).
#
#   bash scripts/assets/10-kernel.sh            # idempotent; a second run is a no-op (no apt, no dpkg)
#   RUNCVM_KERNEL_PACKAGE=linux-image-6.1.0-56-cloud-amd64 bash scripts/assets/10-kernel.sh   # pin a package
#   RUNCVM_INITRAMFS_COMPRESS=gzip|lz4 (default lz4)   RUNCVM_ASSETS=DIR (default var/assets)   FORCE=1
#
# Output (contract in docs/dev/guest-boot.md): $RUNCVM_ASSETS/kernel/{vmlinux,initramfs.img,release,manifest.json}.
# The downloaded .deb and its extracted tree are kept under var/cache/kernel/ (outside the assets).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${RUNCVM_ASSETS:-$ROOT/var/assets}/kernel
CACHE=$ROOT/var/cache/kernel
COMPRESS=${RUNCVM_INITRAMFS_COMPRESS:-lz4}
META=linux-image-cloud-amd64
say() { printf '[assets:kernel] %s\n' "$*" >&2; }
die() { printf '[assets:kernel] error: %s\n' "$1" >&2; [[ -n ${2:-} ]] && printf '[assets:kernel] fix: %s\n' "$2" >&2; exit 1; }

# Modules the initramfs loads, in this order, as GROUP:NAME (each expanded with its dependencies by
# modprobe --show-depends; a dependency belongs to the first group that pulls it in). The core group always loads;
# the others load unless the kernel command line narrows them with runcvm.modules=nfs,vsock,... (see guest-boot.md).
# Built-in ones (ext4, af_packet on the cloud kernel) and absent ones (9p on the cloud kernel) are skipped and noted.
MODULES=(core:virtio_mmio core:virtio_blk core:virtio_net core:virtio_console core:virtio_rng core:ext4 core:overlay
  core:fuse core:virtiofs core:af_packet nfs:sunrpc nfs:grace nfs:lockd nfs:nfs nfs:nfsv3
  9p:9pnet 9p:9pnet_virtio 9p:9p vsock:vsock vsock:vmw_vsock_virtio_transport)

INIT_SRC=scripts/assets/initramfs/init
# runcvm-resume (VM templates, issue 17): a small static C helper /init runs at the template point
RESUME_SRCS=(src/runcvm/guest/resume.c src/runcvm/guest/resume.h src/runcvm/guest/util.c src/runcvm/guest/util.h src/runcvm/guest/contract.h)
# Everything that changes the output when it changes: this script, /init, the helper's sources, the busybox binary,
# the compressor.
recipe_hash() {
  { sha256sum "$0" "$INIT_SRC" "${RESUME_SRCS[@]}" | cut -d' ' -f1; stat -c '%s %Y' /bin/busybox; echo "$COMPRESS ${RUNCVM_KERNEL_PACKAGE:-}"; } |
    sha256sum | cut -d' ' -f1
}
# apt's view of the world changes only when its lists change: while they do not, the resolved package cannot move,
# so the fast path needs no apt-cache call (which costs ~1 s here).
apt_lists_stamp() { stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0; }

STAMP=$OUT/.stamp
want_stamp="$(recipe_hash) $(apt_lists_stamp)"
if [[ -z ${FORCE:-} && -f $STAMP && $(cat "$STAMP") == "$want_stamp" && -s $OUT/vmlinux && -s $OUT/initramfs.img && -s $OUT/manifest.json ]]; then
  exit 0
fi

for tool in apt-cache apt-get dpkg-deb depmod modprobe cpio lz4 gzip file sha256sum busybox strip; do
  command -v "$tool" >/dev/null || die "$tool not found" "npm run setup (installs kmod cpio lz4 file busybox-static)"
done
[[ -x /bin/busybox ]] && file -L /bin/busybox | grep -q 'statically linked' ||
  die "/bin/busybox is not the static busybox" "apt-get install -y busybox-static"

resolve_package() {
  local dep
  dep=$(apt-cache depends "$META" 2>/dev/null | awk '/^ *Depends: linux-image-[0-9]/ {print $2; exit}') || true
  printf '%s' "$dep"
}
PKG=${RUNCVM_KERNEL_PACKAGE:-}
if [[ -z $PKG ]]; then
  PKG=$(resolve_package)
  if [[ -z $PKG ]]; then
    say "apt-cache does not know $META; running apt-get update"
    apt-get update -qq || die "apt-get update failed" "check the Debian mirror in /etc/apt/sources.list.d, then rerun"
    PKG=$(resolve_package)
  fi
  [[ -n $PKG ]] || die "cannot resolve the kernel package behind $META" \
    "apt-cache depends $META; or pin one: RUNCVM_KERNEL_PACKAGE=linux-image-<ver>-cloud-amd64 bash $0"
fi
RELEASE=${PKG#linux-image-}

# The same package and recipe as the last build (only the apt lists moved): refresh the stamp and stop.
if [[ -z ${FORCE:-} && -f $OUT/manifest.json && -f $STAMP && -s $OUT/vmlinux && -s $OUT/initramfs.img ]] &&
  grep -q "\"package\": \"$PKG\"" "$OUT/manifest.json" && [[ $(cut -d' ' -f1 "$STAMP") == "$(recipe_hash)" ]]; then
  echo "$want_stamp" >"$STAMP"
  exit 0
fi

say "building guest kernel assets from $PKG (initramfs: $COMPRESS)"
mkdir -p "$CACHE" "$OUT"
deb=$(ls "$CACHE/${PKG}_"*.deb 2>/dev/null | head -1 || true)
if [[ -z $deb ]]; then
  # apt's _apt sandbox user cannot write here; the download is still verified against the signed lists.
  (cd "$CACHE" && apt-get download -q "$PKG" 2>&1 | grep -v 'Download is performed unsandboxed' >&2) || true
  deb=$(ls "$CACHE/${PKG}_"*.deb 2>/dev/null | head -1 || true)
  [[ -n $deb ]] || die "apt-get download $PKG failed" "apt-get update, then rerun; or pin RUNCVM_KERNEL_PACKAGE"
fi

TREE=$CACHE/$RELEASE
if [[ ! -f $TREE/.extracted ]]; then
  rm -rf "$TREE" && mkdir -p "$TREE"
  dpkg-deb -x "$deb" "$TREE"
  depmod -b "$TREE" "$RELEASE"
  touch "$TREE/.extracted"
fi
BZ=$TREE/boot/vmlinuz-$RELEASE
[[ -f $BZ ]] || die "$BZ missing from $deb" "rm -rf $CACHE and rerun"

WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --- vmlinux: find a compressed payload inside the bzImage, decompress, keep the first result that is an ELF ---
extract_vmlinux() {
  local magic cmd off
  for spec in '\x02\x21\x4c\x18|lz4 -dc' '\xfd\x37\x7a\x58\x5a\x00|xz -dc' '\x28\xb5\x2f\xfd|zstd -dc' \
    '\x1f\x8b\x08|gzip -dc' '\x5d\x00\x00\x00|xz -dc --format=lzma'; do
    magic=${spec%%|*} cmd=${spec#*|}
    command -v "${cmd%% *}" >/dev/null || continue
    for off in $(LC_ALL=C grep -obUaP "$magic" "$BZ" | cut -d: -f1); do
      # decompressors complain about the bytes after the payload: judge by the result, not the exit status
      tail -c +$((off + 1)) "$BZ" | $cmd >"$WORK/vmlinux" 2>/dev/null || true
      if [[ -s $WORK/vmlinux ]] && [[ $(head -c 4 "$WORK/vmlinux" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; then
        say "vmlinux: ${cmd%% *} payload at offset $off"
        return 0
      fi
    done
  done
  return 1
}
extract_vmlinux || die "no LZ4/XZ/ZSTD/GZIP/LZMA payload in $BZ decompressed to an ELF vmlinux" \
  "check the kernel's CONFIG_KERNEL_* compression and install the matching decompressor (lz4, xz-utils, zstd)"
file -b "$WORK/vmlinux" | grep -q '^ELF 64-bit' || die "extracted vmlinux is not a 64-bit ELF" "rm -rf $CACHE and rerun"

# --- initramfs tree ---
IR=$WORK/initramfs
mkdir -p "$IR"/{bin,sbin,dev,proc,sys,run/lower,run/upper,newroot,lib/modules,tmp}
cp /bin/busybox "$IR/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ $applet == busybox ]] || ln -s busybox "$IR/bin/$applet"
done
install -m 0755 "$INIT_SRC" "$IR/init"
# musl when installed (~50 KB static instead of ~700 KB with glibc); the helper needs no kernel headers
CC_STATIC=gcc
command -v musl-gcc >/dev/null && CC_STATIC=musl-gcc
command -v "$CC_STATIC" >/dev/null || die "gcc not found" "apt-get install -y gcc libc6-dev"
(cd src/runcvm/guest && "$CC_STATIC" -static -Os -Wall -Wextra -o "$IR/bin/runcvm-resume" resume.c util.c) ||
  die "cannot build runcvm-resume" "check src/runcvm/guest/resume.c"
strip "$IR/bin/runcvm-resume"
if [[ $(id -u) -eq 0 ]]; then
  mknod -m 600 "$IR/dev/console" c 5 1
  mknod -m 666 "$IR/dev/null" c 1 3
fi

: >"$IR/lib/modules/load.list"
loaded=() builtin=() absent=()
declare -A seen=()
for gm in "${MODULES[@]}"; do
  group=${gm%%:*} m=${gm#*:}
  if ! deps=$(modprobe -d "$TREE" -S "$RELEASE" --show-depends "$m" 2>/dev/null); then
    absent+=("$m"); continue
  fi
  while read -r verb path _; do
    case $verb in
      builtin) builtin+=("$m") ;;
      insmod)
        rel=${path#"$TREE/lib/modules/$RELEASE/kernel/"}
        name=$(basename "$path")
        [[ -n ${seen[$rel]:-} ]] && continue
        seen[$rel]=1
        # Dropping the appended signature (strip rewrites the ELF without it) saves the RSA check per insmod,
        # ~0.3 s of a TCG boot; the kernel does not enforce signatures (CONFIG_MODULE_SIG_FORCE unset) and only
        # marks itself tainted, silently at loglevel=0.
        strip --strip-debug -o "$IR/lib/modules/$name" "$path"
        echo "$group $name" >>"$IR/lib/modules/load.list"
        loaded+=("${name%.ko}")
        ;;
    esac
  done <<<"$deps"
done
[[ ${#absent[@]} -gt 0 ]] && say "not in $RELEASE (skipped): ${absent[*]}"

case $COMPRESS in
  gzip) compress_cmd=(gzip -9n) ;;
  lz4) compress_cmd=(lz4 -l -9 -q) ;; # -l: the legacy frame format the kernel's initramfs unpacker reads
  *) die "RUNCVM_INITRAMFS_COMPRESS=$COMPRESS is not gzip or lz4" "unset it, or set gzip or lz4" ;;
esac
(cd "$IR" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
  cpio --null -o -H newc --reproducible --owner=0:0 --quiet | "${compress_cmd[@]}") >"$WORK/initramfs.img"

# --- publish (each file renamed into place, the stamp last) ---
mv -f "$WORK/vmlinux" "$OUT/vmlinux.new" && mv -f "$OUT/vmlinux.new" "$OUT/vmlinux"
mv -f "$WORK/initramfs.img" "$OUT/initramfs.img.new" && mv -f "$OUT/initramfs.img.new" "$OUT/initramfs.img"
echo "$RELEASE" >"$OUT/release"
json_list() { local first=1; printf '['; for x in "$@"; do ((first)) || printf ', '; first=0; printf '"%s"' "$x"; done; printf ']'; }
cat >"$OUT/manifest.json.new" <<JSON
{
  "release": "$RELEASE",
  "package": "$PKG",
  "packageVersion": "$(dpkg-deb -f "$deb" Version)",
  "vmlinux": "vmlinux",
  "vmlinuxSha256": "$(sha256sum "$OUT/vmlinux" | cut -d' ' -f1)",
  "initramfs": "initramfs.img",
  "initramfsCompression": "$COMPRESS",
  "initramfsSha256": "$(sha256sum "$OUT/initramfs.img" | cut -d' ' -f1)",
  "modules": $(json_list "${loaded[@]}"),
  "builtinModules": $(json_list "${builtin[@]}"),
  "absentModules": $(json_list "${absent[@]}")
}
JSON
mv -f "$OUT/manifest.json.new" "$OUT/manifest.json"
echo "$want_stamp" >"$STAMP"
say "ready: $OUT (vmlinux $(du -h "$OUT/vmlinux" | cut -f1), initramfs $(du -h "$OUT/initramfs.img" | cut -f1), ${#loaded[@]} modules)"
