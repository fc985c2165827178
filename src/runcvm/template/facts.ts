/**
 * What the template key needs from the node's files (template/key.ts TemplateAssets): the kernel and initramfs
 * hashes scripts/assets/10-kernel.sh records in kernel/manifest.json, and the guest package's id (the sha256 of its
 * manifest.json, which lists every binary it carries, QEMU's build among them). Cheap: two small reads, no hashing
 * of the kernel itself. The same files are read on the host (create, the builder) and in the launcher's container.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TemplateAssets } from './key.js';

const SHA256 = /^[0-9a-f]{64}$/;

export async function readTemplateAssets(kernelDir: string, guestDir: string): Promise<TemplateAssets | undefined> {
  const kernel = await readFile(join(kernelDir, 'manifest.json'), 'utf8').catch(() => undefined);
  const guest = await readFile(join(guestDir, 'manifest.json')).catch(() => undefined);
  if (!kernel || !guest) return undefined;
  let parsed: { vmlinuxSha256?: unknown; initramfsSha256?: unknown };
  try {
    parsed = JSON.parse(kernel) as typeof parsed;
  } catch {
    return undefined;
  }
  const { vmlinuxSha256, initramfsSha256 } = parsed;
  if (typeof vmlinuxSha256 !== 'string' || !SHA256.test(vmlinuxSha256) || typeof initramfsSha256 !== 'string' || !SHA256.test(initramfsSha256)) return undefined;
  return { vmlinuxSha256, initramfsSha256, guestPackageId: createHash('sha256').update(guest).digest('hex') };
}
