/**
 * A Git smart-HTTP server for tests: `git http-backend` behind a small node:http CGI bridge on 127.0.0.1, requiring
 * HTTP basic auth (any user name, the given token as password). Repositories live in a temp dir.
 * `token: undefined` serves without auth (a public server); `redirectTo` answers every (authorized) request with a
 * 302 to the same path on another base URL. Every request's raw Authorization header is recorded, so a test can
 * prove which server saw which credential.
 *
 *   await using git = await startGitServer({ token: 's3cret' });
 *   const url = await git.createRepo('app', { 'Dockerfile': 'FROM …' }, { branches: { dev: {...} } });
 *   // url: http://127.0.0.1:PORT/app.git
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { run } from '../../src/core/exec/index.js';
import { tempDir } from '../../src/core/fsx/index.js';

export interface GitServer extends AsyncDisposable {
  url: string;
  root: string;
  /** requests seen, with whether they carried valid credentials and the raw Authorization header */
  requests: { path: string; authorized: boolean; authorization?: string }[];
  /** did any request carry `secret` as its basic-auth password or anywhere in its Authorization header? */
  sawSecret(secret: string): boolean;
  createRepo(name: string, files: Record<string, string>, opts?: { branches?: Record<string, Record<string, string>>; submodules?: Record<string, string | { url: string; dir: string }>; gitlinks?: Record<string, string> }): Promise<{ url: string; head: string; commits: Record<string, string>; dir: string }>;
  stop(): Promise<void>;
}

const GIT_ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent' };

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function startGitServer(opts: { token: string | undefined; user?: string; redirectTo?: string }): Promise<GitServer> {
  const root = await tempDir('kimia-git');
  const requests: GitServer['requests'] = [];
  const expected = opts.token;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const header = req.headers.authorization ?? '';
    const decoded = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString('utf8') : '';
    const password = decoded.slice(decoded.indexOf(':') + 1);
    const authorized = expected === undefined || (decoded.includes(':') && password === expected && (!opts.user || decoded.startsWith(`${opts.user}:`)));
    requests.push({ path: url.pathname, authorized, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    if (!authorized) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' });
      res.end('unauthorized');
      return;
    }
    if (opts.redirectTo) {
      res.writeHead(302, { Location: `${opts.redirectTo}${url.pathname}${url.search}` });
      res.end();
      return;
    }
    const body = await readBody(req);
    const r = await run('git', ['http-backend'], {
      input: body,
      encoding: 'buffer',
      reject: false,
      timeoutMs: 60_000,
      extendEnv: false,
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        CONTENT_LENGTH: String(body.length),
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_USER: decoded.split(':')[0],
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    const sep = r.stdout.indexOf('\r\n\r\n');
    const headEnd = sep >= 0 ? sep : r.stdout.indexOf('\n\n');
    const headText = r.stdout.subarray(0, headEnd).toString('utf8');
    const payload = r.stdout.subarray(headEnd + (sep >= 0 ? 4 : 2));
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of headText.split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      const k = line.slice(0, i).trim();
      const v = line.slice(i + 1).trim();
      if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
      else headers[k] = v;
    }
    res.writeHead(status, headers);
    res.end(payload);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;

  const git = (args: string[], cwd: string) => run('git', args, { cwd, env: GIT_ENV });
  async function writeTree(dir: string, files: Record<string, string>) {
    for (const [p, c] of Object.entries(files)) {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), c);
    }
  }

  const server_: GitServer = {
    url: base,
    root,
    requests,
    sawSecret(secret) {
      return requests.some((r) => {
        const h = r.authorization ?? '';
        const decoded = h.startsWith('Basic ') ? Buffer.from(h.slice(6), 'base64').toString('utf8') : '';
        return h.includes(secret) || decoded.includes(secret);
      });
    },
    async createRepo(name, files, o = {}) {
      const work = join(root, `.work-${name}`);
      await mkdir(work, { recursive: true });
      await git(['init', '-q', '-b', 'main'], work);
      await writeTree(work, files);
      for (const [path, sub] of Object.entries(o.submodules ?? {})) {
        if (typeof sub !== 'string') {
          // a repository of another server that needs credentials: add it from its folder, then name its URL
          await git(['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub.dir, path], work);
          await git(['config', '-f', '.gitmodules', `submodule.${path}.url`, sub.url], work);
          continue;
        }
        const subUrl = sub;
        await git(['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', subUrl, path], work).catch(async () => {
          // the submodule lives on this same server (needs auth): clone it from disk, then point .gitmodules at the URL
          const repoName = new URL(subUrl).pathname.slice(1);
          await git(['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', join(root, repoName), path], work);
          await git(['config', '-f', '.gitmodules', `submodule.${path}.url`, subUrl], work);
        });
      }
      await git(['add', '-A'], work);
      // raw submodule entries (any commit id, any .gitmodules text the caller wrote): what a hostile repository holds
      for (const [path, commit] of Object.entries(o.gitlinks ?? {})) await git(['update-index', '--add', '--cacheinfo', `160000,${commit},${path}`], work);
      await git(['commit', '-q', '-m', 'main'], work);
      const commits: Record<string, string> = { main: (await git(['rev-parse', 'HEAD'], work)).stdout.trim() };
      for (const [branch, extra] of Object.entries(o.branches ?? {})) {
        await git(['checkout', '-q', '-b', branch, 'main'], work);
        await writeTree(work, extra);
        await git(['add', '-A'], work);
        await git(['commit', '-q', '-m', branch], work);
        commits[branch] = (await git(['rev-parse', 'HEAD'], work)).stdout.trim();
        await git(['checkout', '-q', 'main'], work);
      }
      const bare = join(root, `${name}.git`);
      await git(['clone', '-q', '--bare', work, bare], root);
      await git(['config', 'http.receivepack', 'false'], bare);
      await git(['config', 'uploadpack.allowAnySHA1InWant', 'true'], bare);
      await rm(work, { recursive: true, force: true });
      return { url: `${base}/${name}.git`, head: commits.main!, commits, dir: bare };
    },
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await rm(root, { recursive: true, force: true });
    },
    async [Symbol.asyncDispose]() {
      await server_.stop();
    },
  };
  return server_;
}
