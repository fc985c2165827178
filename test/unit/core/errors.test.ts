import { describe, expect, it } from 'vitest';
import { defineErrors, renderErrorTable } from '../../../src/core/errors.js';

const { fail, table } = defineErrors({
  AUTH: { exit: 5, message: 'unauthorized at {registry}', cause: 'bad credentials for {registry}', fix: 'kubectl create secret ...' },
});

describe('errors', () => {
  it('carries code, exit status, cause and fix with details filled in', () => {
    const err = fail('AUTH', { registry: 'r.io' }, new Error('401'));
    expect(err.code).toBe('AUTH');
    expect(err.exitCode).toBe(5);
    expect(err.message).toBe('unauthorized at r.io');
    expect(err.causeText).toBe('bad credentials for r.io');
    expect(err.render()).toBe('error: unauthorized at r.io\ncause: bad credentials for r.io\nfix: kubectl create secret ...\ndetail: 401');
  });
  it('renders a docs table', () => {
    expect(renderErrorTable('kimia', table)).toContain('| `AUTH` | 5 | unauthorized at {registry} |');
  });
});
