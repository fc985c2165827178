/**
 * Volumes at `create`, the host side: what each bind source is (folder, file, missing), read before the pure plan
 * (volumes/plan.ts planContainerVolumes). The launcher does the rest (volumes/apply.ts).
 */
import { stat } from 'node:fs/promises';
import type { OciSpec } from '../launch/oci.js';
import { classifyMount, type SourceKind } from './plan.js';

async function sourceKind(path: string): Promise<SourceKind> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return 'missing';
  return st.isDirectory() ? 'dir' : 'file';
}

/** The kind of every volume's bind source, by source path. */
export async function readVolumeSources(spec: OciSpec, kubeletDir: string): Promise<Record<string, SourceKind>> {
  const sources: Record<string, SourceKind> = {};
  for (const m of spec.mounts ?? []) {
    const cls = classifyMount(m, kubeletDir);
    if ((cls === 'volume' || cls === 'pvc') && m.source) sources[m.source] = await sourceKind(m.source);
  }
  return sources;
}
