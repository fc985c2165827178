/**
 * Network: one virtio-net device per tap the launcher's network step created (tap-eth0 for the pod's eth0), each
 * carrying the pod's real MAC. The guest sees them as eth0, eth1, … in this order. Pure.
 */
import { assertValid } from './schema.js';
import type { DevicePlan, FirecrackerVmInput, NetworkInterfaceBody } from './types.js';

/** Firecracker ids are letters, digits and underscores. */
export function ifaceId(id: string): string {
  return id.replace(/[^A-Za-z0-9_]/g, '_') || 'net';
}

export function networkInterfaces(input: Pick<FirecrackerVmInput, 'nics'>): DevicePlan {
  const bodies: NetworkInterfaceBody[] = input.nics.map((n) => {
    const body: NetworkInterfaceBody = { iface_id: ifaceId(n.id), host_dev_name: n.tap, guest_mac: n.mac.toLowerCase() };
    if (n.mtu !== undefined) body.mtu = n.mtu;
    return body;
  });
  if (new Set(bodies.map((b) => b.iface_id)).size !== bodies.length) throw new Error(`firecracker: NIC ids collide: ${bodies.map((b) => b.iface_id).join(', ')}`);
  bodies.forEach((b, i) => assertValid('NetworkInterface', b, `network-interfaces[${i}]`));
  return {
    calls: bodies.map((body) => ({ method: 'PUT', path: `/network-interfaces/${body.iface_id}`, body })),
    config: { 'network-interfaces': bodies },
  };
}
