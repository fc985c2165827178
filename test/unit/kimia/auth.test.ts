import { describe, expect, it } from 'vitest';
import { mergeAuth, normalizeRegistry, parseDockerConfig } from '../../../src/kimia/auth/merge.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('auth merge', () => {
  it('reads auth and username/password entries from config.json', () => {
    const cfg = JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('u:p:with:colons') }, 'reg:5000': { username: 'a', password: 'b' } } });
    expect(parseDockerConfig(cfg)).toEqual([
      { registry: 'docker.io', username: 'u', password: 'p:with:colons' },
      { registry: 'reg:5000', username: 'a', password: 'b' },
    ]);
  });

  it('config.json wins over the environment fallback', () => {
    const m = mergeAuth({ configJson: JSON.stringify({ auths: { r: { auth: b64('x:y1') } } }), env: { DOCKER_USERNAME: 'e', DOCKER_PASSWORD: 'f' }, destinations: [] });
    expect(m.source).toBe('config.json');
    expect(m.authJson).toEqual({ auths: { r: { auth: b64('x:y1') } } });
    expect(m.secrets).toEqual(['y1', b64('x:y1')]);
  });

  it('falls back to DOCKER_USERNAME/PASSWORD/REGISTRY, registry defaulting to the destination host', () => {
    const m = mergeAuth({ env: { DOCKER_USERNAME: 'e', DOCKER_PASSWORD: 'pw1' }, destinations: ['reg.io:5000/a/b:1'] });
    expect(m.source).toBe('environment');
    expect(Object.keys(m.authJson.auths)).toEqual(['reg.io:5000']);
    const n = mergeAuth({ env: { DOCKER_USERNAME: 'e', DOCKER_PASSWORD: 'pw1', DOCKER_REGISTRY: 'https://other.io/v2/' }, destinations: [] });
    expect(Object.keys(n.authJson.auths)).toEqual(['other.io']);
  });

  it('no credentials at all', () => {
    expect(mergeAuth({ env: {}, destinations: [] }).source).toBe('none');
  });

  it('normalizes registry keys and rejects a bad auth field', () => {
    expect(normalizeRegistry('https://r.example:5000/v2/')).toBe('r.example:5000');
    expect(() => parseDockerConfig(JSON.stringify({ auths: { r: { auth: b64('nocolon') } } }))).toThrow(/not base64 of user:password/);
  });
});
