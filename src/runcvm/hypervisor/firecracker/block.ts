/** Block devices: the shared root disk (read-only base image) and the per-container writable layer. Pure. */
import { assertValid } from './schema.js';
import type { DevicePlan, DriveBody, FirecrackerVmInput } from './types.js';

/** Firecracker ids are letters, digits and underscores. */
export function driveId(id: string): string {
  const clean = id.replace(/[^A-Za-z0-9_]/g, '_');
  return clean || 'drive';
}

export function drives(input: Pick<FirecrackerVmInput, 'disks'>): DevicePlan {
  const roots = input.disks.filter((d) => d.root);
  if (roots.length !== 1) throw new Error(`firecracker: exactly one root disk is needed, got ${roots.length}`);
  if (!input.disks[0]?.root) throw new Error('firecracker: the root disk must come first (Firecracker always makes it /dev/vda)');
  const bodies: DriveBody[] = input.disks.map((d) => ({
    drive_id: driveId(d.id),
    path_on_host: d.path,
    is_root_device: d.root,
    is_read_only: d.readOnly,
    // same trade-off as the QEMU path's cache=unsafe: the disks are per-container scratch or a read-only base
    cache_type: 'Unsafe',
    io_engine: 'Sync',
  }));
  const ids = new Set(bodies.map((b) => b.drive_id));
  if (ids.size !== bodies.length) throw new Error(`firecracker: drive ids collide after sanitizing: ${bodies.map((b) => b.drive_id).join(', ')}`);
  bodies.forEach((b, i) => assertValid('Drive', b, `drives[${i}]`));
  return {
    calls: bodies.map((body) => ({ method: 'PUT', path: `/drives/${body.drive_id}`, body })),
    config: { drives: bodies },
  };
}
