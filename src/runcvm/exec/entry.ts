/** Node entry of bin/runcvm-runtime for `exec` on a runcvm container (bundled to dist/runcvm/runtime/exec.mjs). */
import { execMain } from './main.js';

execMain(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`runcvm-runtime: exec error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(125);
  },
);
