/**
 * The LaunchSpec's `volumes` section (zod) and the types made from it: a shared folder (virtiofs, or NFS from the
 * launcher) or a RUNCVM_DISKS data disk. Planned by src/runcvm/volumes (planVolumes), read by the launcher and
 * rendered for the guest init (guest-config.ts volumeConfigLines).
 */
import { z } from 'zod';

const flags = z.object({ readOnly: z.boolean(), nosuid: z.boolean(), nodev: z.boolean(), noexec: z.boolean() });

export const sharedVolumeSchema = z.object({
  kind: z.literal('virtiofs'),
  id: z.string(),
  tag: z.string().max(36),
  destination: z.string(),
  containerPath: z.string(),
  file: z.string().optional(),
  flags,
  hostSource: z.string(),
  pvc: z.object({ plugin: z.string(), name: z.string() }).optional(),
  transport: z.literal('nfs').optional(),
});

export const dataDiskSchema = z.object({
  kind: z.literal('disk'),
  id: z.string(),
  source: z.string(),
  containerPath: z.string(),
  destination: z.string(),
  fs: z.enum(['ext4', 'ext3', 'ext2']),
  sizeBytes: z.number().int().positive(),
});

export const volumeSchema = z.discriminatedUnion('kind', [sharedVolumeSchema, dataDiskSchema]);

export type VolumeFlags = z.infer<typeof flags>;
/** One shared folder, as the LaunchSpec carries it. */
export type SharedVolume = z.infer<typeof sharedVolumeSchema>;
/** One RUNCVM_DISKS image. */
export type DataDisk = z.infer<typeof dataDiskSchema>;
export type Volume = SharedVolume | DataDisk;
export type DiskFs = DataDisk['fs'];
