/**
 * Writes src/runcvm/guest/contract.h from src/runcvm/guest/contract.ts, or with --check only compares them (exit 1
 * with the fix when the header is stale). `npm run gen:guest-contract`; scripts/assets/30-runtime.sh runs --check
 * (bundled by esbuild) before it compiles the guest binaries.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderContractHeader } from '../src/runcvm/guest/contract.js';

const header = join(process.cwd(), 'src/runcvm/guest/contract.h');
const want = renderContractHeader();
if (process.argv.includes('--check')) {
  let have = '';
  try {
    have = readFileSync(header, 'utf8');
  } catch {
    /* missing: stale */
  }
  if (have !== want) {
    process.stderr.write(`error: ${header} does not match src/runcvm/guest/contract.ts\nfix: npm run gen:guest-contract (then commit the header)\n`);
    process.exit(1);
  }
} else {
  writeFileSync(header, want);
  process.stdout.write(`wrote ${header}\n`);
}
