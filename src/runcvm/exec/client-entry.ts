/** Bundle entry (esbuild → /.runcvm/guest/lib/runcvm/exec-client.mjs): run the exec client, exit with its code. */
import { runClient } from './client.js';

runClient(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`runcvm: exec client error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(255);
  },
);
