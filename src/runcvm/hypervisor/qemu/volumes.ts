/**
 * QEMU argv for shared folders (virtiofs over vhost-user, src/runcvm/volumes). Pure.
 * vhost-user needs the guest RAM in shared memory (a memfd backend that becomes the machine's RAM) and modern
 * virtio-mmio (microvm defaults to legacy, which vhost-user-fs does not support). Both are added only when the VM
 * has at least one share, so VMs without volumes keep the core's exact argv.
 */
export interface Share {
  tag: string;
  /** virtiofsd's vhost-user socket (QEMU is the client) */
  socket: string;
}

export const SHARED_MEMORY_ID = 'runcvm-mem';

export function sharedMemoryArgs(memoryMiB: number): string[] {
  return [
    '-object', `memory-backend-memfd,id=${SHARED_MEMORY_ID},size=${memoryMiB}M,share=on`,
    '-machine', `memory-backend=${SHARED_MEMORY_ID}`,
    '-global', 'virtio-mmio.force-legacy=false',
  ];
}

export function virtiofsDeviceArgs(shares: readonly Share[]): string[] {
  return shares.flatMap((s, i) => [
    '-chardev', `socket,id=fs${i},path=${s.socket}`,
    '-device', `vhost-user-fs-device,chardev=fs${i},tag=${s.tag}`,
  ]);
}

export function volumeArgs(shares: readonly Share[] | undefined, memoryMiB: number): string[] {
  if (!shares || shares.length === 0) return [];
  return [...sharedMemoryArgs(memoryMiB), ...virtiofsDeviceArgs(shares)];
}
