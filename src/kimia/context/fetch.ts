/**
 * Fetch a classified context into a local folder: Git through the git CLI (the token travels in an HTTP header set
 * through GIT_CONFIG_* variables, never in a URL or an argv), tarballs from a file or an http(s) URL.
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
  try {
    await tar.x({ file, cwd: dir, preservePaths: false, strict: true });
  } catch (err) {
    throw fail('CONTEXT_FETCH_FAILED', { url: label, detail: (err as Error).message }, err);
  }
}

/** Environment that gives git the token as an Authorization header without putting it in argv or URL. */
export function gitAuthEnv(user: string, token: string | undefined): Record<string, string> {
  const env: Record<string, string> = { GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '/bin/false', SSH_ASKPASS: '/bin/false', GIT_PROTOCOL_FROM_USER: '0' };
  if (token) {
    const basic = Buffer.from(`${user}:${token}`).toString('base64');
    env.GIT_CONFIG_COUNT = '1';
    env.GIT_CONFIG_KEY_0 = 'http.extraHeader';
    env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${basic}`;
  }
  return env;
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
  const env = gitAuthEnv(request.git.tokenUser, token);
  const branch = request.git.branch ?? source.ref;
  const revision = request.git.revision ?? source.revision;
  const submodules = request.git.recurseSubmodules;
  const printable = safeUrl(source.url);
  log.info(`fetching Git context ${printable}${branch ? ` branch ${branch}` : ''}${revision ? ` revision ${revision}` : ''}`);
  const git = async (what: string, args: string[], cwd?: string) => {
    try {
      await run('git', args, { env, ...(cwd ? { cwd } : {}), timeoutMs: 600_000, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (err instanceof ProcessError) {
        if (/could not read (Username|Password)|Authentication failed|401|403/i.test(err.stderr)) {
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
    if (submodules) await git('submodule update', ['submodule', 'update', '--init', '--recursive'], dir);
  } else {
    const args = ['clone', '--depth', '1', ...(branch ? ['--branch', branch] : [])];
    if (submodules) args.push('--recurse-submodules', '--shallow-submodules');
    await git('clone', [...args, '--', source.url, dir]);
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop() ?? '';
}
