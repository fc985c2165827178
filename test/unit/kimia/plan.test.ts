import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../../src/kimia/cli/parse.js';
import { planBuild, planCommands, registriesConf } from '../../../src/kimia/plan/plan.js';
import { dockerOnlyInstructions, parseDockerfile } from '../../../src/kimia/dockerfile/parse.js';

function plan(argv: string[], text = 'FROM busybox\n', env: Record<string, string> = {}) {
  const c = parseCommand(argv, { HOME: '/home/kimia', ...env });
  if (c.kind !== 'build') throw new Error('not build');
  return planBuild(c.request, { contextDir: '/ctx', privateDir: '/p', authFile: '/p/auth.json', dockerfile: parseDockerfile(text) });
}
const keywords = (text: string) => dockerOnlyInstructions(parseDockerfile(text)).map((i) => i.keyword);

describe('planBuild', () => {
  it('turns a request into buildah bud and push argv lists', () => {
    const p = plan(['-d', 'reg:5000/a/b:1', '-d', 'reg:5000/a/c', '--target', 'final', '--cache', '--storage-driver=overlay', '--digest-file=/out/d']);
    expect(p.bud.slice(0, 7)).toEqual(['--root', '/home/kimia/.local/share/containers/storage', '--runroot', '/home/kimia/.local/share/containers/run', '--storage-driver', 'overlay', 'bud']);
    expect(p.bud).toEqual(expect.arrayContaining(['-t', 'reg:5000/a/b:1', '--target', 'final', '--layers', '--isolation', 'chroot', '--format', 'oci', '--authfile', '/p/auth.json']));
    expect(p.bud.at(-1)).toBe('/ctx');
    expect(p.pushes.map((s) => s.argv.slice(-2))).toEqual([
      ['reg:5000/a/b:1', 'docker://reg:5000/a/b:1'],
      ['reg:5000/a/b:1', 'docker://reg:5000/a/c'],
    ]);
    expect(p.pushes[0]!.argv).toEqual(expect.arrayContaining(['--digestfile', '/p/digest-0', '--retry', '0']));
  });

  it('puts the storage under --cache-dir so that the cache persists', () => {
    const p = plan(['-d', 'r/a', '--cache', '--cache-dir=/cache/']);
    expect(p.storage).toEqual({ root: '/cache/storage', runroot: '/cache/run', driver: 'vfs' });
  });

  it('--cache-repo adds --cache-from/--cache-to; --reproducible sets the timestamp', () => {
    const p = plan(['-d', 'r/a', '--cache-repo', 'reg/cache', '--reproducible']);
    expect(p.bud).toEqual(expect.arrayContaining(['--layers', '--cache-from', 'reg/cache', '--cache-to', 'reg/cache', '--timestamp', '0', '--identity-label=false']));
  });

  it('TLS flags: --skip-tls-verify affects the push, --insecure-pull the pull, --insecure-registry goes to registries.conf', () => {
    const p = plan(['-d', 'r.io/a', '--skip-tls-verify']);
    expect(p.pushes[0]!.argv).toContain('--tls-verify=false');
    expect(p.bud).not.toContain('--tls-verify=false');
    const q = plan(['-d', 'r.io/a', '--insecure-pull']);
    expect(q.bud).toContain('--tls-verify=false');
    expect(q.pushes[0]!.argv).not.toContain('--tls-verify=false');
    const r = plan(['-d', 'r.io:5000/a', '--insecure-registry', 'r.io:5000']);
    expect(r.files.find((f) => f.path.endsWith('registries.conf'))!.content).toContain('location = "r.io:5000"\ninsecure = true');
    expect(r.pushes[0]!.argv).toContain('--tls-verify=false');
  });

  it('exports: docker-archive and OCI layout; --no-push has no push', () => {
    const p = plan(['--no-push', '-d', 'r/a:1', '--tar-path=/o/i.tar', '--oci-layout-path=/o/l']);
    expect(p.pushes).toEqual([]);
    expect(p.exports.map((e) => e.argv.at(-1))).toEqual(['docker-archive:/o/i.tar:r/a:1', 'oci:/o/l']);
  });

  it('writes containers.conf for rootless buildah 1.28', () => {
    const p = plan(['-d', 'r/a']);
    const conf = p.files.find((f) => f.path === '/p/containers.conf')!;
    expect(conf.content).toContain('netns = "host"');
    expect(conf.content).toContain('runtime = "runc"');
    expect(conf.mode).toBe(0o600);
    expect(p.env.CONTAINERS_CONF).toBe('/p/containers.conf');
  });

  it('a Dockerfile with HEALTHCHECK, SHELL or ONBUILD is built in Docker format unless OCI is asked for', () => {
    const health = 'FROM x\nHEALTHCHECK CMD true\n';
    const byDefault = plan(['-d', 'r/a'], health);
    expect(byDefault.bud).toEqual(expect.arrayContaining(['--format', 'docker']));
    expect(byDefault.warnings).toEqual([]);
    expect(byDefault.notes).toEqual([expect.stringContaining('building in Docker format: the Dockerfile uses HEALTHCHECK (Dockerfile:2)')]);
    expect(plan(['-d', 'r/a'], 'FROM x\nRUN true\n').bud).toEqual(expect.arrayContaining(['--format', 'oci']));
    expect(plan(['-d', 'r/a', '--format=docker'], health).warnings).toEqual([]);
    expect(plan(['-d', 'r/a'], health, { BUILDAH_FORMAT: 'docker' }).format).toMatchObject({ build: 'docker', output: 'docker' });
    expect(keywords('FROM x\n  shell ["a"]\nONBUILD RUN true\n')).toEqual(['SHELL', 'ONBUILD']);
  });

  it('an explicit OCI request keeps OCI and says exactly what is lost; SHELL/ONBUILD builds run in Docker format and push OCI', () => {
    const p = plan(['-d', 'r/a'], 'FROM x\nHEALTHCHECK CMD true\n', { BUILDAH_FORMAT: 'oci' });
    expect(p.format).toMatchObject({ build: 'oci', output: 'oci' });
    expect(p.warnings).toEqual([expect.stringMatching(/^Warning: HEALTHCHECK instruction ignored \(BUILDAH_FORMAT=oci was asked for.*HEALTHCHECK at Dockerfile:2: the image has no health check/)]);
    expect(p.pushes[0]!.argv).not.toContain('--format');
    const shell = plan(['-d', 'r/a', '--format', 'oci'], 'FROM x\nSHELL ["/bin/bash", "-c"]\nRUN echo\nONBUILD RUN make\n');
    expect(shell.format).toMatchObject({ build: 'docker', output: 'oci' });
    expect(shell.bud).toEqual(expect.arrayContaining(['--format', 'docker']));
    expect(shell.pushes[0]!.argv).toEqual(expect.arrayContaining(['push', '--format', 'oci']));
    expect(shell.warnings[0]).toMatch(/^Warning: SHELL instruction ignored \(--format=oci was asked for/);
    expect(shell.warnings[0]).toContain('SHELL at Dockerfile:2: the image\'s default shell is not recorded');
    expect(shell.warnings[0]).toContain('this build\'s own RUN steps still used it');
    expect(shell.warnings[0]).toContain('ONBUILD at Dockerfile:4: images built FROM this one will not run RUN make');
  });

  it('does not warn about STOPSIGNAL: the OCI config keeps it (buildah 1.28 stores OCIv1 StopSignal)', () => {
    expect(keywords('FROM x\nSTOPSIGNAL SIGINT\n')).toEqual([]);
    expect(plan(['-d', 'r/a'], 'FROM x\nSTOPSIGNAL SIGINT\n').warnings).toEqual([]);
    expect(plan(['-d', 'r/a'], 'FROM x\nSTOPSIGNAL SIGINT\n').format.build).toBe('oci');
  });

  it('removes the working containers a build leaves, with the same storage flags', () => {
    const p = plan(['-d', 'r/a', '--cache-dir=/cache', '--storage-driver=overlay']);
    expect(p.cleanup).toEqual({
      containersFile: '/cache/storage/overlay-containers/containers.json',
      rm: ['--root', '/cache/storage', '--runroot', '/cache/run', '--storage-driver', 'overlay', 'rm'],
    });
  });

  it('a bare --build-arg NAME that is not in the environment is left out, so the Dockerfile ARG default applies', () => {
    const c = parseCommand(['-d', 'r/a', '--build-arg', 'SET_ONE', '--build-arg', 'MISSING_ONE', '--build-arg', 'EMPTY_ONE'], { HOME: '/h', SET_ONE: 'v', EMPTY_ONE: '' });
    if (c.kind !== 'build') throw new Error('not build');
    const p = planBuild(c.request, { contextDir: '/ctx', privateDir: '/p' });
    const args = p.bud.flatMap((a, i) => (p.bud[i - 1] === '--build-arg' ? [a] : []));
    expect(args).toEqual(['SET_ONE', 'EMPTY_ONE']);
    expect(p.env).toMatchObject({ SET_ONE: 'v', EMPTY_ONE: '' });
    expect(p.env.MISSING_ONE).toBeUndefined();
  });

  it('runs the buildah that preflight found', () => {
    const c = parseCommand(['-d', 'r/a'], { HOME: '/h' });
    if (c.kind !== 'build') throw new Error('not build');
    expect(planBuild(c.request, { contextDir: '/ctx', privateDir: '/p', buildahPath: '/opt/bin/buildah' }).buildah).toBe('/opt/bin/buildah');
    expect(planBuild(c.request, { contextDir: '/ctx', privateDir: '/p' }).buildah).toBe('buildah');
  });

  it('build-arg values go in buildah\'s environment, never in its argv; secret ones are marked for the redactor', () => {
    const p = plan(['-d', 'r/a', '--build-arg', 'API_KEY=sup3rs3cret', '--build-arg', 'V=plainvalue']);
    expect(p.secrets).toEqual(['sup3rs3cret']);
    const argv = planCommands(p).flat().join(' ');
    expect(argv).not.toContain('sup3rs3cret');
    expect(argv).not.toContain('plainvalue');
    expect(p.bud).toEqual(expect.arrayContaining(['--build-arg', 'API_KEY', '--build-arg', 'V']));
    expect(p.env).toMatchObject({ API_KEY: 'sup3rs3cret', V: 'plainvalue' });
  });

  it('names buildah reads itself keep their value in argv; a secret one is refused with a fix', () => {
    const p = plan(['-d', 'r/a', '--build-arg', 'http_proxy=http://proxy:3128', '--build-arg', 'HOME=/x']);
    expect(p.bud).toEqual(expect.arrayContaining(['--build-arg', 'http_proxy=http://proxy:3128', '--build-arg', 'HOME=/x']));
    expect(p.env.HOME).toBe('/home/kimia');
    expect(() => plan(['-d', 'r/a', '--build-arg', 'HTTPS_PROXY=http://u:pw@p', '--secret-arg', 'HTTPS_PROXY'])).toThrow(/Buildah reads HTTPS_PROXY/);
  });

  it('--secret passes id and source (never a value) to buildah', () => {
    const c = parseCommand(['-d', 'r/a', '--secret', 'id=npmrc,src=/s/npmrc', '--secret', 'id=tok,env=NPM_TOKEN'], { HOME: '/h', NPM_TOKEN: 'v4lue' });
    if (c.kind !== 'build') throw new Error('not build');
    const p = planBuild(c.request, { contextDir: '/ctx', privateDir: '/p' });
    expect(p.bud).toEqual(expect.arrayContaining(['--secret', 'id=npmrc,src=/s/npmrc,type=file', '--secret', 'id=tok,env=NPM_TOKEN,type=env']));
    expect(p.bud.join(' ')).not.toContain('v4lue');
  });

  it('secret build args declared in the Dockerfile are masked in the history; the cache repository is then only read', () => {
    const text = 'FROM busybox\nARG NPM_TOKEN\nRUN npm ci\n';
    expect(plan(['-d', 'r/a', '--build-arg', 'NPM_TOKEN=abc123'], text).historyMask).toEqual({ args: [{ name: 'NPM_TOKEN', value: 'abc123' }] });
    // not declared: buildah records nothing, nothing to mask
    expect(plan(['-d', 'r/a', '--build-arg', 'NPM_TOKEN=abc123'], 'FROM busybox\n').historyMask).toBeUndefined();
    // not secret by name, but by --secret-arg
    expect(plan(['-d', 'r/a', '--build-arg', 'CUSTOM=abc123', '--secret-arg', 'CUSTOM'], 'FROM b\nARG CUSTOM=x\n').historyMask?.args.map((a) => a.name)).toEqual(['CUSTOM']);
    const cached = plan(['-d', 'r/a', '--build-arg', 'NPM_TOKEN=abc123', '--cache-repo', 'reg/cache'], text);
    expect(cached.bud).toEqual(expect.arrayContaining(['--cache-from', 'reg/cache']));
    expect(cached.bud).not.toContain('--cache-to');
    expect(cached.warnings.join('\n')).toContain('read but not written');
    const multi = plan(['-d', 'r/a', '--build-arg', 'NPM_TOKEN=abc123', '--custom-platform', 'linux/amd64,linux/arm64'], text);
    expect(multi.bud).toContain('--omit-history');
    expect(multi.historyMask).toBeUndefined();
  });

  it('registry mirrors for docker.io', () => {
    expect(registriesConf({ registryMirrors: ['mirror.local:5000'], insecureRegistries: [] })).toContain('[[registry.mirror]]\nlocation = "mirror.local:5000"');
  });
});

describe('multi-platform plan', () => {
  it('builds a manifest list and pushes it with manifest push --all', () => {
    const p = plan(['-d', 'reg:5000/a:1', '--custom-platform=linux/amd64,linux/arm64', '--oci-layout-path=/o/l', '--digest-file=/d']);
    expect(p.multiPlatform).toBe(true);
    expect(p.prepare.map((a) => a.slice(6, 8))).toEqual([['manifest', 'rm'], ['rmi', '-f']]);
    expect(p.bud).toEqual(expect.arrayContaining(['--manifest', 'reg:5000/a:1', '--platform', 'linux/amd64,linux/arm64']));
    expect(p.bud).not.toContain('--iidfile');
    expect(p.bud).not.toContain('-t');
    expect(p.pushes[0]!.argv).toEqual(expect.arrayContaining(['manifest', 'push', '--all', '--digestfile', '/p/digest-0']));
    expect(p.exports[0]!.argv.slice(-5)).toEqual(['manifest', 'push', '--all', 'reg:5000/a:1', 'oci:/o/l']);
  });
});
