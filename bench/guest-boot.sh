#!/usr/bin/env bash
# Boot-time benchmark for the guest kernel assets under QEMU TCG: time from QEMU launch to a marker printed by the
# guest's init, for gzip vs lz4 initramfs and uncompressed vmlinux (PVH) vs bzImage.
#   bash bench/guest-boot.sh [RUNS=3]
# Builds a gzip variant of the initramfs in a temp dir (the lz4 one is var/assets/kernel). Results on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
A=${RUNCVM_ASSETS:-$PWD/var/assets}/kernel
REL=$(cat "$A/release")
BZ=var/cache/kernel/$REL/boot/vmlinuz-$REL
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
RUNCVM_ASSETS=$T RUNCVM_INITRAMFS_COMPRESS=gzip bash scripts/assets/10-kernel.sh 2>/dev/null
mkdir -p "$T/rootfs/bin" && cp /bin/busybox "$T/rootfs/bin/"
printf '#!/bin/busybox sh\n/bin/busybox echo BOOT-MARKER\n/bin/busybox poweroff -f\n' >"$T/rootfs/init.sh"
chmod +x "$T/rootfs/init.sh"
mke2fs -q -t ext4 -d "$T/rootfs" "$T/root.ext4" 16M
khz=$(awk -F: '/cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
boot() { # kernel initrd → seconds to marker
  local start now
  start=$(date +%s%N)
  timeout 60 qemu-system-x86_64 -M microvm,pit=on -accel tcg -cpu max -m 256 -smp 1 -kernel "$1" -initrd "$2" \
    -append "console=ttyS0 root=/dev/vda panic=-1 quiet loglevel=0 pci=off tsc_early_khz=$khz runcvm.init=/init.sh" \
    -drive id=root,file="$T/root.ext4",format=raw,if=none,readonly=on -device virtio-blk-device,drive=root \
    -nographic -no-reboot -nodefaults -serial stdio </dev/null | while IFS= read -r line; do
      if [[ $line == *BOOT-MARKER* ]]; then now=$(date +%s%N); echo "$(((now - start) / 1000000))"; fi
    done
}
for variant in "vmlinux lz4|$A/vmlinux|$A/initramfs.img" "vmlinux gzip|$A/vmlinux|$T/kernel/initramfs.img" \
  "bzImage lz4|$BZ|$A/initramfs.img" "bzImage gzip|$BZ|$T/kernel/initramfs.img"; do
  IFS='|' read -r name k i <<<"$variant"
  times=()
  for _ in $(seq "$RUNS"); do times+=("$(boot "$k" "$i")"); done
  echo "$name: ${times[*]} ms (load $(cut -d' ' -f1 /proc/loadavg))"
done
