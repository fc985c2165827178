/**
 * The one question the build key asks a registry: which manifest digest does REF name now? A HEAD of
 * /v2/<repository>/manifests/<tag> (GET when a registry leaves out Docker-Content-Digest), with the distribution
 * spec's token flow (401 + WWW-Authenticate Bearer → token → retry) or basic auth, the TLS settings Buildah would
 * use (extra CA certificates, a client certificate; for insecure registries no verification and plain HTTP as
 * well, as containers/image allows). node:http(s) only: this runs before Buildah would have started, where a
 * library import is start-up time.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export interface ImageRef {
  /** host[:port] as the user wrote it (docker.io for Docker Hub) */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** `busybox`, `reg:5000/a/b:1`, `a/b@sha256:…` → parts (Docker Hub's short names get library/). */
export function parseImageRef(ref: string): ImageRef {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  const hasHost = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = hasHost ? first : 'docker.io';
  let path = hasHost ? rest.slice(slash + 1) : rest;
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  if (registry === 'index.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  return { registry, repository: path, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : !tag ? { tag: 'latest' } : {}) };
}

export interface RegistryAccess {
  /** skip certificate verification, and fall back to plain HTTP when TLS fails (Buildah's --tls-verify=false) */
  insecure: boolean;
  /** extra trusted CA certificates (PEM) */
  ca?: string[];
  /** client certificate and key (PEM) */
  clientCert?: { cert: string; key: string };
  credentials?: { username: string; password: string };
  timeoutMs: number;
}

export type DigestAnswer =
  | { kind: 'digest'; digest: string }
  | { kind: 'missing' }
  | { kind: 'error'; detail: string };

interface Response {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

async function request(url: string, opts: { method: string; headers: Record<string, string>; access: RegistryAccess; body?: boolean }): Promise<Response> {
  const u = new URL(url);
  const https = u.protocol === 'https:';
  const mod = https ? await import('node:https') : await import('node:http');
  const tls = https ? await import('node:tls') : undefined;
  return new Promise<Response>((resolve, reject) => {
    const req = mod.request(u, {
      method: opts.method,
      headers: opts.headers,
      timeout: opts.access.timeoutMs,
      ...(https ? {
        rejectUnauthorized: !opts.access.insecure,
        ...(opts.access.ca?.length ? { ca: [...tls!.rootCertificates, ...opts.access.ca] } : {}),
        ...(opts.access.clientCert ? { cert: opts.access.clientCert.cert, key: opts.access.clientCert.key } : {}),
      } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (opts.body) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${u.host} within ${opts.access.timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"` → its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^(\w+)\s*(.*)$/.exec(header.trim());
  const params: Record<string, string> = {};
  for (const p of (m?.[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) params[p[1]!.toLowerCase()] = p[2]!;
  return { scheme: (m?.[1] ?? '').toLowerCase(), params };
}

function basic(c: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

async function bearerToken(challenge: Record<string, string>, repository: string, access: RegistryAccess): Promise<string | undefined> {
  if (!challenge.realm) return undefined;
  const url = new URL(challenge.realm);
  if (challenge.service) url.searchParams.set('service', challenge.service);
  url.searchParams.set('scope', challenge.scope ?? `repository:${repository}:pull`);
  const res = await request(url.toString(), { method: 'GET', headers: access.credentials ? { Authorization: basic(access.credentials) } : {}, access, body: true });
  if (res.status !== 200) return undefined;
  const doc = JSON.parse(res.body.toString('utf8')) as { token?: string; access_token?: string };
  return doc.token ?? doc.access_token;
}

async function manifestAt(base: string, ref: ImageRef, access: RegistryAccess): Promise<DigestAnswer> {
  const url = `${base}/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag}`;
  const headers: Record<string, string> = { Accept: MANIFEST_TYPES };
  let res = await request(url, { method: 'HEAD', headers, access });
  if (res.status === 401) {
    const { scheme, params } = parseChallenge(String(res.headers['www-authenticate'] ?? ''));
    if (scheme === 'bearer') {
      const token = await bearerToken(params, ref.repository, access);
      if (!token) return { kind: 'error', detail: 'the token service refused' };
      headers.Authorization = `Bearer ${token}`;
    } else if (scheme === 'basic' && access.credentials) headers.Authorization = basic(access.credentials);
    else return { kind: 'error', detail: 'the registry asks for credentials kimia does not have' };
    res = await request(url, { method: 'HEAD', headers, access });
  }
  if (res.status === 404) return { kind: 'missing' };
  if (res.status !== 200) return { kind: 'error', detail: `HTTP ${res.status}` };
  const digest = res.headers['docker-content-digest'];
  if (typeof digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(digest)) return { kind: 'digest', digest };
  // a registry that leaves the header out of HEAD: the digest of the manifest bytes
  const got = await request(url, { method: 'GET', headers, access, body: true });
  if (got.status !== 200) return { kind: 'error', detail: `HTTP ${got.status}` };
  return { kind: 'digest', digest: `sha256:${createHash('sha256').update(got.body).digest('hex')}` };
}

/** The manifest digest REF names now (a digest reference answers itself). */
export async function manifestDigest(refText: string, access: RegistryAccess): Promise<DigestAnswer> {
  const ref = parseImageRef(refText);
  if (ref.digest) return { kind: 'digest', digest: ref.digest };
  const host = ref.registry === 'docker.io' ? 'registry-1.docker.io' : ref.registry;
  // An insecure registry is asked in plain HTTP first: it accepts either answer anyway, and a TLS context costs
  // tens of milliseconds (the system CA store) on a path that exists to be fast. A TLS registry answers a plain
  // request with an error status before any credential is sent, and is then asked over HTTPS.
  const schemes = access.insecure ? ['http', 'https'] : ['https'];
  let last = '';
  for (const scheme of schemes) {
    try {
      const answer = await manifestAt(`${scheme}://${host}`, ref, access);
      if (answer.kind !== 'error' || scheme === schemes[schemes.length - 1]) return answer;
      last = answer.detail;
    } catch (err) {
      last = (err as Error).message;
    }
  }
  return { kind: 'error', detail: last };
}
