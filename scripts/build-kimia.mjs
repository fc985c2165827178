// Fast build of src/core + src/kimia into dist/ (same layout as `tsc -p tsconfig.build.json`), used by kimia's
// e2e tests and bench so that they do not depend on the rest of the project compiling.
import { build } from 'esbuild';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}
const root = new URL('..', import.meta.url).pathname;
await build({
  entryPoints: [...walk(join(root, 'src/core')), ...walk(join(root, 'src/kimia'))],
  outdir: join(root, 'dist'),
  outbase: join(root, 'src'),
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});
