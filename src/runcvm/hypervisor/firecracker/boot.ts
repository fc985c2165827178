/** Boot source: the uncompressed kernel, the initramfs and the kernel command line. Pure. */
import { assertValid } from './schema.js';
import type { BootSourceBody, DevicePlan, FirecrackerVmInput } from './types.js';

/**
 * Firecracker-only additions to the shared command line. `reboot=k`: a guest reboot goes through the i8042 reset
 * line, on which Firecracker exits (the QEMU path uses reboot=t). `pci=off`: Firecracker's devices are virtio-mmio,
 * so PCI probing is wasted time. The i8042 options skip the keyboard controller's slow probing while keeping the
 * device that SendCtrlAltDel uses.
 */
export const FIRECRACKER_BOOT_ARGS = ['reboot=k', 'pci=off', 'i8042.noaux', 'i8042.nomux', 'i8042.nopnp', 'i8042.dumbkbd'] as const;

export function bootArgs(cmdline: string): string {
  const words = cmdline.split(/\s+/).filter((w) => w && !/^reboot=/.test(w));
  for (const extra of FIRECRACKER_BOOT_ARGS) {
    const key = extra.split('=')[0];
    if (!words.some((w) => w === extra || w.split('=')[0] === key)) words.push(extra);
  }
  return words.join(' ');
}

export function bootSource(input: Pick<FirecrackerVmInput, 'kernel' | 'initrd' | 'cmdline'>): DevicePlan {
  const body: BootSourceBody = { kernel_image_path: input.kernel, boot_args: bootArgs(input.cmdline) };
  if (input.initrd) body.initrd_path = input.initrd;
  assertValid('BootSource', body, 'boot-source');
  return { calls: [{ method: 'PUT', path: '/boot-source', body }], config: { 'boot-source': body } };
}
