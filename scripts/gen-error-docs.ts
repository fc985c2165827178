/**
 * Renders each tool's one error table into docs/dev/<tool>-errors.md (`npm run gen:error-docs`).
 * test/unit/docs/error-docs.test.ts fails when a page differs from its table.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorDoc } from '../src/core/errors.js';
import { ERROR_TABLES } from './error-tables.js';

for (const t of ERROR_TABLES) {
  const out = join(process.cwd(), 'docs', 'dev', `${t.tool}-errors.md`);
  writeFileSync(out, errorDoc(t.tool, t.source, t.table));
  process.stdout.write(`wrote ${out}\n`);
}
