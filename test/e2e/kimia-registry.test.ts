/**
 * kimia against registries that are not friendly: TLS with a private CA (--registry-certificate) or unverified
 * (--skip-tls-verify), a flaky proxy that answers 503 or drops connections (push retries with backoff), and 401s
 * (never retried, exit 5).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, readFile } from 'node:fs/promises';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { pushBusyboxImage } from '../harness/images.js';
import { startFlakyProxy, type FlakyProxy } from '../harness/flaky-proxy.js';
import { buildKimia, chownTree, ensureSubIds, kimia, workspace, type Workspace } from './kimia-helpers.js';

let tlsReg: StartedRegistry;
let plain: StartedRegistry;
let proxy: FlakyProxy;
let ws: Workspace;
let tlsBase: string;
let plainBase: string;
let tlsConfig: string;

beforeAll(async () => {
  await Promise.all([buildKimia(), ensureSubIds()]);
  [tlsReg, plain] = await Promise.all([startRegistry({ tls: true, auth: true }), startRegistry()]);
  [tlsBase, plainBase] = await Promise.all([pushBusyboxImage(tlsReg), pushBusyboxImage(plain)]);
  proxy = await startFlakyProxy(plain.host);
  ws = await workspace('kimia-reg');
  await ws.write('certs/ca.crt', await readFile(tlsReg.tls!.caCertPath, 'utf8'));
  await copyFile(tlsReg.tls!.caCertPath, ws.path('registry-ca.pem'));
  tlsConfig = await tlsReg.writeDockerConfig(ws.path('docker-tls'));
  await ws.write('ctx-tls/Dockerfile', `FROM ${tlsBase}\nRUN echo tls > /tls\n`);
  await ws.write('ctx-plain/Dockerfile', `FROM ${plainBase}\nRUN echo plain > /plain\n`);
  await chownTree(ws.dir);
});

afterAll(async () => {
  await proxy?.stop();
  await ws?.cleanup();
  await Promise.all([tlsReg?.stop(), plain?.stop()]);
});

describe('TLS', () => {
  it('--registry-certificate DIR trusts the private CA for pull and push', async () => {
    const dest = `${tlsReg.host}/tls-dir:1`;
    const r = await kimia(['-c', ws.path('ctx-tls'), '-d', dest, '--registry-certificate', ws.path('certs'), '--storage-driver=overlay', '--digest-file', ws.path('tls-dir.digest')],
      { home: ws.path('home-tls-dir'), env: { DOCKER_CONFIG: tlsConfig } });
    expect(r.exitCode, r.all).toBe(0);
    expect((await readFile(ws.path('tls-dir.digest'), 'utf8')).trim()).toBe((await tlsReg.manifest('tls-dir', '1')).digest);
  });

  it('--registry-certificate HOST=FILE (Kaniko form) works too', async () => {
    const r = await kimia(['-c', ws.path('ctx-tls'), '-d', `${tlsReg.host}/tls-file:1`, `--registry-certificate=${tlsReg.host}=${ws.path('registry-ca.pem')}`, '--storage-driver=overlay'],
      { home: ws.path('home-tls-file'), env: { DOCKER_CONFIG: tlsConfig } });
    expect(r.exitCode, r.all).toBe(0);
    expect((await tlsReg.manifest('tls-file', '1')).digest).toMatch(/^sha256:/);
  });

  it('--skip-tls-verify with --skip-tls-verify-pull works without the CA', async () => {
    const r = await kimia(['-c', ws.path('ctx-tls'), '-d', `${tlsReg.host}/tls-skip:1`, '--skip-tls-verify', '--skip-tls-verify-pull', '--storage-driver=overlay'],
      { home: ws.path('home-tls-skip'), env: { DOCKER_CONFIG: tlsConfig } });
    expect(r.exitCode, r.all).toBe(0);
    expect((await tlsReg.manifest('tls-skip', '1')).digest).toMatch(/^sha256:/);
  });

  it('without the CA the build stops with the x509 error quoted (exit 3)', async () => {
    const r = await kimia(['-c', ws.path('ctx-tls'), '-d', `${tlsReg.host}/tls-none:1`, '--storage-driver=overlay'],
      { home: ws.path('home-tls-none'), env: { DOCKER_CONFIG: tlsConfig } });
    expect(r.exitCode, r.all).toBe(3);
    expect(r.stderr).toMatch(/error: build failed: .*(x509|certificate)/);
  });
});

describe('plain HTTP', () => {
  it('--insecure-pull and --insecure reach a plain-HTTP registry for pull and push', async () => {
    const r = await kimia(['-c', ws.path('ctx-plain'), '-d', `${plain.host}/insecure:1`, '--insecure', '--insecure-pull', '--storage-driver=overlay', '--digest-file', ws.path('insecure.digest')],
      { home: ws.path('home-insecure') });
    expect(r.exitCode, r.all).toBe(0);
    expect((await readFile(ws.path('insecure.digest'), 'utf8')).trim()).toBe((await plain.manifest('insecure', '1')).digest);
  });
});

describe('plain HTTP without the flag', () => {
  it('a pull names --insecure-registry=HOST and --insecure-pull with the actual host (exit 3)', async () => {
    const r = await kimia(['-c', ws.path('ctx-plain'), '--no-push', '--storage-driver=overlay'], { home: ws.path('home-plain-pull') });
    expect(r.exitCode, r.all).toBe(3);
    expect(r.stderr).toContain(`error: registry ${plain.host} answers in plain HTTP: http: server gave HTTP response to HTTPS client`);
    expect(r.stderr).toContain(`--insecure-registry=${plain.host}`);
    expect(r.stderr).toContain('--insecure-pull');
  });
  it('a push names --insecure-registry=HOST and --insecure (exit 4)', async () => {
    const r = await kimia(['-c', ws.path('ctx-plain'), '-d', `${plain.host}/plain-push:1`, '--insecure-pull', '--storage-driver=overlay'], { home: ws.path('home-plain-push') });
    expect(r.exitCode, r.all).toBe(4);
    expect(r.stderr).toContain(`error: registry ${plain.host} answers in plain HTTP`);
    expect(r.stderr).toContain(`--insecure-registry=${plain.host}`);
    expect(r.stderr).toMatch(/or --insecure \(every push\)/);
  });
});

describe('registry mirror', () => {
  it('--registry-mirror serves docker.io base images (FROM busybox) from the mirror', async () => {
    await pushBusyboxImage(plain, 'library/busybox');
    await ws.write('ctx-mirror/Dockerfile', 'FROM busybox\nRUN echo mirrored > /m\n');
    await chownTree(ws.dir);
    const r = await kimia(['-c', ws.path('ctx-mirror'), '--no-push', '--registry-mirror', plain.host, '--insecure-registry', plain.host, '--storage-driver=overlay'],
      { home: ws.path('home-mirror') });
    expect(r.exitCode, r.all).toBe(0);
  });
});

describe('push retries through a flaky proxy', () => {
  const build = (name: string, extra: string[]) => kimia(['-c', ws.path('ctx-plain'), '-d', `${proxy.host}/${name}:1`, '--insecure-registry', plain.host, '--insecure-registry', proxy.host,
    '--storage-driver=overlay', '--digest-file', ws.path(`${name}.digest`), ...extra], { home: ws.path(`home-${name}`) });

  it('retries with backoff after 503s and succeeds; the digest is the registry\'s', async () => {
    // each push attempt pings /v2/ and falls back to /v1/_ping: two 503s per failed attempt
    proxy.failNext(4, '503');
    const r = await build('retry-503', ['--push-retry=3']);
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stderr.match(/retrying in \d+ ms/g)).toHaveLength(2);
    expect(r.stderr).toMatch(/retrying in 200 ms[\s\S]*retrying in 400 ms/);
    expect((await readFile(ws.path('retry-503.digest'), 'utf8')).trim()).toBe((await plain.manifest('retry-503', '1')).digest);
  });

  it('retries after dropped connections', async () => {
    // buildah itself re-sends some requests after a drop, so drop enough of them to fail a whole attempt
    proxy.failNext(8, 'drop');
    const r = await build('retry-drop', ['--push-retry', '6']);
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stderr).toMatch(/push of .*retry-drop:1 failed \(.*(EOF|connection reset|closed).*\); retrying in 200 ms/);
    expect((await plain.manifest('retry-drop', '1')).digest).toMatch(/^sha256:/);
  });

  it('gives up after --push-retry attempts with exit 4 and the child error quoted', async () => {
    proxy.failNext(4, '503');
    const r = await build('retry-giveup', ['--push-retry=1']);
    expect(r.exitCode, r.all).toBe(4);
    expect(r.stderr).toMatch(/error: push of .*retry-giveup:1 failed after 2 attempt\(s\): .*503/i);
    proxy.failNext(0, '503');
  });

  it('never retries a 401: exit 5 at once', async () => {
    const before = proxy.log.length;
    proxy.failNext(50, '401');
    const r = await build('retry-401', ['--push-retry=5']);
    proxy.failNext(0, '401');
    expect(r.exitCode, r.all).toBe(5);
    expect(r.stderr).toContain('unauthorized: authentication required');
    expect(r.stderr).not.toMatch(/retrying/);
    // one push attempt only: buildah's ping(s) of a single attempt, never a second round
    const attempts = proxy.log.slice(before).filter((l) => l.path === '/v2/').length;
    expect(attempts).toBeLessThanOrEqual(2);
  });
});

describe('base image pull retries (--image-download-retry)', () => {
  const blobs = (_m: string, path: string) => path.includes('/blobs/');
  const pullThroughProxy = async (name: string, retries: number) => {
    await ws.write(`ctx-${name}/Dockerfile`, `FROM ${plainBase.replace(plain.host, proxy.host)}\nRUN echo pulled > /p\n`);
    await chownTree(ws.dir);
    return kimia(['-c', ws.path(`ctx-${name}`), '--no-push', '--insecure-registry', proxy.host, '--storage-driver=overlay', `--image-download-retry=${retries}`],
      { home: ws.path(`home-${name}`) });
  };

  it('layer downloads that drop are retried and the build succeeds; with no retries the same drops fail the build (exit 3)', async () => {
    proxy.failNext(2, 'drop', blobs);
    const none = await pullThroughProxy('pull-noretry', 0);
    proxy.failNext(0, 'drop');
    expect(none.exitCode, none.all).toBe(3);
    expect(none.stderr).toMatch(/error: build failed: .*(EOF|connection reset|closed)/i);

    const before = proxy.log.length;
    proxy.failNext(2, 'drop', blobs);
    const retried = await pullThroughProxy('pull-retry', 3);
    proxy.failNext(0, 'drop');
    expect(retried.exitCode, retried.all).toBe(0);
    const seen = proxy.log.slice(before).filter((l) => l.path.includes('/blobs/'));
    expect(seen.filter((l) => l.action === 'failed').length).toBe(2);
    expect(seen.some((l) => l.action === 'forwarded')).toBe(true);
  });
});
