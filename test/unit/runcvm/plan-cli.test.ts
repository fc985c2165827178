import { describe, expect, it } from 'vitest';
import { maskEnv, shellQuote } from '../../../src/runcvm/plan/main.js';

describe('runcvm plan printing', () => {
  it('masks secret-looking env values, keeps the rest', () => {
    expect(maskEnv(['PATH=/bin', 'API_TOKEN=abc123', 'DB_PASSWORD=x=y', 'EMPTY'])).toEqual(['PATH=/bin', 'API_TOKEN=***', 'DB_PASSWORD=***', 'EMPTY']);
  });
  it('quotes argv for a shell only where needed', () => {
    expect(shellQuote(['-append', 'console=ttyS0 quiet', "it's", '-m', '512M'])).toBe(`-append 'console=ttyS0 quiet' 'it'\\''s' -m 512M`);
  });
});
