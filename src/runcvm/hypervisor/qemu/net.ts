/**
 * QEMU network devices: one virtio-net NIC per tap the launcher created (network/plan.ts NicPlan), carrying the pod's
 * real MAC. `script=no,downscript=no`: the tap already exists and is bridged; QEMU only opens it. No vhost (hosts and
 * containers often have no /dev/vhost-net). Pure.
 */
export interface QemuNic {
  /** netdev id, e.g. net0 */
  id: string;
  /** the existing tap, e.g. tap-eth0 */
  tap: string;
  /** the guest MAC (the pod's real one) */
  mac: string;
}

export function netArgs(nics: readonly QemuNic[]): string[] {
  return nics.flatMap((n) => [
    '-netdev', `tap,id=${n.id},ifname=${n.tap},script=no,downscript=no`,
    '-device', `virtio-net-device,netdev=${n.id},mac=${n.mac}`,
  ]);
}
