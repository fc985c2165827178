/**
 * Build contexts: Git over http (git http-backend behind basic auth) with branch, revision, token file and user,
 * #ref:subdir and submodules; tar.gz from a file and from an http URL; --context-sub-path. Also the secrets test:
 * nothing kimia prints (text or JSON, debug verbosity) contains the Git token, the registry password or a secret
 * build-arg value.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createReadStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { pushBusyboxImage } from '../harness/images.js';
import { startGitServer, type GitServer } from '../harness/git-server.js';
import { buildKimia, chownTree, ensureSubIds, kimia, workspace, type Workspace } from './kimia-helpers.js';

const TOKEN = 'glpat-GitT0kenValue-777';
let reg: StartedRegistry;
let git: GitServer;
let ws: Workspace;
let base: string;
let repo: { url: string; head: string; commits: Record<string, string> };
let http: Server;
let httpBase: string;
let dockerConfig: string;

beforeAll(async () => {
  await Promise.all([buildKimia(), ensureSubIds()]);
  reg = await startRegistry({ auth: true });
  base = await pushBusyboxImage(reg);
  git = await startGitServer({ token: TOKEN, user: 'oauth2' });
  ws = await workspace('kimia-ctx');
  dockerConfig = await reg.writeDockerConfig(ws.path('docker'));
  const lib = await git.createRepo('lib', { 'lib.txt': 'from submodule\n' });
  repo = await git.createRepo('app', {
    Dockerfile: `FROM ${base}\nCOPY . /src\nRUN grep -q main /src/marker.txt && test -f /src/lib/lib.txt\n`,
    'marker.txt': 'main\n',
    'svc/Dockerfile': `FROM ${base}\nCOPY svc.txt /svc.txt\nRUN grep -q svc /svc.txt\n`,
    'svc/svc.txt': 'svc\n',
  }, {
    submodules: { lib: lib.url },
    branches: { dev: { 'marker.txt': 'dev\n', Dockerfile: `FROM ${base}\nCOPY marker.txt /m\nRUN grep -q dev /m\n` } },
  });
  // tarball contexts: a file and the same file over http
  await ws.write('tarsrc/app/Dockerfile', `FROM ${base}\nCOPY hello.txt /hello.txt\nRUN grep -q tarball /hello.txt\n`);
  await ws.write('tarsrc/app/hello.txt', 'tarball\n');
  const tar = await import('tar');
  await tar.c({ gzip: true, file: ws.path('ctx.tar.gz'), cwd: ws.path('tarsrc') }, ['app']);
  await ws.write('token', `${TOKEN}\n`);
  await chownTree(ws.dir);
  http = createServer((req, res) => {
    if (req.url === '/ctx.tar.gz' || req.url === '/download') {
      res.writeHead(200, { 'Content-Type': 'application/gzip' });
      createReadStream(ws.path('ctx.tar.gz')).pipe(res);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
  await git?.stop();
  await ws?.cleanup();
  await reg?.stop();
});

const common = () => ['--no-push', '--storage-driver=overlay', '--insecure-registry', reg.host];
const env = () => ({ DOCKER_CONFIG: dockerConfig });

describe('Git contexts', () => {
  it('clones with --git-token-file/--git-token-user, including submodules', async () => {
    const r = await kimia(['-c', repo.url, '--git-token-file', ws.path('token'), '--git-token-user=oauth2', ...common()], { home: ws.path('h-git'), env: env() });
    expect(r.exitCode, r.all).toBe(0);
    expect(git.requests.some((q) => q.path.startsWith('/lib.git') && q.authorized)).toBe(true);
  });

  it('--git-branch picks the branch', async () => {
    const r = await kimia(['-c', repo.url, '--git-branch', 'dev', '--git-token-file', ws.path('token'), ...common()], { home: ws.path('h-branch'), env: env() });
    expect(r.exitCode, r.all).toBe(0);
  });

  it('--git-revision picks the commit', async () => {
    const r = await kimia(['-c', repo.url, `--git-revision=${repo.commits.dev}`, '--git-token-file', ws.path('token'), ...common()], { home: ws.path('h-rev'), env: env() });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stderr).toContain(`revision ${repo.commits.dev}`);
  });

  it('#ref:subdir builds a sub-folder of a branch', async () => {
    const r = await kimia(['-c', `${repo.url}#main:svc`, '--git-token-file', ws.path('token'), ...common()], { home: ws.path('h-sub'), env: env() });
    expect(r.exitCode, r.all).toBe(0);
  });

  it('without a token: the guide text "fatal: could not read Username", exit 5, with the token-file fix', async () => {
    const r = await kimia(['-c', repo.url, ...common()], { home: ws.path('h-noauth'), env: env() });
    expect(r.exitCode, r.all).toBe(5);
    expect(r.stderr).toContain('error: fatal: could not read Username');
    expect(r.stderr).toContain('--git-token-file=/secrets/git-token');
  });
});

describe('tarball contexts', () => {
  it('a tar.gz file with --context-sub-path', async () => {
    const r = await kimia(['-c', ws.path('ctx.tar.gz'), '--context-sub-path', 'app', ...common()], { home: ws.path('h-tar'), env: env() });
    expect(r.exitCode, r.all).toBe(0);
  });

  it('an http URL ending in .tar.gz is a tarball, not Git', async () => {
    const r = await kimia(['-c', `${httpBase}/ctx.tar.gz`, '--context-sub-path=app', ...common()], { home: ws.path('h-http'), env: env() });
    expect(r.exitCode, r.all).toBe(0);
  });

  it('an http URL served as application/gzip is a tarball too', async () => {
    const r = await kimia(['-c', `${httpBase}/download`, '--context-sub-path=app', ...common()], { home: ws.path('h-ct'), env: env() });
    expect(r.exitCode, r.all).toBe(0);
  });

  it('a sub-path that leaves the context is refused (exit 2)', async () => {
    const r = await kimia(['-c', ws.path('ctx.tar.gz'), '--context-sub-path', 'app/../../..', ...common()], { home: ws.path('h-esc'), env: env() });
    expect(r.exitCode, r.all).toBe(2);
  });
});

describe('secrets', () => {
  it('no output (text or JSON, debug verbosity, success or failure) holds a secret value', async () => {
    const secretArg = 'npm_SecretBuildArgValue42';
    const password = reg.auth!.password;
    const basic = Buffer.from(`${reg.auth!.username}:${password}`).toString('base64');
    const tokenBasic = Buffer.from(`oauth2:${TOKEN}`).toString('base64');
    const runs = [];
    for (const format of ['text', 'json']) {
      runs.push(await kimia(['-c', repo.url, '--git-token-file', ws.path('token'), '-d', `${reg.host}/secret:1`, '--insecure-registry', reg.host, '--storage-driver=overlay',
        '--build-arg', `NPM_TOKEN=${secretArg}`, '--verbosity=debug', `--log-format=${format}`], { home: ws.path(`h-secret-${format}`), env: env() }));
      // a failing run (missing Dockerfile, exit 2) after the Git fetch: still no secrets
      runs.push(await kimia(['-c', repo.url, '--git-token-file', ws.path('token'), '-f', 'missing.Dockerfile', '-d', `${reg.host}/secret:2`, '--build-arg', `NPM_TOKEN=${secretArg}`,
        '--verbosity=debug', `--log-format=${format}`], { home: ws.path(`h-secret-f-${format}`), env: env() }));
      // the dry-run with env credentials and a secret build-arg
      runs.push(await kimia(['-c', ws.path('tarsrc/app'), '-d', `${reg.host}/secret:3`, '--insecure-registry', reg.host, '--storage-driver=overlay', '--build-arg', `API_KEY=${secretArg}`,
        '--verbosity=debug', `--log-format=${format}`, '--dry-run'], { home: ws.path(`h-secret-d-${format}`), env: { DOCKER_USERNAME: 'u', DOCKER_PASSWORD: password, DOCKER_CONFIG: ws.path('none') } }));
    }
    expect(runs[0]!.exitCode, runs[0]!.all).toBe(0);
    expect(runs[1]!.exitCode, runs[1]!.all).toBe(2);
    expect(runs[2]!.exitCode, runs[2]!.all).toBe(0);
    expect(runs[0]!.stderr).toContain('running buildah');
    for (const r of runs) {
      for (const secret of [TOKEN, tokenBasic, secretArg, password, basic]) expect(r.all).not.toContain(secret);
    }
  });
});
