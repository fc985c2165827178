/** The one error table of each tool, rendered into docs/dev/<tool>-errors.md (gen-error-docs.ts) and checked by a test. */
import type { ErrorTable } from '../src/core/errors.js';
import { kimiaErrors } from '../src/kimia/errors.js';
import { runcvmErrors } from '../src/runcvm/errors.js';

export const ERROR_TABLES: readonly { tool: string; source: string; table: ErrorTable }[] = [
  { tool: 'kimia', source: 'src/kimia/errors.ts', table: kimiaErrors.table },
  { tool: 'runcvm', source: 'src/runcvm/errors.ts', table: runcvmErrors.table },
];
