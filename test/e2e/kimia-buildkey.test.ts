/**
 * Issue 18: an unchanged build is answered from its build key, without `buildah bud`. A `buildah` wrapper first in
 * PATH logs every call, so "no Buildah call" is proven, not inferred from timing. Against an htpasswd registry:
 * the destination is asked for its manifest (HEAD) and pushed again only when it lacks it; digest files are those of
 * the registry. Everything that changes the result (a context file, its mode, a build arg, a secret, the base
 * image, the image gone from the storage) builds; what does not (mtime, an ignored file) does not; --no-build-key,
 * --no-cache and an ADD of a URL always build.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { pushBusyboxImage } from '../harness/images.js';
import { run } from '../../src/core/exec/index.js';
import { BUILD_UID, buildKimia, chownTree, ensureSubIds, kimia, skopeo, workspace, type KimiaRun, type Workspace } from './kimia-helpers.js';

let reg: StartedRegistry;
let base: string;
let ws: Workspace;
let dockerConfig: string;
let wrapperDir: string;
const SECRET = 'npmTokenValue-BuildKey-9911';

beforeAll(async () => {
  await Promise.all([buildKimia(), ensureSubIds()]);
  reg = await startRegistry({ auth: true });
  base = await pushBusyboxImage(reg, 'bk-base');
  ws = await workspace('kimia-buildkey');
  dockerConfig = await reg.writeDockerConfig(ws.path('docker'));
  wrapperDir = ws.path('wrapper');
  await ws.write('wrapper/buildah', `#!/bin/sh\necho "$*" >> ${ws.path('buildah-calls.log')}\nexec /usr/bin/buildah "$@"\n`);
  await chmod(join(wrapperDir, 'buildah'), 0o755);
  await chownTree(ws.dir);
});

afterAll(async () => {
  await ws?.cleanup();
  await reg?.stop();
});

/** buildah verbs called since the last look (bud, push, tag, inspect …) */
async function buildahVerbs(): Promise<string[]> {
  const log = ws.path('buildah-calls.log');
  const text = await readFile(log, 'utf8').catch(() => '');
  await writeFile(log, '');
  return text.split('\n').filter(Boolean).map((l) => {
    const words = l.split(' ');
    // skip the global storage flags (--root X --runroot Y --storage-driver Z)
    let i = 0;
    while (words[i]?.startsWith('--')) i += 2;
    return words[i] ?? '';
  });
}

interface Build extends KimiaRun {
  verbs: string[];
  digest?: string;
}

async function build(name: string, args: string[] = [], env: Record<string, string> = {}): Promise<Build> {
  const dest = `${reg.host}/bk-${name}:1`;
  const r = await kimia(['-c', ws.path(name), '-d', dest, '--cache', '--storage-driver=overlay', '--insecure-registry', reg.host, '--digest-file', ws.path(`${name}.digest`), ...args], {
    home: ws.path(`home-${name}`), env: { DOCKER_CONFIG: dockerConfig, PATH: `${wrapperDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, ...env },
  });
  const digest = await readFile(ws.path(`${name}.digest`), 'utf8').then((s) => s.trim(), () => undefined);
  return { ...r, verbs: await buildahVerbs(), ...(digest ? { digest } : {}) };
}

async function context(name: string, dockerfile: string, files: Record<string, string> = {}): Promise<void> {
  await ws.write(`${name}/Dockerfile`, dockerfile);
  for (const [p, c] of Object.entries(files)) await ws.write(`${name}/${p}`, c);
}

const DOCKERFILE = () => `FROM ${base}\nARG NPM_TOKEN\nCOPY app.txt /app.txt\nRUN test -n "$NPM_TOKEN" && cat /app.txt\n`;

describe('an unchanged build is answered without buildah bud', () => {
  let first: Build;
  beforeAll(async () => {
    await context('app', DOCKERFILE(), { 'app.txt': 'v1\n', '.dockerignore': 'notes/\n', 'notes/todo.txt': 'ignored\n' });
    first = await build('app', ['--build-arg', 'NPM_TOKEN'], { NPM_TOKEN: SECRET });
  });

  it('the first build runs buildah and records its key', async () => {
    expect(first.exitCode, first.all).toBe(0);
    expect(first.verbs).toContain('bud');
    expect(first.verbs).toContain('push');
    expect(first.digest).toBe((await reg.manifest('bk-app', '1')).digest);
  });

  it('the same build again: no buildah call at all, the same digest file, and the unchanged line', async () => {
    const again = await build('app', ['--build-arg', 'NPM_TOKEN'], { NPM_TOKEN: SECRET });
    expect(again.exitCode, again.all).toBe(0);
    expect(again.verbs, again.all).toEqual([]);
    expect(again.digest).toBe(first.digest);
    expect(again.stderr).toMatch(new RegExp(`unchanged: build key [0-9a-f]{12} matches ${first.digest}, built \\d{4}-\\d\\d-\\d\\dT`));
    expect(again.stderr).toContain(`already holds ${first.digest}`);
    // the preflight it did not wait for still cleaned up after its probes
    expect((await readdir(ws.path('home-app', '.local', 'share', 'containers'))).filter((n) => n.startsWith('.kimia'))).toEqual([]);
  });

  it('a touched file (mtime only) and a changed ignored file keep the key', async () => {
    await utimes(ws.path('app/app.txt'), new Date(2001, 0, 1), new Date(2001, 0, 1));
    await ws.write('app/notes/todo.txt', 'still ignored, changed\n');
    const again = await build('app', ['--build-arg', 'NPM_TOKEN'], { NPM_TOKEN: SECRET });
    expect(again.exitCode, again.all).toBe(0);
    expect(again.verbs, again.all).toEqual([]);
    expect(again.digest).toBe(first.digest);
  });

  it('a comment or a blank line added to an ignored Dockerfile keeps the key (the parsed Dockerfile is hashed)', async () => {
    // a Dockerfile inside the context is a context file (COPY . copies it) unless .dockerignore names it
    const df = `FROM ${base}\nCOPY app.txt /app.txt\n`;
    await context('comment', df, { 'app.txt': 'c\n', '.dockerignore': 'Dockerfile\n' });
    const built = await build('comment');
    expect(built.exitCode, built.all).toBe(0);
    expect(built.verbs).toContain('bud');
    await ws.write('comment/Dockerfile', `# built by CI\n\n${df.replace('COPY', '# the app\nCOPY')}\n`);
    const again = await build('comment');
    expect(again.exitCode, again.all).toBe(0);
    expect(again.verbs, again.all).toEqual([]);
    expect(again.digest).toBe(built.digest);
    await ws.write('comment/Dockerfile', df.replace('COPY', 'LABEL x=1\nCOPY'));
    expect((await build('comment')).verbs).toContain('bud');
  });

  it('the secret build arg is in no record, key or cache file (only its salted hash)', async () => {
    const dir = ws.path('home-app', '.local', 'share', 'containers', 'kimia-build-keys');
    const sub = async (name: string) => (await readdir(join(dir, name))).map((f) => join(dir, name, f));
    const files = [...(await readdir(dir)).map((f) => join(dir, f)), ...(await sub('records')), ...(await sub('local'))];
    expect(files.some((f) => f.includes('records/'))).toBe(true);
    expect(files.some((f) => f.includes('local/'))).toBe(true);
    for (const f of files.filter((x) => !x.endsWith('/records') && !x.endsWith('/local'))) {
      const text = await readFile(f, 'utf8');
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(Buffer.from(SECRET).toString('base64'));
    }
    const st = await run('stat', ['-c', '%a %u', join(dir, 'salt')]);
    expect(st.stdout.trim()).toBe(`600 ${BUILD_UID}`);
  });

  it('a destination that lost the manifest gets it pushed again (buildah push, no bud)', async () => {
    await skopeo(['delete', `docker://${reg.host}/bk-app:1`], { creds: reg.auth! });
    const again = await build('app', ['--build-arg', 'NPM_TOKEN'], { NPM_TOKEN: SECRET });
    expect(again.exitCode, again.all).toBe(0);
    expect(again.verbs).not.toContain('bud');
    expect(again.verbs).toContain('push');
    expect(again.digest).toBe((await reg.manifest('bk-app', '1')).digest);
    expect(again.stderr).toContain('unchanged: build key');
  });

  it('--no-build-key and --no-cache always build', async () => {
    const forced = await build('app', ['--build-arg', 'NPM_TOKEN', '--no-build-key'], { NPM_TOKEN: SECRET });
    expect(forced.exitCode, forced.all).toBe(0);
    expect(forced.verbs).toContain('bud');
    const nocache = await build('app', ['--build-arg', 'NPM_TOKEN', '--no-cache'], { NPM_TOKEN: SECRET });
    expect(nocache.exitCode, nocache.all).toBe(0);
    expect(nocache.verbs).toContain('bud');
  });

  it('a changed secret value builds (buildah runs; its layer cache decides what reruns)', async () => {
    const changed = await build('app', ['--build-arg', 'NPM_TOKEN'], { NPM_TOKEN: `${SECRET}-rotated` });
    expect(changed.exitCode, changed.all).toBe(0);
    expect(changed.verbs).toContain('bud');
  });

  it('a chmod of a context file builds', async () => {
    await chmod(ws.path('app/app.txt'), 0o600);
    const changed = await build('app', ['--build-arg', 'NPM_TOKEN'], { NPM_TOKEN: `${SECRET}-rotated` });
    expect(changed.exitCode, changed.all).toBe(0);
    expect(changed.verbs).toContain('bud');
  });

  it('a one-line change builds and pushes a new digest; then that one is unchanged', async () => {
    await ws.write('app/app.txt', 'v2\n');
    const changed = await build('app', ['--build-arg', 'NPM_TOKEN'], { NPM_TOKEN: SECRET });
    expect(changed.exitCode, changed.all).toBe(0);
    expect(changed.verbs).toContain('bud');
    expect(changed.digest).not.toBe(first.digest);
    const again = await build('app', ['--build-arg', 'NPM_TOKEN'], { NPM_TOKEN: SECRET });
    expect(again.verbs, again.all).toEqual([]);
    expect(again.digest).toBe(changed.digest);
  });

  it('the image removed from the storage builds', async () => {
    const home = ws.path('home-app');
    await run('setpriv', ['--reuid', String(BUILD_UID), '--regid', String(BUILD_UID), '--init-groups', 'env', `HOME=${home}`, 'buildah', '--root', `${home}/.local/share/containers/storage`,
      '--runroot', `${home}/.local/share/containers/run`, '--storage-driver', 'overlay', 'rmi', '-f', `${reg.host}/bk-app:1`]);
    await buildahVerbs();
    const again = await build('app', ['--build-arg', 'NPM_TOKEN'], { NPM_TOKEN: SECRET });
    expect(again.exitCode, again.all).toBe(0);
    expect(again.verbs).toContain('bud');
  });
});

describe('the format the plan decides is in the key', () => {
  it('HEALTHCHECK builds in Docker format by default; --format=oci then builds again (OCI), and each is unchanged after', async () => {
    await context('health', `FROM ${base}\nHEALTHCHECK CMD true\nRUN echo x > /x\n`);
    const docker = await build('health');
    expect(docker.exitCode, docker.all).toBe(0);
    expect(docker.verbs).toContain('bud');
    expect((await reg.manifest('bk-health', '1')).contentType).toContain('docker');
    expect((await build('health')).verbs).toEqual([]);
    const oci = await build('health', ['--format=oci']);
    expect(oci.exitCode, oci.all).toBe(0);
    expect(oci.verbs).toContain('bud');
    expect((await reg.manifest('bk-health', '1')).contentType).toContain('oci');
    expect((await build('health', ['--format=oci'])).verbs).toEqual([]);
  });
});

describe('what the key cannot prove builds', () => {
  it('a new base image behind the same tag builds', async () => {
    const moving = await pushBusyboxImage(reg, 'bk-moving');
    await context('moving', `FROM ${moving}\nRUN echo one > /one\n`);
    expect((await build('moving')).verbs).toContain('bud');
    expect((await build('moving')).verbs).toEqual([]);
    // the tag now names another manifest: the same image copied in the other manifest format
    const before = await reg.manifest('bk-moving', 'latest');
    const format = before.contentType.includes('oci') ? 'v2s2' : 'oci';
    await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', `${reg.auth!.username}:${reg.auth!.password}`,
      '--dest-creds', `${reg.auth!.username}:${reg.auth!.password}`, '--format', format, `docker://${moving}`, `docker://${moving}`]);
    expect((await reg.manifest('bk-moving', 'latest')).digest).not.toBe(before.digest);
    const rebuilt = await build('moving');
    expect(rebuilt.exitCode, rebuilt.all).toBe(0);
    expect(rebuilt.verbs).toContain('bud');
  });

  it('a changed build starts buildah without waiting for the registry; a revert to a recorded content is answered unchanged', async () => {
    await context('revert', `FROM ${base}\nCOPY f.txt /f.txt\n`, { 'f.txt': 'A\n' });
    const a = await build('revert', ['-v', 'debug']);
    expect(a.exitCode, a.all).toBe(0);
    expect(a.verbs).toContain('bud');
    expect(a.stderr).toContain('Buildah starts without waiting for the registry');
    await ws.write('revert/f.txt', 'B\n');
    const b = await build('revert', ['-v', 'debug']);
    expect(b.exitCode, b.all).toBe(0);
    expect(b.verbs).toContain('bud');
    expect(b.stderr).toContain('Buildah starts without waiting for the registry');
    expect(b.digest).not.toBe(a.digest);
    // the key finished beside the build was recorded: B again is unchanged
    expect((await build('revert')).verbs).toEqual([]);
    // back to A: its record (and the marker of its local key) is still there, so no bud; the destination gets A again
    await ws.write('revert/f.txt', 'A\n');
    const back = await build('revert', ['-v', 'debug']);
    expect(back.exitCode, back.all).toBe(0);
    expect(back.verbs).not.toContain('bud');
    expect(back.stderr).not.toContain('without waiting for the registry');
    expect(back.stderr).toContain('unchanged: build key');
    expect(back.digest).toBe(a.digest);
    expect((await reg.manifest('bk-revert', '1')).digest).toBe(a.digest);
  });

  it('ADD of a URL always builds, and says why with -v debug', async () => {
    const http = createServer((_req, res) => res.end('remote content\n'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    try {
      await context('addurl', `FROM ${base}\nADD http://127.0.0.1:${(http.address() as AddressInfo).port}/file.txt /file.txt\n`);
      expect((await build('addurl')).exitCode).toBe(0);
      const again = await build('addurl', ['-v', 'debug']);
      expect(again.exitCode, again.all).toBe(0);
      expect(again.verbs).toContain('bud');
      expect(again.stderr).toContain('build key not used: ADD at line 2 fetches a URL');
    } finally {
      await new Promise<void>((r) => http.close(() => r()));
    }
  });
});
