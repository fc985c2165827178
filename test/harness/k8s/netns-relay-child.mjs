// Runs inside a network namespace (started by `ip netns exec`): listens on HOST:PORT there and hands every
// connection to a Unix socket on the filesystem, which the parent (in the root namespace) serves. Path-based Unix
// sockets are not network-namespaced, so this joins the two namespaces without any interface or route.
import { createConnection, createServer } from 'node:net';

const [host, port, socketPath] = process.argv.slice(2);
const server = createServer((inbound) => {
  const outbound = createConnection(socketPath);
  inbound.pipe(outbound).pipe(inbound);
  const close = () => { inbound.destroy(); outbound.destroy(); };
  inbound.on('error', close);
  outbound.on('error', close);
});
server.listen(Number(port), host, () => process.stdout.write(`listening ${host}:${port}\n`));
server.on('error', (err) => { process.stderr.write(`relay: ${err.message}\n`); process.exit(1); });
process.on('SIGTERM', () => process.exit(0));
