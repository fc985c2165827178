/** kimia's log: clean text for people, structured JSON for machines, secrets masked in both. */
import { describe, expect, it } from 'vitest';
import { createLog, textLine } from '../../../src/kimia/log.js';
import { Redactor } from '../../../src/core/redact.js';

function capture(format: 'text' | 'json', extra: { level?: 'debug' | 'info'; timestamps?: boolean } = {}) {
  const lines: string[] = [];
  const log = createLog({
    level: extra.level ?? 'info', format, timestamps: extra.timestamps ?? false, sink: (l) => lines.push(l),
    redactor: new Redactor(['s3cr3t-value']), now: () => new Date('2026-01-02T03:04:05.678Z'),
  });
  return { log, lines };
}

describe('text format', () => {
  it('prints the message alone: no event=/step= suffix, no level word or namespace on info lines', () => {
    const { log, lines } = capture('text');
    log.info('step 2/4: COPY a.txt /a', { event: 'step', step: 2, total: 4 });
    log.detail('using cache b5543991288d', { event: 'cache', cache: 'hit' });
    log.warn('preflight: free space: 1.2 GiB free', { event: 'preflight-warning' });
    log.warn('Warning: HEALTHCHECK instruction ignored', { event: 'warning' });
    log.error('push failed');
    log.debug('not shown at info level');
    expect(lines).toEqual([
      'step 2/4: COPY a.txt /a',
      '  using cache b5543991288d',
      'warning: preflight: free space: 1.2 GiB free',
      'Warning: HEALTHCHECK instruction ignored',
      'error: push failed',
    ]);
    expect(lines.join('\n')).not.toMatch(/event=|step=|\[kimia\]/);
  });

  it('--log-timestamp puts an ISO time first; debug lines say so; secrets are masked', () => {
    const { log, lines } = capture('text', { level: 'debug', timestamps: true });
    log.debug('running buildah --build-arg TOKEN=s3cr3t-value');
    expect(lines).toEqual(['2026-01-02T03:04:05.678Z debug: running buildah --build-arg TOKEN=***']);
    expect(textLine('info', 'done')).toBe('done');
  });
});

describe('JSON format', () => {
  it('keeps every structured field, one object per line, secrets masked', () => {
    const { log, lines } = capture('json');
    log.info('step 2/4: COPY a.txt /a', { event: 'step', step: 2, total: 4 });
    log.detail('using cache b5543991288d', { event: 'cache', cache: 'hit' });
    log.warn('token s3cr3t-value rejected', { event: 'push-retry', attempt: 1 });
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { level: 'info', ns: 'kimia', msg: 'step 2/4: COPY a.txt /a', event: 'step', step: 2, total: 4 },
      { level: 'info', ns: 'kimia', msg: 'using cache b5543991288d', event: 'cache', cache: 'hit' },
      { level: 'warn', ns: 'kimia', msg: 'token *** rejected', event: 'push-retry', attempt: 1 },
    ]);
  });
});
