/**
 * Proves the test harness against the real services: registry (plain, htpasswd, TLS), test images, containerd,
 * dockerd, and that stopping leaves no process, mount or folder behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { startContainerd, type StartedContainerd } from '../harness/services/containerd.js';
import { requireDockerd, startDockerd } from '../harness/services/dockerd.js';
import { busyboxRootfs, pushBusyboxImage, pushDebootstrapImage } from '../harness/images.js';
import { freePort, httpStatus, waitFor } from '../harness/wait.js';
import { mountsUnder, processesMatching } from '../harness/proc.js';
import { evidenceDirName, keepEvidence, RESULTS_DIR, saveEvidence } from '../harness/evidence.js';

/** Listening TCP sockets on `port` from /proc/net/tcp{,6}: their local addresses in kernel hex form. */
function listenersOn(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const found: string[] = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const [addr, p] = (cols[1] ?? '').split(':');
      if (p === hexPort && cols[3] === '0A' && addr) found.push(addr);
    }
  }
  return found;
}

async function assertGone(dir: string): Promise<void> {
  expect(await processesMatching(dir)).toEqual([]);
  expect(await mountsUnder(dir)).toEqual([]);
  expect(existsSync(dir)).toBe(false);
}

const sha256 = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

describe('wait', () => {
  it('names what it waited for and the last probe error', async () => {
    await expect(
      waitFor('the answer', () => {
        throw new Error('not yet 42');
      }, { timeoutMs: 60, intervalMs: 10 }),
    ).rejects.toThrow(/^timed out after 60ms waiting for the answer: not yet 42$/);
    const port = await freePort();
    await expect(httpStatus(`http://127.0.0.1:${port}/`, [200], 500)).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('evidence', () => {
  it('copies logs for a failed test only', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'harness-evidence-'));
    try {
      const log = join(tmp, 'svc.log');
      await import('node:fs/promises').then((fs) => fs.writeFile(log, 'boom\n'));
      const fake = (state: 'pass' | 'fail') => ({
        task: { name: `evidence self-test ${state}`, suite: undefined, file: { name: 'test/e2e/harness.test.ts' }, result: { state, errors: [{ name: 'Error', message: 'x' }] } },
      }) as unknown as Parameters<typeof saveEvidence>[0];
      expect(await saveEvidence(fake('pass'), [{ logPath: log, name: 'svc' }])).toBeUndefined();
      expect(existsSync(join(RESULTS_DIR, evidenceDirName(fake('pass'))))).toBe(false);
      const dir = await saveEvidence(fake('fail'), [{ logPath: log, name: 'svc' }, join(tmp, 'missing.log')]);
      expect(dir).toBe(join(RESULTS_DIR, 'harness--evidence_self-test_fail'));
      expect(await readFile(join(dir!, 'svc.log'), 'utf8')).toBe('boom\n');
      await rm(dir!, { recursive: true, force: true });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe('registry', () => {
  it('plain: /v2/ answers 200, listens on 127.0.0.1 only, and is gone after stop', async () => {
    const reg = await startRegistry();
    const port = Number(reg.host.split(':')[1]);
    try {
      expect(reg.url).toBe(`http://${reg.host}`);
      expect(await httpStatus(`${reg.url}/v2/`, [200, 401])).toBe(200);
      expect(listenersOn(port)).toEqual(['0100007F']);
      expect(readFileSync(join(reg.dir, 'config.yml'), 'utf8')).toContain(`"addr": "127.0.0.1:${port}"`);
    } finally {
      await reg.stop();
    }
    await assertGone(reg.dir);
    expect(listenersOn(port)).toEqual([]);
  });

  it('htpasswd: 401 without credentials, bcrypt credentials accepted; `await using` stops it', async () => {
    let dir = '';
    {
      await using reg = await startRegistry({ auth: { username: 'alice', password: 's3cret-pw' } });
      dir = reg.dir;
      expect(readFileSync(join(reg.dir, 'htpasswd'), 'utf8')).toMatch(/^alice:\$2y\$/);
      expect(await httpStatus(`${reg.url}/v2/`, [200, 401])).toBe(401);
      const ok = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-u', 'alice:s3cret-pw', `${reg.url}/v2/`]);
      expect(ok.stdout).toBe('200');
      const bad = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-u', 'alice:wrong', `${reg.url}/v2/`]);
      expect(bad.stdout).toBe('401');
    }
    await assertGone(dir);
  });

  describe('TLS + auth, busybox image', () => {
    let reg: StartedRegistry;
    let ref: string;
    keepEvidence(() => [reg]);
    beforeAll(async () => {
      reg = await startRegistry({ tls: true, auth: true });
      ref = await pushBusyboxImage(reg);
    });
    afterAll(async () => {
      await reg?.stop();
    });

    it('skopeo trusts it with --cert-dir (127.0.0.1 and localhost) and fails with x509 without', async () => {
      expect(reg.url).toBe(`https://${reg.host}`);
      expect(ref).toBe(`${reg.host}/busybox:latest`);
      const creds = `${reg.auth!.username}:${reg.auth!.password}`;
      const port = reg.host.split(':')[1];
      for (const host of [reg.host, `localhost:${port}`]) {
        const r = await run('skopeo', ['inspect', '--raw', '--cert-dir', reg.tls!.certDir, '--creds', creds, `docker://${host}/busybox:latest`]);
        expect(JSON.parse(r.stdout).schemaVersion).toBe(2);
      }
      const noCa = await run('skopeo', ['inspect', '--raw', '--creds', creds, `docker://${ref}`], { reject: false });
      expect(noCa.exitCode).not.toBe(0);
      expect(noCa.stderr).toMatch(/x509/);
      const noCreds = await run('skopeo', ['inspect', '--raw', '--cert-dir', reg.tls!.certDir, `docker://${ref}`], { reject: false });
      expect(noCreds.exitCode).not.toBe(0);
      expect(noCreds.stderr).toMatch(/unauthorized|authentication required/i);
    });

    it('the manifest skopeo reads has the digest the registry reports', async () => {
      const creds = `${reg.auth!.username}:${reg.auth!.password}`;
      const raw = (await run('skopeo', ['inspect', '--raw', '--cert-dir', reg.tls!.certDir, '--creds', creds, `docker://${ref}`])).stdout;
      const m = await reg.manifest('busybox', 'latest');
      expect(m.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(sha256(raw)).toBe(m.digest);
      expect(m.body).toBe(raw);
      expect(m.contentType).toBe(JSON.parse(raw).mediaType ?? 'application/vnd.oci.image.manifest.v1+json');
      const config = JSON.parse(
        (await run('skopeo', ['inspect', '--config', '--raw', '--cert-dir', reg.tls!.certDir, '--creds', creds, `docker://${ref}`])).stdout,
      );
      expect(config.config.Cmd).toEqual(['sh']);
    });

    it('writeDockerConfig gives skopeo working auths (DOCKER_CONFIG)', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'harness-dockercfg-'));
      try {
        expect(await reg.writeDockerConfig(dir)).toBe(dir);
        const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
        expect(Object.keys(cfg.auths)).toContain(reg.host);
        const r = await run('skopeo', ['inspect', '--raw', '--cert-dir', reg.tls!.certDir, `docker://${ref}`], {
          env: { DOCKER_CONFIG: dir, REGISTRY_AUTH_FILE: join(dir, 'config.json') },
        });
        expect(sha256(r.stdout)).toBe((await reg.manifest('busybox', 'latest')).digest);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('pushes the cached debootstrap bookworm image (~200 MB, >50 MB compressed)', async () => {
      const big = await pushDebootstrapImage(reg);
      expect(big).toBe(`${reg.host}/debian:bookworm`);
      const m = JSON.parse((await reg.manifest('debian', 'bookworm')).body);
      const size = (m.layers as { size: number }[]).reduce((a, l) => a + l.size, 0);
      expect(size).toBeGreaterThan(50_000_000); // compressed
    });
  });
});

describe('images', () => {
  it('busyboxRootfs has users, groups, sh and /tmp 1777', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'harness-rootfs-'));
    try {
      const root = await busyboxRootfs(join(tmp, 'rootfs'));
      expect(readFileSync(join(root, 'etc/passwd'), 'utf8')).toMatch(/^app:x:1000:1000:/m);
      expect(readFileSync(join(root, 'etc/group'), 'utf8')).toMatch(/^extra:x:2000:app$/m);
      expect(existsSync(join(root, 'bin/sh'))).toBe(true);
      const st = await import('node:fs/promises').then((fs) => fs.stat(join(root, 'tmp')));
      expect(st.mode & 0o7777).toBe(0o1777);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe('containerd and dockerd run the busybox image', () => {
  let reg: StartedRegistry;
  let ref: string;
  let cd: StartedContainerd | undefined;
  keepEvidence(() => [reg, cd]);
  beforeAll(async () => {
    reg = await startRegistry();
    ref = await pushBusyboxImage(reg);
  });
  afterAll(async () => {
    await cd?.stop();
    await reg?.stop();
  });

  it('containerd: pull --plain-http, ctr run --rm, then stop leaves nothing', async () => {
    cd = await startContainerd();
    expect(existsSync(cd.socket)).toBe(true);
    await cd.ctr(['images', 'pull', '--plain-http', ref]);
    const r = await cd.ctr(['run', '--rm', ref, 'hello', 'sh', '-c', 'echo hello from $(id -un); id app']);
    expect(r.stdout).toContain('hello from root');
    expect(r.stdout).toMatch(/uid=1000\(app\) gid=1000\(app\) groups=1000\(app\),2000\(extra\)/);
    // something left running and mounted: stop() must clean it
    await cd.ctr(['run', '-d', ref, 'sleeper', 'sleep', '3600']);
    expect((await mountsUnder(cd.dir)).length).toBeGreaterThan(0);
    expect((await processesMatching(`-address ${cd.socket}`)).length).toBe(1);
    const { dir } = cd;
    await cd.stop();
    await assertGone(dir);
    expect(await processesMatching('sleep 3600')).toEqual([]);
  });

  it('containerd with CRI: the plugin loads with an extra runtime', async () => {
    await using cri = await startContainerd({ cri: true, runtimes: { alt: { binaryName: '/usr/sbin/runc' } } });
    const plugins = (await cri.ctr(['plugins', 'ls'])).stdout;
    expect(plugins).toMatch(/io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/);
    expect(readFileSync(cri.configPath, 'utf8')).toContain('BinaryName = "/usr/sbin/runc"');
  });

  it('dockerd: docker run --rm prints output, a custom runtime works, stop leaves nothing', async () => {
    // scripts/setup.sh installs docker.io: a machine without a usable dockerd fails here with the fix, never skips
    await requireDockerd();
    const d = await startDockerd({ insecureRegistries: [reg.host], runtimes: { alt: { path: '/usr/sbin/runc' } } });
    const { dir } = d;
    // /etc/docker belongs to whatever else runs on the machine (another dockerd may write its key.json there at any
    // time, so its presence proves nothing): the harness's dockerd writes its own key under its folder, not there
    let ownKey = '';
    try {
      ownKey = readFileSync(join(dir, 'key.json'), 'utf8');
      const r = await d.docker(['run', '--rm', ref, 'echo', 'hello from docker']);
      expect(r.stdout).toBe('hello from docker\n');
      const alt = await d.docker(['run', '--rm', '--runtime', 'alt', ref, 'cat', '/proc/net/dev']);
      expect(alt.stdout).not.toMatch(/eth0/);
      await d.docker(['run', '-d', ref, 'sleep', '3601']);
    } finally {
      await d.stop();
    }
    await assertGone(dir);
    expect(await processesMatching('sleep 3601')).toEqual([]);
    expect(ownKey).toMatch(/"kid"/);
    expect(existsSync('/etc/docker/key.json') ? readFileSync('/etc/docker/key.json', 'utf8') : 'none').not.toBe(ownKey);
  });
});
