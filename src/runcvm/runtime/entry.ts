/** Node entry of bin/runcvm-runtime for the verbs that need Node (create, run). */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`runcvm-runtime: error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(125);
  },
);
