/** Bundle entry (esbuild → /.runcvm/guest/lib/runcvm/launcher.mjs): run the launcher, exit with its code. */
import { launch } from './main.js';

launch().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`runcvm: error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(125);
  },
);
