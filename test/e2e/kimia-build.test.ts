/**
 * kimia end to end against a real htpasswd registry, built rootless as uid 1000 with a subordinate range:
 * a realistic multi-stage Dockerfile on overlay and vfs, digests checked against the registry, Docker-format config,
 * outputs, cache hits, reproducibility, auth failures and secrets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, readdir, chmod, mkdir } from 'node:fs/promises';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { pushBusyboxImage } from '../harness/images.js';
import { buildKimia, ensureSubIds, filesInImage, imageConfig, kimia, skopeo, workspace, type Workspace } from './kimia-helpers.js';
import { run } from '../../src/core/exec/index.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let reg: StartedRegistry;
let base: string;
let ws: Workspace;
let dockerConfig: string;
let creds: { username: string; password: string };

const SECRET_ARG = 'ghp_buildArgSecretValue123';

const DOCKERFILE = (baseRef: string) => `ARG BASE=${baseRef}
FROM \${BASE} AS builder
ARG GIT_TOKEN
RUN mkdir -p /out && echo built > /out/artifact.txt && test -n "$GIT_TOKEN"

FROM \${BASE} AS final
RUN mkdir -p /data && echo hello > /data/x && chown -R app:app /data
COPY --from=builder /out/artifact.txt /opt/artifact.txt
COPY --chown=app:app app.txt /home/app/app.txt
USER app
HEALTHCHECK --interval=30s CMD true
SHELL ["/bin/sh", "-c"]
STOPSIGNAL SIGTERM
CMD ["sh"]

FROM final AS extra
RUN echo never > /never
`;

async function writeContext(dir: string): Promise<string> {
  await ws.write(`${dir}/Dockerfile`, DOCKERFILE(base));
  await ws.write(`${dir}/app.txt`, 'app file\n');
  await ws.write(`${dir}/secret.env`, 'DO NOT SHIP\n');
  await ws.write(`${dir}/.dockerignore`, 'secret.env\n');
  return ws.path(dir);
}

const insecure = () => ['--insecure-registry', reg.host];

beforeAll(async () => {
  await Promise.all([buildKimia(), ensureSubIds()]);
  reg = await startRegistry({ auth: true });
  creds = reg.auth!;
  base = await pushBusyboxImage(reg);
  ws = await workspace();
  dockerConfig = await reg.writeDockerConfig(ws.path('docker'));
  await run('chown', ['-R', '1000:1000', dockerConfig]);
  await chmod(dockerConfig, 0o755);
});

afterAll(async () => {
  await ws?.cleanup();
  await reg?.stop();
});

describe.each(['overlay', 'vfs'] as const)('rootless build with %s storage', (driver) => {
  it('builds the multi-stage Dockerfile, pushes it, and writes the registry manifest digest', async () => {
    const ctx = await writeContext(`ctx-${driver}`);
    const dest = `${reg.host}/app-${driver}:1`;
    const r = await kimia(['--context', ctx, `--destination=${dest}`, '--target', 'final', '--storage-driver', driver, '--isolation=chroot',
      '--build-arg', `GIT_TOKEN=${SECRET_ARG}`, ...insecure(), '--digest-file', ws.path(`digest-${driver}`),
      '--image-name-with-digest-file', ws.path(`name-${driver}`), '--image-name-tag-with-digest-file', ws.path(`nametag-${driver}`)], {
      home: ws.path(`home-${driver}`), env: { DOCKER_CONFIG: dockerConfig, BUILDAH_FORMAT: 'docker' },
    });
    expect(r.exitCode, r.all).toBe(0);
    const digest = (await readFile(ws.path(`digest-${driver}`), 'utf8')).trim();
    const remote = await reg.manifest(`app-${driver}`, '1');
    expect(digest).toBe(remote.digest);
    expect(await readFile(ws.path(`name-${driver}`), 'utf8')).toBe(`${reg.host}/app-${driver}@${digest}\n`);
    expect(await readFile(ws.path(`nametag-${driver}`), 'utf8')).toBe(`${dest}@${digest}\n`);

    // Docker format keeps HEALTHCHECK, SHELL and STOPSIGNAL in the pushed config
    const cfg = await imageConfig(dest, { creds });
    expect(cfg.config?.Healthcheck?.Test).toEqual(['CMD-SHELL', 'true']);
    expect(cfg.config?.Shell).toEqual(['/bin/sh', '-c']);
    expect(cfg.config?.StopSignal).toBe('SIGTERM');
    expect(cfg.config?.User).toBe('app');

    // contents: chown -R to another user, COPY --chown, COPY --from, .dockerignore, --target (no /never)
    const files = await filesInImage(dest, ws, { creds });
    expect(files.get('data/x')).toMatchObject({ uid: 1000, gid: 1000, content: 'hello\n' });
    expect(files.get('home/app/app.txt')).toMatchObject({ uid: 1000, gid: 1000, content: 'app file\n' });
    expect(files.get('opt/artifact.txt')?.content).toBe('built\n');
    expect([...files.keys()].some((f) => f.endsWith('secret.env'))).toBe(false);
    expect(files.has('never')).toBe(false);

    // progress: every step is reported in plain lines (no key=value suffix), and the secret build-arg never appears
    expect(r.stderr).toMatch(/^stage 1\/\d+, step 1\/\d+: FROM /m);
    expect(r.stderr).not.toMatch(/event=|step=\d|\[kimia\]/);
    expect(r.stderr).toMatch(/layers to push: sha256:/);
    expect(r.all).not.toContain(SECRET_ARG);
  });
});

describe('image format', () => {
  it('a Dockerfile with HEALTHCHECK is built in Docker format by default; BUILDAH_FORMAT=oci keeps OCI and warns once', async () => {
    const ctx = await writeContext('ctx-oci');
    const auto = await kimia(['-c', ctx, '-d', `${reg.host}/app-auto:1`, '-t', 'final', '--storage-driver=overlay', ...insecure(), '--build-arg', 'GIT_TOKEN=x1y2z3'], {
      home: ws.path('home-oci'), env: { DOCKER_CONFIG: dockerConfig },
    });
    expect(auto.exitCode, auto.all).toBe(0);
    expect(auto.all).toMatch(/building in Docker format: the Dockerfile uses HEALTHCHECK \(Dockerfile:11\), SHELL \(Dockerfile:12\)/);
    expect(auto.all).not.toContain('instruction ignored');
    expect((await reg.manifest('app-auto', '1')).contentType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect((await imageConfig(`${reg.host}/app-auto:1`, { creds })).config?.Healthcheck?.Test).toEqual(['CMD-SHELL', 'true']);

    const r = await kimia(['-c', ctx, '-d', `${reg.host}/app-oci:1`, '-t', 'final', '--storage-driver=overlay', ...insecure(), '--build-arg', 'GIT_TOKEN=x1y2z3'], {
      home: ws.path('home-oci'), env: { DOCKER_CONFIG: dockerConfig, BUILDAH_FORMAT: 'oci' },
    });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all.match(/Warning: HEALTHCHECK instruction ignored/g)).toHaveLength(1);
    expect(r.all).toContain('HEALTHCHECK at Dockerfile:11: the image has no health check');
    expect(r.all).toContain('BUILDAH_FORMAT=docker');
    expect(r.all).not.toMatch(/HEALTHCHECK is not supported for OCI image format/);
    expect((await reg.manifest('app-oci', '1')).contentType).toBe('application/vnd.oci.image.manifest.v1+json');
    const cfg = await imageConfig(`${reg.host}/app-oci:1`, { creds });
    expect(cfg.config?.Healthcheck).toBeUndefined();
    // STOPSIGNAL has an OCI field and survives, so kimia does not claim it was dropped
    expect(cfg.config?.StopSignal).toBe('SIGTERM');
    expect(r.all).not.toMatch(/STOPSIGNAL instruction ignored/);
  });
});

describe('outputs', () => {
  it('--tar-path and --oci-layout-path are loadable by skopeo; --no-push keeps the image in local storage', async () => {
    await ws.write('ctx-out/Dockerfile', `FROM ${base}\nRUN echo out > /out.txt\n`);
    const home = ws.path('home-out');
    const r = await kimia(['-c', ws.path('ctx-out'), '--no-push', '--destination', `${reg.host}/never:1`, '--tar-path', ws.path('out/image.tar'),
      '--oci-layout-path', ws.path('out/layout'), '--storage-driver', 'overlay', ...insecure()], { home, env: { DOCKER_CONFIG: dockerConfig } });
    expect(r.exitCode, r.all).toBe(0);
    const tarInfo = JSON.parse(await skopeo(['inspect', `docker-archive:${ws.path('out/image.tar')}`])) as { Layers: string[] };
    expect(tarInfo.Layers.length).toBeGreaterThanOrEqual(2);
    const ociInfo = JSON.parse(await skopeo(['inspect', `oci:${ws.path('out/layout')}`])) as { Layers: string[] };
    expect(ociInfo.Layers.length).toBe(tarInfo.Layers.length);
    // not pushed
    await expect(reg.manifest('never', '1')).rejects.toThrow();
    // still in local storage
    const images = await run('setpriv', ['--reuid', '1000', '--regid', '1000', '--init-groups', 'env', `HOME=${home}`, 'buildah',
      '--root', `${home}/.local/share/containers/storage`, '--runroot', `${home}/.local/share/containers/run`, '--storage-driver', 'overlay', 'images', '--format', '{{.Name}}:{{.Tag}}']);
    expect(images.stdout).toContain(`${reg.host}/never:1`);
  });

  it('pushes to several destinations, one line per destination in the digest files', async () => {
    await ws.write('ctx-multi/Dockerfile', `FROM ${base}\nRUN echo multi > /m.txt\n`);
    const r = await kimia(['-c', ws.path('ctx-multi'), '-d', `${reg.host}/multi-a:1`, '-d', `${reg.host}/multi-b`, '--storage-driver=overlay', ...insecure(),
      '--image-name-tag-with-digest-file', ws.path('multi.txt'), '--digest-file', ws.path('multi.digest')], { home: ws.path('home-multi'), env: { DOCKER_CONFIG: dockerConfig } });
    expect(r.exitCode, r.all).toBe(0);
    const a = await reg.manifest('multi-a', '1');
    const b = await reg.manifest('multi-b', 'latest');
    expect(a.digest).toBe(b.digest);
    expect(await readFile(ws.path('multi.txt'), 'utf8')).toBe(`${reg.host}/multi-a:1@${a.digest}\n${reg.host}/multi-b:latest@${b.digest}\n`);
    expect(await readFile(ws.path('multi.digest'), 'utf8')).toBe(a.digest);
  });
});

describe('multi-platform', () => {
  it('pushes a manifest list for two platforms; the digest file holds the list digest the registry serves', async () => {
    await ws.write('ctx-mp/Dockerfile', 'FROM scratch\nCOPY Dockerfile /Dockerfile\n');
    const r = await kimia(['-c', ws.path('ctx-mp'), '-d', `${reg.host}/multi-arch:1`, '--custom-platform', 'linux/amd64,linux/arm64', '--storage-driver=overlay', ...insecure(),
      '--digest-file', ws.path('mp.digest')], { home: ws.path('home-mp'), env: { DOCKER_CONFIG: dockerConfig } });
    expect(r.exitCode, r.all).toBe(0);
    const remote = await reg.manifest('multi-arch', '1');
    expect((await readFile(ws.path('mp.digest'), 'utf8')).trim()).toBe(remote.digest);
    const list = JSON.parse(remote.body) as { manifests: { platform: { architecture: string } }[] };
    expect(list.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);
  });
});

describe('cache', () => {
  it('--cache with a persistent --cache-dir: an unchanged rebuild in a new process is answered from the build key; with --no-build-key it hits every step', async () => {
    await ws.write('ctx-cache/Dockerfile', `FROM ${base}\nRUN echo one > /1\nCOPY app.txt /app.txt\nRUN echo two > /2\nENV A=b\n`);
    await ws.write('ctx-cache/app.txt', 'x\n');
    const args = ['-c', ws.path('ctx-cache'), '--no-push', '--cache', '--cache-dir', ws.path('cache'), '--storage-driver', 'overlay', ...insecure(), '--log-format', 'json'];
    const first = await kimia(args, { home: ws.path('home-cache-1'), env: { DOCKER_CONFIG: dockerConfig } });
    expect(first.exitCode, first.all).toBe(0);
    const second = await kimia(args, { home: ws.path('home-cache-2'), env: { DOCKER_CONFIG: dockerConfig } });
    expect(second.exitCode, second.all).toBe(0);
    const third = await kimia([...args, '--no-build-key'], { home: ws.path('home-cache-3'), env: { DOCKER_CONFIG: dockerConfig } });
    expect(third.exitCode, third.all).toBe(0);
    const event = (out: string, name: string) => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.event === name);
    expect(event(first.stderr, 'built')).toMatchObject({ cacheHits: 0, cacheMisses: 4 });
    expect(event(second.stderr, 'built')).toBeUndefined();
    expect(event(second.stderr, 'unchanged')).toMatchObject({ imageId: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(event(third.stderr, 'built')).toMatchObject({ cacheHits: 4, cacheMisses: 0 });
  });

  it('--cache-repo pushes layers and a build from an empty storage reuses them', async () => {
    await ws.write('ctx-repo/Dockerfile', `FROM ${base}\nRUN echo remote-cache > /r\nRUN echo second > /s\n`);
    const args = (n: number) => ['-c', ws.path('ctx-repo'), '-d', `${reg.host}/cached:${n}`, '--cache=true', '--cache-repo', `${reg.host}/cache`, '--storage-driver=overlay', ...insecure(), '--log-format=json'];
    const first = await kimia(args(1), { home: ws.path('home-repo-1'), env: { DOCKER_CONFIG: dockerConfig } });
    expect(first.exitCode, first.all).toBe(0);
    const second = await kimia(args(2), { home: ws.path('home-repo-2'), env: { DOCKER_CONFIG: dockerConfig } });
    expect(second.exitCode, second.all).toBe(0);
    const built = (out: string) => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.event === 'built')!;
    expect(built(first.stderr)).toMatchObject({ cacheHits: 0, cacheMisses: 2 });
    expect(built(second.stderr)).toMatchObject({ cacheHits: 2, cacheMisses: 0 });
  });
});

describe('reproducible', () => {
  it('two builds from separate storages give the same manifest digest', async () => {
    await ws.write('ctx-repro/Dockerfile', `FROM ${base}\nCOPY app.txt /app.txt\nRUN echo same > /same\n`);
    await ws.write('ctx-repro/app.txt', 'repro\n');
    const digests: string[] = [];
    for (const n of [1, 2]) {
      const r = await kimia(['-c', ws.path('ctx-repro'), '-d', `${reg.host}/repro:${n}`, '--reproducible', '--storage-driver=overlay', ...insecure(), '--digest-file', ws.path(`repro-${n}`)],
        { home: ws.path(`home-repro-${n}`), env: { DOCKER_CONFIG: dockerConfig } });
      expect(r.exitCode, r.all).toBe(0);
      digests.push((await readFile(ws.path(`repro-${n}`), 'utf8')).trim());
    }
    expect(digests[0]).toBe(digests[1]);
    expect((await reg.manifest('repro', '2')).digest).toBe(digests[0]);
  });
});

describe('auth', () => {
  it('uses the DOCKER_USERNAME/DOCKER_PASSWORD fallback when there is no config.json', async () => {
    await ws.write('ctx-env/Dockerfile', `FROM ${base}\nRUN echo env > /e\n`);
    const r = await kimia(['-c', ws.path('ctx-env'), '-d', `${reg.host}/envauth:1`, '--storage-driver=overlay', ...insecure()], {
      home: ws.path('home-env'),
      env: { DOCKER_CONFIG: ws.path('no-such-dir'), DOCKER_USERNAME: creds.username, DOCKER_PASSWORD: creds.password, DOCKER_REGISTRY: reg.host },
    });
    expect(r.exitCode, r.all).toBe(0);
    expect((await reg.manifest('envauth', '1')).digest).toMatch(/^sha256:/);
    expect(r.all).not.toContain(creds.password);
  });

  it('a wrong password ends with exit 5 and the guide text, without retrying, and never prints the password', async () => {
    await ws.write('ctx-bad/Dockerfile', `FROM ${base}\nRUN echo bad > /b\n`);
    const wrong = 'Wr0ngPassw0rd-value';
    const r = await kimia(['-c', ws.path('ctx-bad'), '-d', `${reg.host}/bad:1`, '--push-retry', '3', '--storage-driver=overlay', ...insecure()], {
      home: ws.path('home-bad'),
      env: { DOCKER_CONFIG: ws.path('no-such-dir'), DOCKER_USERNAME: creds.username, DOCKER_PASSWORD: wrong, DOCKER_REGISTRY: reg.host },
    });
    expect(r.exitCode, r.all).toBe(5);
    expect(r.stderr).toContain('unauthorized: authentication required');
    expect(r.stderr).not.toMatch(/retrying/);
    expect(r.all).not.toContain(wrong);
    expect(r.all).not.toContain(Buffer.from(`${creds.username}:${wrong}`).toString('base64'));
  });
});

describe('cancel', () => {
  it('SIGTERM (pod deletion) stops buildah, leaves no build process and no private files, exit 130', async () => {
    await ws.write('ctx-term/Dockerfile', `FROM ${base}\nRUN printf 'sleep 60\\ntrue\\n' > /kimiatermsleeper.sh && sh /kimiatermsleeper.sh\n`);
    const home = ws.path('home-term');
    // kimia's private folder goes under its own TMPDIR, so parallel builds in other files cannot be mistaken for ours
    const tmp = ws.path('tmp-term');
    await mkdir(tmp, { recursive: true });
    await chmod(tmp, 0o1777);
    const r = await kimia(['-c', ws.path('ctx-term'), '--no-push', '--storage-driver=overlay', ...insecure()], {
      home, env: { DOCKER_CONFIG: dockerConfig, TMPDIR: tmp }, prefix: ['timeout', '--preserve-status', '-s', 'TERM', '6'],
    });
    expect(r.exitCode, r.all).toBe(130);
    expect(r.stderr).toContain('received SIGTERM: stopping buildah');
    expect((await readdir(tmp)).filter((d) => d.startsWith('kimia-'))).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const procs = await run('sh', ['-c', `ps -eo args | grep -e "${home}" -e kimiatermsleeper | grep -v grep || true`]);
    expect(procs.stdout.trim()).toBe('');
  });

  it('SIGTERM while the context is still downloading stops the download, removes the private folder, exit 130', async () => {
    // a server that answers the HEAD as a tarball, then sends a few bytes of the body and never finishes it
    const server = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/gzip', 'Content-Length': '10485760' });
      if (req.method === 'HEAD') return void res.end();
      res.write(Buffer.alloc(1024));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const tmp = ws.path('tmp-term-dl');
      await mkdir(tmp, { recursive: true });
      await chmod(tmp, 0o1777);
      const r = await kimia(['-c', `http://127.0.0.1:${port}/ctx.tar.gz`, '--no-push', '--storage-driver=overlay', ...insecure()], {
        home: ws.path('home-term-dl'), env: { DOCKER_CONFIG: dockerConfig, TMPDIR: tmp }, prefix: ['timeout', '--preserve-status', '-s', 'TERM', '6'],
      });
      expect(r.exitCode, r.all).toBe(130);
      expect(r.stderr).toContain('received SIGTERM');
      expect((await readdir(tmp)).filter((d) => d.startsWith('kimia-'))).toEqual([]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('logging', () => {
  it('--log-format json prints one JSON object per line, with steps, cache events and pushed layers', async () => {
    await ws.write('ctx-json/Dockerfile', `FROM ${base}\nRUN echo json > /j\n`);
    const r = await kimia(['-c', ws.path('ctx-json'), '-d', `${reg.host}/json:1`, '--storage-driver=overlay', ...insecure(), '--log-format', 'json', '--use-new-run'], {
      home: ws.path('home-json'), env: { DOCKER_CONFIG: dockerConfig },
    });
    expect(r.exitCode, r.all).toBe(0);
    const lines = r.stderr.split('\n').filter(Boolean);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.filter((o) => o.event === 'step').length).toBe(2);
    expect(records.some((o) => o.event === 'push-blob')).toBe(true);
    expect(records.some((o) => o.event === 'pushed' && typeof o.digest === 'string')).toBe(true);
    expect(records.some((o) => String(o.msg).includes('--use-new-run'))).toBe(true);
    expect(await readdir(ws.dir)).toBeDefined();
  });
});
