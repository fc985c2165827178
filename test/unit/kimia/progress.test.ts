import { describe, expect, it } from 'vitest';
import { CacheCounter, backoffMs, classifyFailure, parseLine, quoteChildError } from '../../../src/kimia/buildah/progress.js';

describe('buildah output', () => {
  it('counts hits and misses over cacheable steps, multi-stage prefixes included', () => {
    const out = [
      '[1/2] STEP 1/2: FROM busybox AS b',
      '[1/2] STEP 2/2: RUN x',
      '--> Using cache 0123456789abcdef0123456789abcdef',
      '[2/2] STEP 1/3: FROM busybox',
      '[2/2] STEP 2/3: COPY a b',
      '--> 0123456789a',
      '[2/2] STEP 3/3: USER app',
      '--> Using cache fedcba9876543210fedcba98',
    ];
    const c = new CacheCounter();
    for (const l of out) c.feed(parseLine(l));
    c.close();
    expect([c.hits, c.misses]).toEqual([2, 1]);
    expect(parseLine('[2/2] STEP 3/3: USER app')).toEqual({ kind: 'step', index: 3, total: 3, instruction: 'USER app' });
  });

  it('recognises pushed blobs and the OCI HEALTHCHECK warning', () => {
    expect(parseLine('Copying blob sha256:' + 'a'.repeat(64))).toMatchObject({ kind: 'blob', what: 'blob' });
    expect(parseLine('time="x" level=warning msg="HEALTHCHECK is not supported for OCI image format and will be ignored. Must use `docker` format"').kind).toBe('dropped-warning');
  });

  it('classifies failures: 401 is auth (never retried), 5xx and dropped connections are retryable', () => {
    expect(classifyFailure('Error: pushing: unauthorized: authentication required')).toBe('auth');
    expect(classifyFailure('received unexpected HTTP status: 503 Service Unavailable')).toBe('retryable');
    expect(classifyFailure('writing blob: Patch "http://x/v2/": EOF')).toBe('retryable');
    expect(classifyFailure('read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer')).toBe('retryable');
    expect(classifyFailure('manifest unknown')).toBe('fatal');
    expect(classifyFailure('write /x: no space left on device')).toBe('no-space');
  });

  it('quotes the child error message', () => {
    expect(quoteChildError('STEP 1\ntime="t" level=error msg="pulling \\"x\\": not found"\n')).toBe('pulling "x": not found');
    expect(quoteChildError('something\nError: building at STEP "RUN false": exit status 1\n')).toBe('Error: building at STEP "RUN false": exit status 1');
  });

  it('backs off exponentially, capped', () => {
    expect([0, 1, 2, 10].map((a) => backoffMs(a, 1000))).toEqual([1000, 2000, 4000, 30000]);
  });
});
