import { describe, expect, it } from 'vitest';
import { Logger, parseLevel } from '../../../src/core/log/index.js';
import { Redactor } from '../../../src/core/redact.js';

describe('Logger', () => {
  it('filters by level and writes text lines with namespace', () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'info', sinks: [(l) => lines.push(l)], namespace: 'kimia' });
    log.debug('hidden');
    log.info('step 1/3', { cached: true });
    expect(lines).toEqual(['INFO  [kimia] step 1/3 cached=true']);
  });
  it('writes one JSON object per line and redacts secrets', () => {
    const lines: string[] = [];
    const log = new Logger({ format: 'json', sinks: [(l) => lines.push(l)], redactor: new Redactor(['hunter22']) });
    log.warn('password is hunter22', { user: 'a' });
    expect(JSON.parse(lines[0]!)).toEqual({ level: 'warn', msg: 'password is ***', user: 'a' });
  });
  it('parses RUNCVM and Kaniko level names', () => {
    expect(parseLevel('DEBUG')).toBe('debug');
    expect(parseLevel('OFF')).toBe('off');
    expect(parseLevel('warning')).toBe('warn');
    expect(() => parseLevel('loud')).toThrow(/unknown log level/);
  });
});
