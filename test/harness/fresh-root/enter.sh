#!/usr/bin/env bash
# Enter ROOT as its own machine and run CMD there as root: called as PID 1 of new mount, PID and UTS namespaces
# (`unshare --mount --pid --uts --fork --kill-child --propagation private enter.sh ROOT CMD…`), it mounts /proc, /sys
# (with the host's cgroup hierarchy), a fresh /dev holding only the devices a machine of this kind has, /run and
# /dev/shm as tmpfs, the host's resolv.conf and hosts, then pivot_root()s into ROOT (not chroot: a chrooted process
# may not create user namespaces, so rootless builds would fail) and detaches the old root.
# Every mount lives in this mount namespace and vanishes with it; every process dies with this PID namespace.
#   FRESH_KVM=1        also give the root the host's /dev/kvm (only when the host's KVM is usable; default: none)
#   FRESH_MOUNTS=…     extra mounts, one a line: `bind SRC DST`, `robind SRC DST` (host SRC at DST in the root) or
#                      `tmpfs SIZE DST` (e.g. a small disk)
set -euo pipefail
ROOT=$1
shift
[[ $$ -eq 1 ]] || { echo "enter.sh: must run as PID 1 of a new PID namespace (unshare --pid --fork)" >&2; exit 2; }

hostname fresh-machine
mount --make-rprivate /
mount --bind "$ROOT" "$ROOT"   # pivot_root needs the new root to be a mount point
mount -t proc -o nosuid,nodev,noexec proc "$ROOT/proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs "$ROOT/sys"
# cgroups as the host has them (containerd and runc need them); a fresh sysfs does not carry its sub-mounts
mount --rbind /sys/fs/cgroup "$ROOT/sys/fs/cgroup"

mount -t tmpfs -o nosuid,mode=0755,size=64k tmpfs "$ROOT/dev"
bind_dev() {
  [[ -e /$1 ]] || return 0 # a device this host lacks, the root lacks too
  local dst=$ROOT/$1
  mkdir -p "$(dirname "$dst")"
  touch "$dst"
  mount --bind "/$1" "$dst"
}
for d in null zero full random urandom tty net/tun fuse; do bind_dev "dev/$d"; done
if [[ ${FRESH_KVM:-} == 1 ]]; then bind_dev dev/kvm; fi
mkdir -p "$ROOT/dev/pts" "$ROOT/dev/shm" "$ROOT/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$ROOT/dev/pts"
ln -s pts/ptmx "$ROOT/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$ROOT/dev/shm"
mount -t mqueue mqueue "$ROOT/dev/mqueue"
ln -s /proc/self/fd "$ROOT/dev/fd"
ln -s /proc/self/fd/0 "$ROOT/dev/stdin"
ln -s /proc/self/fd/1 "$ROOT/dev/stdout"
ln -s /proc/self/fd/2 "$ROOT/dev/stderr"

mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$ROOT/run"
mkdir -p "$ROOT/run/lock"
# the machine's network configuration, as any installed machine has it
for f in resolv.conf hosts; do
  rm -f "$ROOT/etc/$f"
  touch "$ROOT/etc/$f"
  mount --bind -o ro "/etc/$f" "$ROOT/etc/$f"
done

while read -r kind a b; do
  [[ -n $kind ]] || continue
  case $kind in
    bind) mkdir -p "$ROOT/$b"; mount --bind "$a" "$ROOT/$b" ;;
    robind) mkdir -p "$ROOT/$b"; mount --bind "$a" "$ROOT/$b"; mount -o remount,bind,ro "$ROOT/$b" ;;
    tmpfs) mkdir -p "$ROOT/$b"; mount -t tmpfs -o "size=$a,mode=0755" tmpfs "$ROOT/$b" ;;
    *) echo "enter.sh: unknown mount kind $kind" >&2; exit 2 ;;
  esac
done <<<"${FRESH_MOUNTS:-}"

cd "$ROOT"
mkdir -p .old-root
pivot_root . .old-root
cd /
umount -l /.old-root
rmdir /.old-root
# a login's environment, nothing of the caller's (no CI variables, no NODE_EXTRA_CA_CERTS)
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
