/**
 * Makes a service of the root network namespace (listening on 127.0.0.1) reachable from inside another network
 * namespace, at an address of that namespace, without creating any interface, route or rule anywhere.
 *
 *   const relay = await relayIntoNetns({ netns: net.peerNetns, host: net.gateway, targetPort: reg.port });
 *   // pods now reach the registry at `${net.gateway}:${reg.port}` (the pod network's gateway, like a node address)
 *   await relay.close();
 *
 * How: a child node process runs in the namespace (`ip netns exec`) and listens on HOST:PORT there; each connection
 * goes through a Unix socket (filesystem sockets are not network-namespaced) to this process, which connects to
 * 127.0.0.1:targetPort.
 */
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { CloserStack, tempDir } from '../../../src/core/fsx/index.js';
import { projectPath } from '../../../src/core/paths.js';
import { startProcess } from '../proc.js';
import { waitFor } from '../wait.js';

export interface NetnsRelay extends AsyncDisposable {
  /** HOST:PORT inside the namespace */
  address: string;
  close(): Promise<void>;
}

export async function relayIntoNetns(o: { netns: string; host: string; targetPort: number; listenPort?: number }): Promise<NetnsRelay> {
  const closers = new CloserStack();
  try {
    const dir = await tempDir('netns-relay', closers);
    const socketPath = join(dir, 'relay.sock');
    const server: Server = createServer((inbound) => {
      const outbound = createConnection(o.targetPort, '127.0.0.1');
      inbound.pipe(outbound).pipe(inbound);
      const close = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', close);
      outbound.on('error', close);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, resolve);
    });
    closers.push('close the relay socket', () => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = o.listenPort ?? o.targetPort;
    const logPath = join(dir, 'child.log');
    const child = await startProcess('netns relay', 'ip', ['netns', 'exec', o.netns, process.execPath,
      projectPath('test', 'harness', 'k8s', 'netns-relay-child.mjs'), o.host, String(port), socketPath], { logPath });
    closers.push('stop the relay child', () => child.stop(2000));
    await waitFor(`the relay in netns ${o.netns} to listen on ${o.host}:${port}`, async () => {
      child.assertAlive();
      return (await readFile(logPath, 'utf8').catch(() => '')).includes('listening');
    }, { timeoutMs: 10_000, intervalMs: 20 });
    const close = async () => {
      await closers.close();
    };
    return { address: `${o.host}:${port}`, close, [Symbol.asyncDispose]: close };
  } catch (err) {
    await closers.close();
    throw err;
  }
}
