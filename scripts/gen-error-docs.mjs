#!/usr/bin/env node
// Renders each tool's one error table into docs/dev/<tool>-errors.md, from the build in dist/ (run `npm run build`
// or `bash scripts/setup.sh` first; `npm run docs:errors` does both). test/unit/docs/error-docs.test.ts fails when a page differs from its table.
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
if (!existsSync(join(root, 'dist', 'core', 'errors.js'))) {
  console.error('gen-error-docs: dist/ is not built; run `npm run build` first');
  process.exit(1);
}
const { errorDoc } = await import(dist('core/errors.js'));
const TOOLS = [
  { tool: 'kimia', source: 'src/kimia/errors.ts', module: 'kimia/errors.js', table: 'kimiaErrors' },
  { tool: 'runcvm', source: 'src/runcvm/errors.ts', module: 'runcvm/errors.js', table: 'runcvmErrors' },
];
for (const t of TOOLS) {
  const mod = await import(dist(t.module));
  const out = join(root, 'docs', 'dev', `${t.tool}-errors.md`);
  writeFileSync(out, errorDoc(t.tool, t.source, mod[t.table].table));
  console.log(`gen-error-docs: ${out}`);
}
