/** LaunchSpec `volumes` section (zod), matching the Volume types of volumes/plan.ts. */
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
