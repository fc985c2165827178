/**
 * The build key's registry client against a server speaking the distribution spec's token flow (docker-registry,
 * which the e2e tests use, does only basic auth here: no token service can run without its JWT signer): 401 with
 * `WWW-Authenticate: Bearer realm,service,scope` → GET realm with basic credentials → token → HEAD again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { manifestDigest } from '../../../src/kimia/buildkey/registry.js';

const MANIFEST = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {}, layers: [] });
const DIGEST = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`;
let server: Server;
let host: string;
const seen: { method: string; url: string; auth?: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/token') {
      const basic = `Basic ${Buffer.from('ci:pw').toString('base64')}`;
      if (url.searchParams.get('scope') !== 'repository:team/app:pull' || url.searchParams.get('service') !== 'reg.test') return void res.writeHead(400).end();
      if (req.headers.authorization !== basic) return void res.writeHead(401).end();
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: 'tok123' }));
    }
    if (req.headers.authorization !== 'Bearer tok123') {
      return void res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${host}/token",service="reg.test",scope="repository:team/app:pull"` }).end();
    }
    if (url.pathname === '/v2/team/app/manifests/1') return void res.writeHead(200, { 'Docker-Content-Digest': DIGEST }).end(req.method === 'GET' ? MANIFEST : undefined);
    if (url.pathname === '/v2/team/app/manifests/nohdr') return void res.writeHead(200).end(req.method === 'GET' ? MANIFEST : undefined);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

const access = (credentials?: { username: string; password: string }) => ({ insecure: true, timeoutMs: 5000, ...(credentials ? { credentials } : {}) });

describe('manifestDigest', () => {
  it('follows the token flow with the registry credentials, and sends them only to the token service', async () => {
    seen.length = 0;
    expect(await manifestDigest(`${host}/team/app:1`, access({ username: 'ci', password: 'pw' }))).toEqual({ kind: 'digest', digest: DIGEST });
    expect(seen.map((s) => [s.method, s.url.split('?')[0], s.auth?.split(' ')[0]])).toEqual([
      ['HEAD', '/v2/team/app/manifests/1', undefined], ['GET', '/token', 'Basic'], ['HEAD', '/v2/team/app/manifests/1', 'Bearer'],
    ]);
  });
  it('hashes the manifest itself when HEAD has no Docker-Content-Digest; 404 is missing; a refused token is an error', async () => {
    expect(await manifestDigest(`${host}/team/app:nohdr`, access({ username: 'ci', password: 'pw' }))).toEqual({ kind: 'digest', digest: DIGEST });
    expect(await manifestDigest(`${host}/team/app:2`, access({ username: 'ci', password: 'pw' }))).toEqual({ kind: 'missing' });
    expect((await manifestDigest(`${host}/team/app:1`, access({ username: 'ci', password: 'wrong' }))).kind).toBe('error');
  });
  it('a digest reference answers itself, with no request', async () => {
    seen.length = 0;
    expect(await manifestDigest(`${host}/team/app@${DIGEST}`, access())).toEqual({ kind: 'digest', digest: DIGEST });
    expect(seen).toEqual([]);
  });
  it('a registry that is not insecure is only asked over HTTPS (a plain-HTTP one is then an error, never a downgrade)', async () => {
    seen.length = 0;
    expect((await manifestDigest(`${host}/team/app:1`, { insecure: false, timeoutMs: 5000 })).kind).toBe('error');
    expect(seen).toEqual([]);
  });
});
