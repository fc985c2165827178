/** vsock: the host↔guest agent channel (Firecracker has no virtio-serial). Pure. */
import { assertValid } from './schema.js';
import type { DevicePlan, FirecrackerVmInput, VsockBody } from './types.js';

/** The first CID a guest may use (0-2 are reserved: hypervisor, local, host). */
export const GUEST_CID = 3;
/** The guest agent connects to the host (CID 2) on this port; Firecracker forwards it to `${uds_path}_1024`. */
export const AGENT_VSOCK_PORT = 1024;
/** The exec agent (guest/agent.c) connects to the host on this port; the launcher's exec mux listens on `${uds_path}_1025`. */
export const EXEC_VSOCK_PORT = 1025;

export function agentListenPath(udsPath: string, port = AGENT_VSOCK_PORT): string {
  return `${udsPath}_${port}`;
}

export function vsock(input: Pick<FirecrackerVmInput, 'vsock'>): DevicePlan {
  const body: VsockBody = { guest_cid: input.vsock.cid, uds_path: input.vsock.udsPath };
  assertValid('Vsock', body, 'vsock');
  return { calls: [{ method: 'PUT', path: '/vsock', body }], config: { vsock: body } };
}
