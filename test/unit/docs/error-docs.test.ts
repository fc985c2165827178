/**
 * docs/dev/<tool>-errors.md are generated from each tool's one error table (scripts/gen-error-docs.ts): a page that
 * differs from its table fails here, with the command that regenerates it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorDoc } from '../../../src/core/errors.js';
import { projectPath } from '../../../src/core/paths.js';
import { ERROR_TABLES as TOOLS } from '../../../scripts/error-tables.js';

describe('generated error docs', () => {
  it.each(TOOLS)('docs/dev/$tool-errors.md is current with $source', ({ tool, source, table }) => {
    const page = readFileSync(projectPath('docs', 'dev', `${tool}-errors.md`), 'utf8');
    expect(page, 'regenerate with: npm run gen:error-docs').toBe(errorDoc(tool, source, table));
  });
  it('codes are unique across both tools (a code names one failure)', () => {
    const codes = TOOLS.flatMap((t) => Object.keys(t.table));
    expect(codes.filter((c, i) => codes.indexOf(c) !== i)).toEqual([]);
  });
});
