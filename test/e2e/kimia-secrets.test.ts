/**
 * Issue 12, kimia's part: what a repository author and a registry reader could learn of the CI's secrets.
 * - the --git-token-file token goes only to the context's own origin: a submodule on another server (another port,
 *   so another origin) and a redirect to another origin never receive it, and the user is told;
 * - build-arg values never appear in any process's argv while a build runs (/proc/<pid>/cmdline is world-readable);
 * - the value of a build arg that looks secret (by name, or named by --secret-arg) is not in the pushed image's config
 *   or history; `--secret id=…,src=…|env=…` reaches `RUN --mount=type=secret` and stays out of the image too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { pushBusyboxImage } from '../harness/images.js';
import { startGitServer, type GitServer } from '../harness/git-server.js';
import { buildKimia, ensureSubIds, kimia, skopeo, workspace, type KimiaRun, type Workspace } from './kimia-helpers.js';

const TOKEN = 'glpat-ContextOriginOnly-4242';
const OTHER_TOKEN = 'glpat-OtherServersOwn-1717';

let reg: StartedRegistry;
let base: string;
let ws: Workspace;
const servers: GitServer[] = [];

beforeAll(async () => {
  await Promise.all([buildKimia(), ensureSubIds()]);
  reg = await startRegistry();
  base = await pushBusyboxImage(reg);
  ws = await workspace('kimia-secrets');
  await ws.write('token', `${TOKEN}\n`);
});

afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
  await ws?.cleanup();
  await reg?.stop();
});

async function gitServer(opts: Parameters<typeof startGitServer>[0]): Promise<GitServer> {
  const s = await startGitServer(opts);
  servers.push(s);
  return s;
}

const buildFlags = () => ['--no-push', '--storage-driver=overlay', '--insecure-registry', reg.host];
const withToken = () => ['--git-token-file', ws.path('token'), '--git-token-user=oauth2'];

describe('the Git token goes to the context origin only', () => {
  it('a submodule on another server that asks for credentials never receives the token; kimia names the host', async () => {
    const context = await gitServer({ token: TOKEN, user: 'oauth2' });
    const other = await gitServer({ token: OTHER_TOKEN });
    const lib = await other.createRepo('lib', { 'lib.txt': 'elsewhere\n' });
    const app = await context.createRepo('app', { Dockerfile: `FROM ${base}\nCOPY . /src\n` }, { submodules: { lib: { url: lib.url, dir: lib.dir } } });
    const r = await kimia(['-c', app.url, ...withToken(), ...buildFlags()], { home: ws.path('h-sub-auth') });
    // the other server wants its own credentials, which kimia does not have: the clone fails as unauthenticated
    expect(r.exitCode, r.all).toBe(5);
    expect(other.requests.length, 'the submodule server was asked').toBeGreaterThan(0);
    expect(other.sawSecret(TOKEN)).toBe(false);
    expect(context.requests.some((q) => q.authorized)).toBe(true);
    expect(r.stderr).toContain(new URL(other.url).host);
    expect(r.stderr).toMatch(/not sent|without the token/);
  });

  it('a public submodule on another server is cloned without any credentials, with a warning; the context origin keeps its token', async () => {
    const context = await gitServer({ token: TOKEN, user: 'oauth2' });
    const other = await gitServer({ token: undefined });
    const same = await context.createRepo('same', { 'same.txt': 'same origin\n' });
    const lib = await other.createRepo('publib', { 'lib.txt': 'public elsewhere\n' });
    const app = await context.createRepo('app', {
      Dockerfile: `FROM ${base}\nCOPY . /src\nRUN grep -q 'public elsewhere' /src/lib/lib.txt && grep -q 'same origin' /src/same/same.txt\n`,
    }, { submodules: { lib: lib.url, same: same.url } });
    const r = await kimia(['-c', app.url, ...withToken(), ...buildFlags()], { home: ws.path('h-sub-public') });
    expect(r.exitCode, r.all).toBe(0);
    expect(other.requests.length).toBeGreaterThan(0);
    expect(other.requests.filter((q) => q.authorization !== undefined)).toEqual([]);
    // the same-origin submodule needed (and got) the token
    expect(context.requests.some((q) => q.path.startsWith('/same.git') && q.authorized)).toBe(true);
    expect(r.stderr).toMatch(new RegExp(`warning: .*submodule lib .*${new URL(other.url).host.replace(/\./g, '\\.')}`));
  });

  it('a redirect from the context origin to another origin carries no token', async () => {
    const elsewhere = await gitServer({ token: undefined });
    await elsewhere.createRepo('moved', { Dockerfile: `FROM ${base}\nCOPY . /src\n` });
    // the context server asks for the token first, then (authorized) redirects to the other origin
    const context = await gitServer({ token: TOKEN, user: 'oauth2', redirectTo: elsewhere.url });
    const r = await kimia(['-c', `${context.url}/moved.git`, ...withToken(), ...buildFlags()], { home: ws.path('h-redirect') });
    expect(context.requests.some((q) => q.authorized), 'the context origin got the token').toBe(true);
    expect(elsewhere.requests.length, `the redirect was followed:\n${r.all}`).toBeGreaterThan(0);
    expect(elsewhere.sawSecret(TOKEN)).toBe(false);
    expect(elsewhere.requests.filter((q) => q.authorization !== undefined)).toEqual([]);
  });
});

/** A tar.gz written entry by entry, names as given (what a hostile tarball holds: `..`, absolute paths, symlinks). */
async function rawTarGz(file: string, entries: { path: string; type: 'File' | 'SymbolicLink'; content?: string; linkpath?: string }[]): Promise<void> {
  const tar = await import('tar');
  const { gzipSync } = await import('node:zlib');
  const { writeFile } = await import('node:fs/promises');
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.content ?? '');
    const header = new tar.Header({ path: e.path, type: e.type, mode: 0o644, size: e.type === 'File' ? data.length : 0, mtime: new Date(0), ...(e.linkpath ? { linkpath: e.linkpath } : {}) });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (e.type === 'File') blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  await writeFile(file, gzipSync(Buffer.concat(blocks)));
}

describe('what a context can make kimia do', () => {
  it('a tarball with ../, absolute and through-a-symlink entries writes nothing outside the context', async () => {
    const outside = ws.path('tar-outside');
    await ws.write('tar-outside/.keep', '');
    const depth = '../'.repeat(12);
    await rawTarGz(ws.path('hostile.tar.gz'), [
      { path: 'Dockerfile', type: 'File', content: `FROM ${base}\nCOPY . /ctx\n` },
      { path: `${depth}${outside.slice(1)}/dotdot.txt`, type: 'File', content: 'escaped with ..\n' },
      { path: `${outside}/absolute.txt`, type: 'File', content: 'escaped as an absolute path\n' },
      { path: 'link', type: 'SymbolicLink', linkpath: outside },
      { path: 'link/through.txt', type: 'File', content: 'escaped through a symlink\n' },
    ]);
    await ws.write('tar-tmp/.keep', '');
    const r = await kimia(['-c', ws.path('hostile.tar.gz'), ...buildFlags()], { home: ws.path('h-tar'), env: { TMPDIR: ws.path('tar-tmp') } });
    expect(await readdir(outside)).toEqual(['.keep']);
    // and its private folder is gone, whatever the archive held (strict extraction used to race the clean-up)
    // (Buildah keeps its own runtime folders there when XDG_RUNTIME_DIR is unset: not kimia's)
    expect((await readdir(ws.path('tar-tmp'))).filter((n) => n.startsWith('kimia'))).toEqual([]);
    // kimia either built what stayed inside or refused the archive; it never wrote outside
    expect([0, 3], r.all).toContain(r.exitCode);
  });


  it('.gitmodules naming ext:: (a command) or file:// (the pod\'s own files) runs nothing and reads nothing', async () => {
    const context = await gitServer({ token: TOKEN, user: 'oauth2' });
    const marker = ws.path('ext-ran');
    for (const [name, url] of [['ext', `ext::sh -c touch% ${marker}`], ['file', `file://${ws.path('args')}`]] as const) {
      const app = await context.createRepo(`hostile-${name}`, {
        Dockerfile: `FROM ${base}\n`,
        '.gitmodules': `[submodule "sub"]\n\tpath = sub\n\turl = ${url}\n`,
      }, { gitlinks: { sub: '0123456789abcdef0123456789abcdef01234567' } });
      const r = await kimia(['-c', app.url, ...withToken(), ...buildFlags()], { home: ws.path(`h-${name}`) });
      expect(r.exitCode, r.all).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`transport '${name}' not allowed`));
    }
    await expect(readFile(marker)).rejects.toThrow();
  });
});

/** Every process's argv (NUL-separated, joined with spaces), read from /proc (the world-readable view). */
async function allCommandLines(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd) out.push(cmd.split('\0').join(' '));
  }
  return out;
}

describe('build-arg values', () => {
  const FROM_ARGV = 'apiTokenValue-FromKimiaArgv-31';
  const FROM_ENV = 'dbPasswordValue-FromEnv-32';
  const PLAIN = 'plainLookingValue-33';
  const MARKED = 'markedBySecretArg-34';
  const FILE_SECRET = 'fileSecretValue-35';
  const ENV_SECRET = 'envSecretValue-36';
  const values = [FROM_ARGV, FROM_ENV, PLAIN, MARKED, FILE_SECRET, ENV_SECRET];
  let run: KimiaRun;
  let seen: { buildah: boolean; sleep: boolean; leaked: string[] };
  const dest = () => `${reg.host}/secret-args:1`;

  beforeAll(async () => {
    await ws.write('args/Dockerfile', `FROM ${base}
ARG API_TOKEN
ARG DB_PASSWORD
ARG PLAIN
ARG CUSTOM
RUN test "\${#API_TOKEN}" = ${FROM_ARGV.length} && test "\${#DB_PASSWORD}" = ${FROM_ENV.length} && test "\${#PLAIN}" = ${PLAIN.length} && test "\${#CUSTOM}" = ${MARKED.length}
RUN --mount=type=secret,id=npmrc --mount=type=secret,id=envsecret test "$(cat /run/secrets/npmrc | wc -c)" -eq ${FILE_SECRET.length} && test "$(cat /run/secrets/envsecret | wc -c)" -eq ${ENV_SECRET.length}
RUN sleep 6.5
RUN echo done > /done
`);
    await ws.write('args/secret.txt', FILE_SECRET);
    seen = { buildah: false, sleep: false, leaked: [] };
    const started = kimia(['-c', ws.path('args'), '-d', dest(), '--insecure-registry', reg.host, '--storage-driver=overlay', '--cache',
      '--build-arg', `API_TOKEN=${FROM_ARGV}`, '--build-arg', 'DB_PASSWORD', '--build-arg', 'PLAIN', '--build-arg', `CUSTOM=${MARKED}`, '--secret-arg', 'CUSTOM',
      '--secret', `id=npmrc,src=${ws.path('args/secret.txt')}`, '--secret', 'id=envsecret,env=NPM_ENV_SECRET', '--verbosity=debug'],
    { home: ws.path('h-args'), env: { DB_PASSWORD: FROM_ENV, PLAIN, NPM_ENV_SECRET: ENV_SECRET } });
    let done = false;
    void started.finally(() => { done = true; });
    // sample every process's argv until the build ends; the RUN sleep guarantees samples while buildah runs. From
    // the moment buildah runs: kimia itself had API_TOKEN=… on its own command line (the documented window between
    // exec and kimia's rewrite of its argv, before anything else starts), so it is watched from then on too.
    while (!done) {
      const cmds = await allCommandLines();
      if (cmds.some((cmd) => /\bbuildah\b.* bud /.test(cmd))) seen.buildah = true;
      for (const cmd of cmds) {
        if (cmd.includes('sleep 6.5')) seen.sleep = true;
        if (seen.buildah) for (const v of values) if (cmd.includes(v)) seen.leaked.push(`${v} in: ${cmd}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    run = await started;
  }, 300_000);

  it('the build succeeds with every value available to RUN', () => {
    expect(run.exitCode, run.all).toBe(0);
  });

  it('no process argv holds a value while the build runs', () => {
    expect(seen.buildah && seen.sleep, `the sampler saw buildah and the RUN step: ${JSON.stringify(seen)}`).toBe(true);
    expect(seen.leaked).toEqual([]);
  });

  it('no output holds a secret value (the plain-looking value is passed without argv too)', () => {
    for (const v of [FROM_ARGV, FROM_ENV, MARKED, FILE_SECRET, ENV_SECRET]) expect(run.all).not.toContain(v);
  });

  it('the pushed config and history hold no secret value; the history names the masked arguments', async () => {
    const raw = await skopeo(['inspect', '--config', '--raw', `docker://${dest()}`]);
    for (const v of [FROM_ARGV, FROM_ENV, MARKED, FILE_SECRET, ENV_SECRET]) expect(raw).not.toContain(v);
    const config = JSON.parse(raw) as { history?: { created_by?: string }[] };
    const runs = (config.history ?? []).map((h) => h.created_by ?? '').filter((c) => c.includes('test "${#API_TOKEN}"'));
    expect(runs.length).toBe(1);
    expect(runs[0]).toContain('API_TOKEN=***');
    expect(runs[0]).toContain('CUSTOM=***');
    // a value that does not look secret stays in the history, as docker and buildah record it
    expect(runs[0]).toContain(`PLAIN=${PLAIN}`);
  });

  it('an unchanged rebuild is still a full cache hit (masking the pushed history does not defeat the layer cache)', async () => {
    const again = await kimia(['-c', ws.path('args'), '-d', dest(), '--insecure-registry', reg.host, '--storage-driver=overlay', '--cache', '--no-build-key',
      '--build-arg', `API_TOKEN=${FROM_ARGV}`, '--build-arg', 'DB_PASSWORD', '--build-arg', 'PLAIN', '--build-arg', `CUSTOM=${MARKED}`, '--secret-arg', 'CUSTOM',
      '--secret', `id=npmrc,src=${ws.path('args/secret.txt')}`, '--secret', 'id=envsecret,env=NPM_ENV_SECRET', '--log-format=json'],
    { home: ws.path('h-args'), env: { DB_PASSWORD: FROM_ENV, PLAIN, NPM_ENV_SECRET: ENV_SECRET } });
    expect(again.exitCode, again.all).toBe(0);
    const done = again.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event?: string; cacheMisses?: number }).find((e) => e.event === 'built');
    expect(done?.cacheMisses).toBe(0);
    const raw = await skopeo(['inspect', '--config', '--raw', `docker://${dest()}`]);
    for (const v of [FROM_ARGV, FROM_ENV, MARKED, FILE_SECRET, ENV_SECRET]) expect(raw).not.toContain(v);
  }, 300_000);

  it('the docker image format is masked alike, with every destination and the tarball export', async () => {
    await ws.write('docker/Dockerfile', `FROM ${base}\nARG NPM_TOKEN\nRUN test -n "$NPM_TOKEN"\nHEALTHCHECK CMD true\n`);
    const dests = [`${reg.host}/secret-docker:1`, `${reg.host}/secret-docker:2`];
    const r = await kimia(['-c', ws.path('docker'), '-d', dests[0]!, '-d', dests[1]!, '--insecure-registry', reg.host, '--storage-driver=overlay', '--format=docker',
      '--build-arg', 'NPM_TOKEN', '--tar-path', ws.path('docker.tar')], { home: ws.path('h-docker'), env: { NPM_TOKEN: FROM_ENV } });
    expect(r.exitCode, r.all).toBe(0);
    for (const d of dests) {
      const raw = await skopeo(['inspect', '--config', '--raw', `docker://${d}`]);
      expect(raw).toContain('NPM_TOKEN=***');
      expect(raw).toContain('Healthcheck');
      expect(raw).not.toContain(FROM_ENV);
    }
    const tarConfig = await skopeo(['inspect', '--config', '--raw', `docker-archive:${ws.path('docker.tar')}`]);
    expect(tarConfig).toContain('NPM_TOKEN=***');
    expect(tarConfig).not.toContain(FROM_ENV);
  }, 300_000);

  it('a secret build arg copied into the image config (ENV) refuses the push with the fix', async () => {
    await ws.write('envcopy/Dockerfile', `FROM ${base}\nARG API_TOKEN\nENV TOKEN_COPY=$API_TOKEN\nRUN true\n`);
    const r = await kimia(['-c', ws.path('envcopy'), '-d', `${reg.host}/secret-envcopy:1`, '--insecure-registry', reg.host, '--storage-driver=overlay',
      '--build-arg', 'API_TOKEN'], { home: ws.path('h-envcopy'), env: { API_TOKEN: FROM_ENV } });
    expect(r.exitCode, r.all).toBe(3);
    expect(r.stderr).toContain('API_TOKEN');
    expect(r.stderr).toContain('--mount=type=secret');
    expect(r.all).not.toContain(FROM_ENV);
    const tags = await skopeo(['list-tags', `docker://${reg.host}/secret-envcopy`]).catch(() => '');
    expect(tags).not.toContain('"1"');
  }, 300_000);
});
