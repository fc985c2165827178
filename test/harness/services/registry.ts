/**
 * A real OCI registry (Debian `docker-registry`, distribution 2.8.2) for tests, on 127.0.0.1 only, with its config,
 * storage, htpasswd and certificates under a temp dir that is removed on stop.
 *
 *   await using reg = await startRegistry();                                  // plain HTTP
 *   await using reg = await startRegistry({ auth: true });                    // htpasswd (bcrypt), random creds in reg.auth
 *   await using reg = await startRegistry({ tls: true, auth: { username: 'u', password: 'p' } });
 *   reg.host            // "127.0.0.1:PORT" (TLS cert is also valid for "localhost:PORT")
 *   reg.tls?.certDir    // pass as buildah/skopeo --cert-dir (holds ca.crt)
 *   await reg.writeDockerConfig(dir)  // dir/config.json with auths → DOCKER_CONFIG=dir
 *   await reg.manifest('busybox', 'latest')  // { digest (Docker-Content-Digest), contentType, body }
 *
 * Never uses the package's default config (which listens on all interfaces).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { CloserStack, tempDir } from '../../../src/core/fsx/index.js';
import { run } from '../../../src/core/exec/index.js';
import { freePort, httpStatus, waitFor } from '../wait.js';
import { startProcess } from '../proc.js';

export interface RegistryOptions {
  auth?: boolean | { username: string; password: string };
  tls?: boolean;
  /** more IP addresses the TLS certificate is valid for (e.g. a pod network gateway that relays to the registry) */
  tlsIps?: string[];
}

export interface StartedRegistry extends AsyncDisposable {
  host: string;
  url: string;
  auth?: { username: string; password: string };
  tls?: { caCertPath: string; certDir: string };
  dir: string;
  logPath: string;
  writeDockerConfig(dir: string): Promise<string>;
  manifest(repo: string, ref: string): Promise<{ digest: string; contentType: string; body: string }>;
  stop(): Promise<void>;
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** CA + server certificate (SAN DNS:localhost, IP:127.0.0.1, and `extraIps`) signed by it, written into `dir`. */
export async function makeTlsMaterial(dir: string, extraIps: readonly string[] = []): Promise<{ caCertPath: string; caKeyPath: string; certPath: string; keyPath: string; certDir: string }> {
  await mkdir(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '3', '-subj', '/CN=kimia-runcvm test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=localhost']);
  await writeFile(p('server.ext'), [
    `subjectAltName=DNS:localhost,IP:127.0.0.1${extraIps.map((ip) => `,IP:${ip}`).join('')}`,
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    '',
  ].join('\n'));
  await run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('server.crt'), '-days', '3', '-extfile', p('server.ext')]);
  // a folder with only ca.crt: containers/image treats *.cert/*.key in --cert-dir as client certificates
  const certDir = p('certs.d');
  await mkdir(certDir, { recursive: true });
  await writeFile(join(certDir, 'ca.crt'), await readFile(p('ca.crt')));
  return { caCertPath: p('ca.crt'), caKeyPath: p('ca.key'), certPath: p('server.crt'), keyPath: p('server.key'), certDir };
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<StartedRegistry> {
  const closers = new CloserStack();
  try {
    const dir = await tempDir('harness-registry', closers);
    const logPath = join(dir, 'registry.log');
    let port = await freePort();
    const auth =
      opts.auth === true
        ? { username: 'harness', password: randomBytes(12).toString('hex') }
        : opts.auth
          ? { ...opts.auth }
          : undefined;

    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
      storage: {
        filesystem: { rootdirectory: join(dir, 'storage') },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { addr: `127.0.0.1:${port}`, headers: { 'X-Content-Type-Options': ['nosniff'] } } as Record<string, unknown>,
    };
    if (auth) {
      const htpasswdPath = join(dir, 'htpasswd');
      const r = await run('htpasswd', ['-Bbn', auth.username, auth.password], { secrets: [auth.password] });
      await writeFile(htpasswdPath, r.stdout, { mode: 0o600 });
      config.auth = { htpasswd: { realm: 'harness-registry', path: htpasswdPath } };
    }
    let tls: { caCertPath: string; certDir: string } | undefined;
    let caPem: Buffer | undefined;
    if (opts.tls) {
      const m = await makeTlsMaterial(join(dir, 'tls'), opts.tlsIps);
      tls = { caCertPath: m.caCertPath, certDir: m.certDir };
      caPem = await readFile(m.caCertPath);
      (config.http as Record<string, unknown>).tls = { certificate: m.certPath, key: m.keyPath };
    }
    const configPath = join(dir, 'config.yml');
    let host = '';
    let url = '';
    // The port was free a moment ago; if another process grabbed it meanwhile, try again with a new one.
    for (let attempt = 1; ; attempt++) {
      (config.http as Record<string, unknown>).addr = `127.0.0.1:${port}`;
      // JSON is valid YAML; the registry reads it as its config file.
      await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
      const proc = await startProcess('docker-registry', 'docker-registry', ['serve', configPath], { logPath });
      closers.push('stop docker-registry', () => proc.stop(5000));
      host = `127.0.0.1:${port}`;
      url = `${opts.tls ? 'https' : 'http'}://${host}`;
      try {
        await waitFor(`docker-registry at ${url}/v2/ to answer 200 or 401`, async () => {
          proc.assertAlive();
          return httpStatus(`${url}/v2/`, [200, 401]);
        }, { timeoutMs: 15_000, intervalMs: 20 });
        break;
      } catch (err) {
        if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err;
        await proc.stop(1000);
        port = await freePort();
      }
    }

    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= closers.close().then((errors) => {
        if (errors.length) throw new AggregateError(errors, `stopping registry ${host}: ${errors.map((e) => e.message).join('; ')}`);
      });
      return stopped;
    };

    const reg: StartedRegistry = {
      host,
      url,
      dir,
      logPath,
      async writeDockerConfig(configDir: string) {
        await mkdir(configDir, { recursive: true });
        const file = join(configDir, 'config.json');
        let existing: { auths?: Record<string, unknown> } = {};
        try {
          existing = JSON.parse(await readFile(file, 'utf8')) as typeof existing;
        } catch {
          /* new file */
        }
        const auths: Record<string, unknown> = { ...(existing.auths ?? {}) };
        const hosts = opts.tls ? [host, host.replace('127.0.0.1:', 'localhost:')] : [host];
        for (const h of hosts) auths[h] = auth ? { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } : {};
        await writeFile(file, `${JSON.stringify({ ...existing, auths }, null, 2)}\n`, { mode: 0o600 });
        return configDir;
      },
      manifest: (repo, ref) => getManifest(url, repo, ref, auth, caPem),
      stop,
      [Symbol.asyncDispose]: stop,
    };
    if (auth) reg.auth = auth;
    if (tls) reg.tls = tls;
    return reg;
  } catch (err) {
    await closers.close();
    throw err;
  }
}

async function getManifest(
  baseUrl: string,
  repo: string,
  ref: string,
  auth: { username: string; password: string } | undefined,
  ca: Buffer | undefined,
): Promise<{ digest: string; contentType: string; body: string }> {
  const target = `${baseUrl}/v2/${repo}/manifests/${ref}`;
  const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
  if (auth) headers.Authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  const request = target.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(target, { method: 'GET', headers, ...(ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${target} answered ${res.statusCode}: ${body.slice(0, 300)}`));
          return;
        }
        resolve({
          digest: String(res.headers['docker-content-digest'] ?? ''),
          contentType: String(res.headers['content-type'] ?? ''),
          body,
        });
      });
      res.on('error', reject);
    });
    req.on('error', (e: Error) => reject(new Error(`GET ${target}: ${e.message}`)));
    req.end();
  });
}
