/**
 * The guest's view of the volumes, as the hand-off carries it: the `volume=` lines of /.runcvm/config that the guest
 * init mounts (src/runcvm/guest/vol.c) and the NFS server the guest mounts from (the launcher, on the identity IP).
 * Planned by src/runcvm/volumes; defined here, with the rest of the guest config, so the hand-off depends on no
 * subsystem. Pure.
 */
import { ConfigKey, NFS_MOUNT_OPTIONS, NFS_PORT, NFS_SERVER_IP, VolumeFs } from '../guest/contract.js';
import type { Volume, VolumeFlags } from './volume-schema.js';

/**
 * NFS transport: the launcher's server address (identity IP on br-eth0) and the guest's mount options (the guest
 * contract's: guest/vol.c mounts with the same string from contract.h).
 */
export { NFS_MOUNT_OPTIONS, NFS_PORT, NFS_SERVER_IP };

/** FLAGS of a volume= line */
export function flagsText(f: VolumeFlags): string {
  return [f.readOnly ? 'ro' : 'rw', ...(f.nosuid ? ['nosuid'] : []), ...(f.nodev ? ['nodev'] : []), ...(f.noexec ? ['noexec'] : [])].join(',');
}

/** Kernel device names of the data disks: they follow the root and upper disks in the virtio-blk order. */
export function dataDiskDevice(diskIndex: number): string {
  return `/dev/vd${String.fromCharCode('a'.charCodeAt(0) + diskIndex)}`;
}

function esc(value: string): string {
  return value.replace(/%/g, '%25').replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/ /g, '%20');
}

/**
 * `/.runcvm/config` lines for the guest init (src/runcvm/guest/vol.c), in mount order:
 *   `volume=FSTYPE SOURCE DEST FLAGS FILE` — FSTYPE virtiofs|ext4|…, SOURCE the virtiofs tag or the disk device,
 *   FLAGS `ro|rw[,nosuid][,nodev][,noexec]`, FILE the file name for a single-file bind or `-`. %-escaped, spaces too.
 * `firstDataDiskIndex` = how many disks come before the data disks (root + upper = 2).
 */
export function volumeConfigLines(volumes: readonly Volume[], firstDataDiskIndex: number): string[] {
  const lines: string[] = [];
  let disk = firstDataDiskIndex;
  for (const v of volumes) {
    if (v.kind === 'virtiofs' && v.transport === 'nfs') lines.push(`${ConfigKey.volume}=${VolumeFs.nfs} ${esc(`${NFS_SERVER_IP}:${v.containerPath}`)} ${esc(v.destination)} ${flagsText(v.flags)} ${v.file ? esc(v.file) : '-'}`);
    else if (v.kind === 'virtiofs') lines.push(`${ConfigKey.volume}=${VolumeFs.virtiofs} ${esc(v.tag)} ${esc(v.destination)} ${flagsText(v.flags)} ${v.file ? esc(v.file) : '-'}`);
    else lines.push(`${ConfigKey.volume}=${v.fs} ${dataDiskDevice(disk++)} ${esc(v.destination)} rw -`);
  }
  return lines;
}

