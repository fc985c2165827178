/**
 * Node entry of bin/runcvm-runtime for the verbs that need Node (create, run). Bundled twice by
 * scripts/assets/30-runtime.sh: runtime.mjs (run as a module) and runtime.cjs, from which a V8 start-up snapshot
 * (runtime.blob) is built: modules already loaded and evaluated, so `create` skips ~50-100 ms of compiling and
 * evaluating the bundle. The dispatcher uses the snapshot only when it was built by the very node it runs.
 */
import { startupSnapshot } from 'node:v8';
import { main } from './main.js';

function start(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`runcvm-runtime: error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(125);
    },
  );
}

// `node --snapshot-blob runtime.blob -- --root … create …` has no script argument: runc's argv starts at argv[1]
if (startupSnapshot.isBuildingSnapshot()) startupSnapshot.setDeserializeMainFunction(() => start(process.argv.slice(1)));
else start(process.argv.slice(2));
