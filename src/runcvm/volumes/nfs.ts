/**
 * NFS volume transport in the launcher (container PID 1): the project's NFSv3 server (src/runcvm/nfs) runs in this
 * process, exports each `/.runcvm/vols/<id>` and listens on the identity IP 169.254.1.254:2049 (br-eth0, set up by
 * the network step first). The guest mounts `169.254.1.254:/.runcvm/vols/<id>` (src/runcvm/guest/vol.c). Only the VM's
 * own addresses may connect, from a reserved port (its root): not a sidecar sharing the pod's network namespace.
 */
import type { Logger } from '../../core/log/index.js';
import { runcvmErrors } from '../errors.js';
import { NfsServer } from '../nfs/server.js';
import { NFS_PORT, NFS_SERVER_IP, type SharedVolume } from './plan.js';

const { fail } = runcvmErrors;

/**
 * Start the server for the peers in `allow` (the VM's addresses: network/plan.ts guestAddresses); resolves with its
 * stop function (closes the socket and every open file).
 */
export async function startNfsExports(volumes: readonly SharedVolume[], log: Logger, allow: readonly string[], listen: { host: string; port: number } = { host: NFS_SERVER_IP, port: NFS_PORT }): Promise<() => Promise<void>> {
  const names = volumes.map((v) => v.destination).join(', ');
  let server: NfsServer;
  try {
    server = await NfsServer.create({ exports: [...new Set(volumes.map((v) => v.containerPath))], log: (line) => log.debug(`nfs: ${line}`) });
  } catch (err) {
    throw fail('VOLUME_NFS', { volumes: names, problem: (err as Error).message, cause: 'each volume must be a folder at /.runcvm/vols/<id> in the container (moved there at create).', fix: 'check that the volume sources exist on the host; rerun with RUNCVM_LOG_LEVEL=DEBUG and read {debugLog}.' }, err);
  }
  try {
    await server.listen(listen.host, listen.port, { allow, reservedPortsOnly: true });
  } catch (err) {
    await server.close().catch(() => undefined);
    const code = (err as { code?: string }).code;
    if (code === 'EADDRNOTAVAIL') {
      throw fail('VOLUME_NFS', {
        volumes: names,
        problem: `the identity IP ${listen.host} does not exist in the container (no network)`,
        cause: 'with the nfs volume transport (RUNCVM_VOLUME_TRANSPORT=nfs, or Firecracker) the VM mounts its volumes over NFS from the identity IP on br-eth0, which runcvm creates only when the container has a network interface (e.g. not with --network none).',
        fix: 'give the container a network (drop --network none), or use the virtiofs transport with QEMU (unset RUNCVM_VOLUME_TRANSPORT, RUNCVM_HYPERVISOR=qemu).',
      }, err);
    }
    throw fail('VOLUME_NFS', { volumes: names, problem: `cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`, cause: 'the NFS port must be free in the container network namespace.', fix: 'check `ss -ltnp` in the container for a process on that port.' }, err);
  }
  for (const v of volumes) log.info('volume shared', { transport: 'nfs', destination: v.destination, export: `${listen.host}:${v.containerPath}`, readOnly: v.flags.readOnly, source: v.hostSource });
  return () => server.close();
}
