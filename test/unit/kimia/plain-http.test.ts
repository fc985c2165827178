import { describe, expect, it } from 'vitest';
import { plainHttpFailure } from '../../../src/kimia/buildah/plain-http.js';

describe('plainHttpFailure', () => {
  it('finds the host in buildah 1.28 pull and push errors', () => {
    const pull = 'Error: creating build container: initializing source docker://10.0.0.5:5000/base:1: pinging container registry 10.0.0.5:5000: Get "https://10.0.0.5:5000/v2/": http: server gave HTTP response to HTTPS client';
    expect(plainHttpFailure(pull)).toEqual({ host: '10.0.0.5:5000', text: 'http: server gave HTTP response to HTTPS client' });
    const push = 'time="2026-12-03T10:00:00Z" level=error msg="pinging container registry registry.ci.svc:5000: Get \\"https://registry.ci.svc:5000/v2/\\": http: server gave HTTP response to HTTPS client"';
    expect(plainHttpFailure(push)?.host).toBe('registry.ci.svc:5000');
  });
  it('other errors are not it', () => {
    expect(plainHttpFailure('x509: certificate signed by unknown authority')).toBeUndefined();
    // a Go program in a RUN step talking to some plain-HTTP service: no registry endpoint on its line
    expect(plainHttpFailure('Get "https://api.internal:8080/status": http: server gave HTTP response to HTTPS client\nsubprocess exited with status 1')).toBeUndefined();
  });
});
