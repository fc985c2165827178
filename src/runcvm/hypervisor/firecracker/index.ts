/** The Firecracker backend: per-device builders, schema, API client, process driver and hypervisor selection. */
export { bootArgs, bootSource, FIRECRACKER_BOOT_ARGS } from './boot.js';
export { drives, driveId } from './block.js';
export { networkInterfaces, ifaceId } from './net.js';
export { machineConfig, FIRECRACKER_MAX_VCPUS } from './machine.js';
export { vsock, agentListenPath, AGENT_VSOCK_PORT, EXEC_VSOCK_PORT, GUEST_CID } from './vsock.js';
export { stopGracefully, type StopOutcome, type StopTarget } from './stop.js';
export * from './plan.js';
export * from './schema.js';
export * from './errors.js';
export * from './select.js';
export type * from './types.js';
export * from './invocation.js';
export * from './host.js';
