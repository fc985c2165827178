/**
 * Fetch a classified context into a local folder: Git through the git CLI (the token comes from a credential helper
 * that answers only for the context's origin, see git-auth.ts; never in a URL or an argv), tarballs from a file or an
 * http(s) URL.
 */
import { mkdir, readFile, realpath, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { run, ProcessError } from '../../core/exec/index.js';
import { globalRedactor } from '../../core/redact.js';
import type { Log } from '../log.js';
import type { BuildRequest } from '../cli/request.js';
import { fail } from '../errors.js';
import { classifyContext, safeUrl, staysInside, type ContextSource } from './classify.js';
import { foreignSubmodules, gitAuthEnv, gitOrigin, originText } from './git-auth.js';

export interface FetchedContext {
  dir: string;
  source: ContextSource['kind'];
  description: string;
}

/** `signal` (SIGTERM/SIGINT) stops a clone or a download under way, so the private folder can be removed at once. */
export async function fetchContext(request: BuildRequest, workDir: string, log: Log, signal?: AbortSignal): Promise<FetchedContext> {
  let source = classifyContext(request.context);
  let dir: string;
  if (source.kind === 'http') {
    const contentType = await probeContentType(source.url);
    source = /gzip|x-tar|octet-stream/.test(contentType) ? { kind: 'tar-url', url: source.url } : classifyAsGit(source.url);
  }
  switch (source.kind) {
    case 'unsupported':
      throw fail('BAD_CONTEXT', { context: request.context, reason: `the ${source.scheme}:// scheme is not supported`, hint: 'download the archive first and pass --context=tar://FILE.tar.gz, or use a Git or https URL' });
    case 'dir': {
      dir = source.path;
      const st = await stat(dir).catch(() => undefined);
      if (!st?.isDirectory()) throw fail('BAD_CONTEXT', { context: request.context, reason: 'not a folder', hint: 'pass --context=DIR of an existing folder' });
      break;
    }
    case 'tar-file':
      dir = join(workDir, 'context');
      await extractTarball(source.path, dir, request.context);
      break;
    case 'tar-url': {
      dir = join(workDir, 'context');
      const file = join(workDir, 'context.tar.gz');
      await download(source.url, file, signal);
      await extractTarball(file, dir, safeUrl(source.url));
      break;
    }
    case 'git':
      dir = join(workDir, 'git');
      await cloneGit(source, request, dir, log, signal);
      if (source.subdir) dir = await inside(dir, source.subdir, request.context);
      break;
    default:
      throw fail('BAD_CONTEXT', { context: request.context, reason: 'unrecognised context', hint: 'pass a folder, Git URL or tar.gz' });
  }
  if (request.contextSubPath) dir = await inside(dir, request.contextSubPath, request.context);
  return { dir, source: source.kind, description: source.kind === 'git' || source.kind === 'tar-url' ? safeUrl(source.url) : request.context };
}

function classifyAsGit(url: string): ContextSource {
  return { kind: 'git', url };
}

async function inside(base: string, sub: string, context: string): Promise<string> {
  if (!staysInside(sub)) throw fail('BAD_CONTEXT', { context, reason: `sub-path "${sub}" leaves the context`, hint: 'use a path inside the context' });
  const full = join(base, sub);
  const [realBase, realFull] = await Promise.all([realpath(base), realpath(full).catch(() => undefined)]);
  if (!realFull) throw fail('BAD_CONTEXT', { context, reason: `sub-path "${sub}" does not exist`, hint: 'check --context-sub-path or the #ref:subdir part' });
  if (realFull !== realBase && !realFull.startsWith(realBase + '/')) {
    throw fail('BAD_CONTEXT', { context, reason: `sub-path "${sub}" leaves the context through a symlink`, hint: 'use a path inside the context' });
  }
  return realFull;
}

async function probeContentType(url: string): Promise<string> {
  const { request } = await import('undici');
  try {
    const res = await request(url, { method: 'HEAD', maxRedirections: 5 });
    await res.body.dump();
    const ct = res.headers['content-type'];
    return Array.isArray(ct) ? ct.join(',') : (ct ?? '');
  } catch {
    return '';
  }
}

async function download(url: string, file: string, signal?: AbortSignal): Promise<void> {
  const { request } = await import('undici');
  try {
    const res = await request(url, { maxRedirections: 5, ...(signal ? { signal } : {}) });
    if (res.statusCode >= 400) {
      await res.body.dump();
      throw new Error(`HTTP ${res.statusCode}`);
    }
    await pipeline(res.body, createWriteStream(file, { mode: 0o600 }));
  } catch (err) {
    throw fail('CONTEXT_FETCH_FAILED', { url: safeUrl(url), detail: (err as Error).message }, err);
  }
}

async function extractTarball(file: string, dir: string, label: string): Promise<void> {
  const tar = await import('tar');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Every entry tar would refuse in strict mode is collected and refused only once the whole archive is processed:
  // strict mode rejects at the first bad entry while the stream keeps extracting, so the clean-up of the private
  // folder could run before the last entries were written (a leftover folder per hostile archive).
  const refused: string[] = [];
  try {
    await tar.x({ file, cwd: dir, preservePaths: false, strict: false, onwarn: (code: string, message: string | Error) => { refused.push(`${code}: ${message instanceof Error ? message.message : message}`); } });
  } catch (err) {
    throw fail('CONTEXT_FETCH_FAILED', { url: label, detail: (err as Error).message }, err);
  }
  if (refused.length) throw fail('CONTEXT_FETCH_FAILED', { url: label, detail: refused[0]! + (refused.length > 1 ? ` (and ${refused.length - 1} more)` : '') });
}

async function cloneGit(source: Extract<ContextSource, { kind: 'git' }>, request: BuildRequest, dir: string, log: Log, signal?: AbortSignal): Promise<void> {
  let token: string | undefined;
  if (request.git.tokenFile) {
    try {
      token = (await readFile(request.git.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw fail('BAD_FLAG_VALUE', { flag: '--git-token-file', reason: (err as Error).message, hint: 'mount the token secret and point --git-token-file at it' });
    }
    globalRedactor.addBasicAuth(request.git.tokenUser, token);
  }
  // A token embedded in the URL is a secret too: register it and strip it from every printed form.
  try {
    const u = new URL(source.url);
    if (u.password) globalRedactor.add(decodeURIComponent(u.password));
    else if (u.username && !token) globalRedactor.add(decodeURIComponent(u.username));
  } catch {
    /* scp-like git@host:path */
  }
  const origin = gitOrigin(source.url);
  const printable = safeUrl(source.url);
  if (token && !origin) log.warn(`--git-token-file is for http(s) Git URLs; ${printable} is not one, so the token is not used`, { event: 'git-token-unused' });
  // hosts that asked for credentials and got none (the helper writes them here): named in a warning or the error
  const refusedFile = join(dir, '..', 'git-refused-hosts');
  const env = gitAuthEnv({ user: request.git.tokenUser, ...(token ? { token } : {}), ...(origin ? { origin } : {}), refusedFile });
  const branch = request.git.branch ?? source.ref;
  const revision = request.git.revision ?? source.revision;
  const submodules = request.git.recurseSubmodules;
  log.info(`fetching Git context ${printable}${branch ? ` branch ${branch}` : ''}${revision ? ` revision ${revision}` : ''}`);
  const refusedHosts = async () => [...new Set((await readFile(refusedFile, 'utf8').catch(() => '')).split('\n').filter(Boolean))];
  const git = async (what: string, args: string[], cwd?: string) => {
    try {
      return await run('git', args, { env, ...(cwd ? { cwd } : {}), timeoutMs: 600_000, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (err instanceof ProcessError) {
        if (/could not read (Username|Password)|Authentication failed|401|403/i.test(err.stderr)) {
          const refused = token && origin ? await refusedHosts() : [];
          if (refused.length) {
            throw fail('GIT_AUTH_OTHER_ORIGIN', { hosts: refused.join(', '), origin: originText(origin!), url: printable }, err);
          }
          throw fail('GIT_AUTH', { url: printable }, err);
        }
        throw fail('GIT_FAILED', { what, url: printable, detail: lastLine(err.stderr) }, err);
      }
      throw err;
    }
  };
  if (revision) {
    await git('clone', ['clone', '--no-checkout', ...(branch ? ['--branch', branch] : []), '--', source.url, dir]);
    await git('checkout', ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', revision], dir);
  } else {
    await git('clone', ['clone', '--depth', '1', ...(branch ? ['--branch', branch] : []), '--', source.url, dir]);
  }
  // Submodules after the checkout, so that those on other hosts are named before git contacts them.
  if (submodules && (await stat(join(dir, '.gitmodules')).catch(() => undefined))) {
    if (token && origin) {
      const urls = await run('git', ['config', '-f', '.gitmodules', '--get-regexp', '^submodule\\..*\\.url$'], { cwd: dir, env, reject: false });
      for (const sub of foreignSubmodules(urls.stdout, origin)) {
        log.warn(`submodule ${sub.name} (${safeUrl(sub.url)}) is not on the context's origin ${originText(origin)}: it is fetched without the Git token (the token is not sent to other hosts)`, {
          event: 'git-submodule-foreign', submodule: sub.name,
        });
      }
    }
    await git('submodule update', ['submodule', 'update', '--init', '--recursive', ...(revision ? [] : ['--depth', '1'])], dir);
  }
  if (token && origin) {
    for (const host of await refusedHosts()) {
      log.warn(`${host} asked for credentials: the Git token was not sent (it is only for ${originText(origin)})`, { event: 'git-token-refused', host });
    }
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop() ?? '';
}
