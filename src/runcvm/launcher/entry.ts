/**
 * Bundle entry (esbuild → /.runcvm/guest/lib/runcvm/launcher.mjs, and launcher.cjs from which 30-runtime.sh builds
 * the V8 start-up snapshot launcher.blob with the guest package's node): run the launcher, exit with its code.
 */
import { startupSnapshot } from 'node:v8';
import { launch } from './main.js';

function start(): void {
  launch().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`runcvm: error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(125);
    },
  );
}

if (startupSnapshot.isBuildingSnapshot()) startupSnapshot.setDeserializeMainFunction(start);
else start();
