#!/usr/bin/env bash
# Boot-time benchmark for the guest kernel assets under QEMU TCG: wall time from QEMU launch to a marker printed by
# the guest's init, and the CPU time QEMU used for the whole boot (less sensitive to other load on a shared host),
# for: vmlinux vs bzImage, lz4 vs gzip initramfs, all module groups vs core only (runcvm.modules=none).
#   bash bench/guest-boot.sh [RUNS=3]
# CPU time needs GNU time (/usr/bin/time, Debian package "time"); without it that column reads 0.
# Variants run round-robin so a burst of load elsewhere hits all of them alike. Prints medians.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
A=${RUNCVM_ASSETS:-$PWD/var/assets}/kernel
REL=$(cat "$A/release")
BZ=var/cache/kernel/$REL/boot/vmlinuz-$REL
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
[[ $(jq -r .initramfsCompression "$A/manifest.json") == lz4 ]] || { echo "expects the default lz4 initramfs in $A" >&2; exit 1; }
RUNCVM_ASSETS=$T RUNCVM_INITRAMFS_COMPRESS=gzip bash scripts/assets/10-kernel.sh 2>/dev/null
mkdir -p "$T/rootfs/bin" && cp /bin/busybox "$T/rootfs/bin/"
printf '#!/bin/busybox sh\n/bin/busybox echo BOOT-MARKER\n/bin/busybox poweroff -f\n' >"$T/rootfs/init.sh"
chmod +x "$T/rootfs/init.sh"
mke2fs -q -t ext4 -d "$T/rootfs" "$T/root.ext4" 16M 2>/dev/null
khz=$(awk -F: '/cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)

boot() { # kernel initrd extra-append → "wall_ms cpu_ms"
  local start
  : >"$T/out"
  start=$(date +%s%N)
  local timer=()
  if [[ -x /usr/bin/time ]]; then timer=(/usr/bin/time -f '%e %U %S' -o "$T/time"); else echo '0 0 0' >"$T/time"; fi
  "${timer[@]}" timeout 60 qemu-system-x86_64 -M microvm,pit=on -accel tcg -cpu max \
    -m 256 -smp 1 -kernel "$1" -initrd "$2" \
    -append "console=ttyS0 root=/dev/vda panic=-1 quiet loglevel=0 pci=off tsc_early_khz=$khz runcvm.init=/init.sh $3" \
    -drive id=root,file="$T/root.ext4",format=raw,if=none -device virtio-blk-device,drive=root \
    -nographic -no-reboot -nodefaults -serial stdio </dev/null >"$T/out" 2>&1 &
  local pid=$! wall=
  while kill -0 "$pid" 2>/dev/null; do
    if [[ -z $wall ]] && grep -q BOOT-MARKER "$T/out"; then wall=$((($(date +%s%N) - start) / 1000000)); fi
    sleep 0.02
  done
  wait "$pid" || true
  [[ -n $wall ]] || { grep -q BOOT-MARKER "$T/out" && wall=$((($(date +%s%N) - start) / 1000000)) || wall=NA; }
  echo "$wall $(awk '{printf "%d", ($2 + $3) * 1000}' "$T/time")"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR + 1) / 2)] : "NA")}'; }

names=("vmlinux + lz4" "vmlinux + gzip" "bzImage + lz4" "bzImage + gzip" "vmlinux + lz4, core modules only")
specs=("$A/vmlinux|$A/initramfs.img|" "$A/vmlinux|$T/kernel/initramfs.img|" "$BZ|$A/initramfs.img|"
  "$BZ|$T/kernel/initramfs.img|" "$A/vmlinux|$A/initramfs.img|runcvm.modules=none")
declare -A walls=() cpus=()
for _ in $(seq "$RUNS"); do
  for i in "${!specs[@]}"; do
    IFS='|' read -r k ir extra <<<"${specs[$i]}"
    read -r w c < <(boot "$k" "$ir" "$extra")
    walls[$i]+=" $w" cpus[$i]+=" $c"
  done
done
echo "| variant | launch → marker, median (runs) | QEMU CPU time, median |"
echo "|---|---|---|"
for i in "${!specs[@]}"; do
  echo "| ${names[$i]} | $(median <<<"${walls[$i]}") ms (${walls[$i]# }) | $(median <<<"${cpus[$i]}") ms (${cpus[$i]# }) |"
done
echo "(load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); initramfs lz4 $(du -h "$A/initramfs.img" | cut -f1), gzip $(du -h "$T/kernel/initramfs.img" | cut -f1))"
