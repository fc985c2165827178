/**
 * docs/dev/<tool>-errors.md are generated from each tool's one error table (scripts/gen-error-docs.mjs): a page that
 * differs from its table fails here, with the command that regenerates it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorDoc, type ErrorTable } from '../../../src/core/errors.js';
import { projectPath } from '../../../src/core/paths.js';
import { kimiaErrors } from '../../../src/kimia/errors.js';
import { runcvmErrors } from '../../../src/runcvm/errors.js';

const TOOLS: { tool: string; source: string; table: ErrorTable }[] = [
  { tool: 'kimia', source: 'src/kimia/errors.ts', table: kimiaErrors.table },
  { tool: 'runcvm', source: 'src/runcvm/errors.ts', table: runcvmErrors.table },
];

describe('generated error docs', () => {
  it.each(TOOLS)('docs/dev/$tool-errors.md is current with $source', ({ tool, source, table }) => {
    const page = readFileSync(projectPath('docs', 'dev', `${tool}-errors.md`), 'utf8');
    expect(page, 'regenerate with: npm run build && node scripts/gen-error-docs.mjs').toBe(errorDoc(tool, source, table));
  });
  it('codes are unique across both tools (a code names one failure)', () => {
    const codes = TOOLS.flatMap((t) => Object.keys(t.table));
    expect(codes.filter((c, i) => codes.indexOf(c) !== i)).toEqual([]);
  });
});
