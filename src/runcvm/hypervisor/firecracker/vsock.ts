/** vsock: the host↔guest agent channel (Firecracker has no virtio-serial). Pure. */
import { assertValid } from './schema.js';
import type { DevicePlan, FirecrackerVmInput, VsockBody } from './types.js';

/** The first CID a guest may use (0-2 are reserved: hypervisor, local, host). */
export const GUEST_CID = 3;
/** The guest init's channel (AGENT_VSOCK_PORT, 1024) and the exec agent's (EXEC_VSOCK_PORT, 1025) on the host (CID 2);
 * Firecracker forwards them to `${uds_path}_<port>`. Defined by the guest contract (guest/contract.ts). */
export { IO_VSOCK_PORT as AGENT_VSOCK_PORT, EXEC_VSOCK_PORT } from '../../guest/contract.js';
import { IO_VSOCK_PORT } from '../../guest/contract.js';

export function agentListenPath(udsPath: string, port: number = IO_VSOCK_PORT): string {
  return `${udsPath}_${port}`;
}

export function vsock(input: Pick<FirecrackerVmInput, 'vsock'>): DevicePlan {
  const body: VsockBody = { guest_cid: input.vsock.cid, uds_path: input.vsock.udsPath };
  assertValid('Vsock', body, 'vsock');
  return { calls: [{ method: 'PUT', path: '/vsock', body }], config: { vsock: body } };
}
