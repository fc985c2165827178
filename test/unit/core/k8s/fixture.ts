import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../../../../src/core/paths.js';

export const FIXTURES = projectPath('test', 'fixtures', 'k8s');

export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

/** 1-based line of the n-th line containing `needle` (what a finding should point at). */
export function lineWith(text: string, needle: string, nth = 1): number {
  let seen = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.includes(needle) && ++seen === nth) return i + 1;
  }
  throw new Error(`no line ${nth} with ${needle}`);
}
