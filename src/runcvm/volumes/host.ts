/**
 * Volumes at `create` (host side): stat each bind source, build the pure plan, log the PVC redirects, refuse
 * backends without virtiofs. The launcher does the rest (volumes/apply.ts).
 */
import { stat } from 'node:fs/promises';
import type { Logger } from '../../core/log/index.js';
import { runcvmErrors } from '../errors.js';
import type { OciSpec } from '../launch/oci.js';
import { classifyMount, DEFAULT_KUBELET_DIR, planVolumes, redirectLogLine, sharedVolumes, volumeTransport, withVolumeTransport, VolumeSettingError, type SourceKind, type VolumePlan } from './plan.js';

const { fail } = runcvmErrors;

export { VolumeSettingError };

async function sourceKind(path: string): Promise<SourceKind> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return 'missing';
  return st.isDirectory() ? 'dir' : 'file';
}

export async function planContainerVolumes(
  spec: OciSpec,
  input: { disks?: string | undefined; kubeletDir?: string | undefined; hypervisor: string; transport?: string | undefined; maxDiskBytes?: number },
  log: Logger,
): Promise<VolumePlan> {
  const kubeletDir = input.kubeletDir || DEFAULT_KUBELET_DIR;
  const sources: Record<string, SourceKind> = {};
  for (const m of spec.mounts ?? []) {
    const cls = classifyMount(m, kubeletDir);
    if ((cls === 'volume' || cls === 'pvc') && m.source) sources[m.source] = await sourceKind(m.source);
  }
  const transport = volumeTransport(input.hypervisor, input.transport);
  const plan = withVolumeTransport(planVolumes(spec, { sources, kubeletDir, ...(input.disks !== undefined ? { disks: input.disks } : {}), ...(input.maxDiskBytes !== undefined ? { maxDiskBytes: input.maxDiskBytes } : {}) }), transport);
  const shared = sharedVolumes(plan.volumes);
  if (shared.length > 0 && input.hypervisor !== 'qemu' && transport !== 'nfs') {
    throw fail('VOLUMES_UNSUPPORTED', { hypervisor: input.hypervisor, volumes: shared.map((v) => v.destination).join(', ') });
  }
  for (const r of plan.redirects) log.info(redirectLogLine(input.hypervisor, r));
  for (const v of plan.volumes) {
    if (v.kind === 'virtiofs') log.info('volume', { transport, destination: v.destination, source: v.hostSource, container: v.containerPath, readOnly: v.flags.readOnly, file: v.file ?? '' });
    else log.info('data disk', { source: v.source, container: v.containerPath, destination: v.destination, fs: v.fs, bytes: v.sizeBytes });
  }
  return plan;
}
