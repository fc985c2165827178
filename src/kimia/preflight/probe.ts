/**
 * Probe the facts preflight judges, in one cheap pass: a few /proc and /etc reads, a statfs, a write test, and a
 * single `unshare` child that creates a real user namespace (and, for overlay, mounts an overlay inside it).
 */
import { access, constants, readFile, readdir, rm, stat, statfs } from 'node:fs/promises';
import { mkdirSync, mkdtempSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from '../../core/exec/index.js';
import { parseSize } from '../../core/config.js';
import type { BuildRequest } from '../cli/request.js';
import { storageFor } from '../plan/plan.js';
import { KANIKO_DOCKER_CONFIG } from '../auth/index.js';
import type { PreflightFacts, ProbeResult } from './verdicts.js';
import { findEngine, which, type EngineFound } from '../buildah/engine.js';
import { mark } from '../timing.js';
import { passedBefore, readKeyInput, rememberPass } from './cache.js';

export const DEFAULT_MIN_FREE = 512 * 1024 * 1024;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** `getcap FILE` → "FILE cap_setuid=ep" (libcap2-bin); undefined when getcap is not installed */
async function fileCapabilities(path: string, env: Record<string, string | undefined>): Promise<string | undefined> {
  const getcap = await which('getcap', { PATH: `${env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}:/usr/sbin:/sbin` });
  if (!getcap) return undefined;
  const r = await run(getcap, [path], { timeoutMs: 5000, reject: false });
  return r.stdout.slice(path.length).trim();
}

/** newuidmap/newgidmap: setuid root (Debian's way), or file capabilities (what kimia's image uses) */
async function idmapTool(name: string, cap: 'cap_setuid' | 'cap_setgid', env: Record<string, string | undefined>) {
  const path = await which(name, env);
  if (!path) return undefined;
  const st = await stat(path);
  if ((st.mode & 0o4000) !== 0 && st.uid === 0) return { path, privileged: true, how: 'setuid' };
  const caps = await fileCapabilities(path, env).catch(() => undefined);
  if (caps === undefined) return { path, privileged: false, how: 'unknown' };
  // "cap_setuid=ep" or "cap_setuid+ep" (older libcap)
  return new RegExp(`${cap}[=+][a-z]*e[a-z]*p|${cap}[=+][a-z]*p[a-z]*e`).test(caps) ? { path, privileged: true, how: caps } : { path, privileged: false, how: caps || 'none' };
}

export function statusField(status: string, field: string): string | undefined {
  return new RegExp(`^${field}:\\s*(\\S+)`, 'm').exec(status)?.[1];
}

export function hasSubIdRange(file: string | undefined, user: string, uid: number): boolean {
  if (!file) return false;
  return file.split('\n').some((line) => {
    const [name, , count] = line.trim().split(':');
    return (name === user || name === String(uid)) && Number(count) > 0;
  });
}

/**
 * Synchronous on purpose (a few syscalls, microseconds): the namespace child waits for this answer, and async calls
 * would queue behind the context hashing's reads in libuv's thread pool, which delayed the child by 30-190 ms.
 */
function writable(dir: string): { writable: boolean; error?: string } {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.kimia-write-test-${process.pid}`);
    writeFileSync(probe, '');
    unlinkSync(probe);
    return { writable: true };
  } catch (err) {
    return { writable: false, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
}

/**
 * Entries of an existing image storage that this user cannot write: the storage folder itself may be writable while
 * what an earlier build left in it (run as another UID, or before fsGroup was set) is not, and buildah would fail on
 * its first lock file. Top level only: a few access() calls.
 */
async function blockedEntries(dir: string): Promise<{ path: string; uid: number }[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const checks = entries
    .filter((e) => !e.name.startsWith('.kimia-'))
    .map(async (e) => {
      const path = join(dir, e.name);
      const mode = e.isDirectory() ? constants.W_OK | constants.X_OK : constants.W_OK;
      if (!e.isDirectory() && !e.isFile()) return undefined;
      if (await access(path, mode).then(() => true, () => false)) return undefined;
      const st = await stat(path).catch(() => undefined);
      return { path, uid: st?.uid ?? -1 };
    });
  return (await Promise.all(checks)).filter((x): x is { path: string; uid: number } => x !== undefined);
}

async function existingAncestor(path: string): Promise<string> {
  let p = path;
  for (;;) {
    try {
      await stat(p);
      return p;
    } catch {
      const up = dirname(p);
      if (up === p) return p;
      p = up;
    }
  }
}

/**
 * One child: a real user namespace (root mapped), with an overlay mount inside it when overlay is asked for.
 * unshare runs mount itself (no shell in between); which of the two failed is told by who wrote the error:
 * util-linux prefixes its messages with the program name.
 */
async function probeNamespace(overlayBase: string | undefined): Promise<{ userns: ProbeResult; overlay?: ProbeResult }> {
  let scratch: string | undefined;
  const args = ['--user', '--map-root-user'];
  let command = ['true'];
  if (overlayBase) {
    try {
      // synchronous, like writable(): the child starts without waiting for the thread pool
      scratch = mkdtempSync(join(overlayBase, '.kimia-overlay-probe-'));
      for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(scratch, d));
      args.push('--mount');
      command = ['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${scratch}/l,upperdir=${scratch}/u,workdir=${scratch}/w`, `${scratch}/m`];
    } catch (err) {
      scratch = undefined;
      return { userns: { ok: true }, overlay: { ok: false, error: (err as Error).message } };
    }
  }
  try {
    mark('userns-start');
    const r = await run('unshare', [...args, ...command], { timeoutMs: 10_000, reject: false });
    mark('userns-done');
    const err = (r.stderr.trim().split('\n').pop() ?? '') || `exit ${r.exitCode}`;
    if (r.exitCode === 0) return overlayBase ? { userns: { ok: true }, overlay: { ok: true } } : { userns: { ok: true } };
    if (!overlayBase) return { userns: { ok: false, error: err } };
    // "unshare: failed to execute mount" means the namespace worked and the mount program is missing
    const byUnshare = /^unshare:/m.test(r.stderr) && !/^unshare: failed to execute/m.test(r.stderr);
    const unshareMissing = r.exitCode === 127 && !/^unshare:/m.test(r.stderr);
    const nsFailed = byUnshare || unshareMissing;
    return nsFailed
      ? { userns: { ok: false, error: err }, overlay: { ok: false, error: 'user namespace creation failed' } }
      : { userns: { ok: true }, overlay: { ok: false, error: err } };
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * `found`: buildah's path and version when the caller already looks them up (a build does, for its key).
 * `namespaceCache`: the file of namespace probes passed earlier in this boot (cache.ts); a build passes it,
 * `check-environment` does not (it always probes).
 */
export async function probe(
  request: BuildRequest, env: Record<string, string | undefined>, found: Promise<EngineFound> = findEngine(env), opts: { namespaceCache?: string } = {},
): Promise<PreflightFacts> {
  const started = performance.now();
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const storage = storageFor(request);
  // The namespace child is the slow part (tens of ms): it starts first, as soon as the storage folder exists, and
  // every file read and the free-space check run while it does.
  const storageW = writable(storage.root);
  const storageWritable = Promise.resolve(storageW);
  const overlayBase = request.storageDriver === 'overlay' && storageW.writable ? dirname(storage.root) : undefined;
  const keyInput = opts.namespaceCache && storageW.writable ? readKeyInput(storage) : undefined;
  const cached = Boolean(opts.namespaceCache && keyInput && passedBefore(opts.namespaceCache, keyInput));
  const namespace = cached
    ? Promise.resolve({ userns: { ok: true, cached: true }, ...(overlayBase ? { overlay: { ok: true, cached: true } } : {}) })
    : probeNamespace(overlayBase).then((ns) => {
      // remembered only when everything the child tried worked
      if (opts.namespaceCache && keyInput && ns.userns.ok && (!overlayBase || ns.overlay?.ok)) rememberPass(opts.namespaceCache, keyInput);
      return ns;
    });
  const free = storageWritable.then(async () => {
    const dir = await existingAncestor(storage.root);
    const st = await statfs(dir).catch(() => undefined);
    return st ? { dir, bytes: Number(st.bavail) * Number(st.bsize) } : undefined;
  });
  const blocked = storageWritable.then(async (w) => (w.writable ? (await Promise.all([blockedEntries(storage.root), blockedEntries(storage.runroot)])).flat() : []));
  const buildahFound = found.then((f) => f.path, () => undefined);
  // the engine's version: the log names it, and the Dockerfile check refuses features it is too old for
  const engine = found.then((f) => f.engine, () => undefined);
  const [status, maxNs, passwd, subuid, subgid, newuidmap, newgidmap, buildahPath, dockerCfg, kanikoCfg, cacheW, ns, freeSpace, storageBlocked, engineVersion] = await Promise.all([
    readText('/proc/self/status'),
    readText('/proc/sys/user/max_user_namespaces'),
    readText('/etc/passwd'),
    readText('/etc/subuid'),
    readText('/etc/subgid'),
    idmapTool('newuidmap', 'cap_setuid', env),
    idmapTool('newgidmap', 'cap_setgid', env),
    buildahFound,
    access(join(request.dockerConfigDir, 'config.json')).then(() => true, () => false),
    access(join(KANIKO_DOCKER_CONFIG, 'config.json')).then(() => true, () => false),
    request.cacheDir ? writable(request.cacheDir) : undefined,
    namespace,
    free,
    blocked,
    engine,
  ]);
  const userName = passwd?.split('\n').map((l) => l.split(':')).find((p) => p[2] === String(uid))?.[0] ?? String(uid);
  const facts: PreflightFacts = {
    uid,
    gid,
    userName,
    userns: ns.userns,
    storageDriver: request.storageDriver,
    capEff: BigInt('0x' + (statusField(status ?? '', 'CapEff') ?? '0')),
    capBnd: BigInt('0x' + (statusField(status ?? '', 'CapBnd') ?? '0')),
    noNewPrivs: statusField(status ?? '', 'NoNewPrivs') === '1',
    subuid: hasSubIdRange(subuid, userName, uid),
    subgid: hasSubIdRange(subgid, userName, uid),
    storageRoot: { path: storage.root, ...storageW, ...(storageBlocked.length ? { blocked: storageBlocked } : {}) },
    minFreeBytes: env.KIMIA_MIN_FREE_SPACE ? parseSize(env.KIMIA_MIN_FREE_SPACE) : DEFAULT_MIN_FREE,
    dockerConfig: {
      dir: request.dockerConfigDir,
      exists: dockerCfg,
      kanikoExists: kanikoCfg,
      envCredentials: Boolean(env.DOCKER_USERNAME && env.DOCKER_PASSWORD),
      explicit: Boolean(env.DOCKER_CONFIG),
    },
    pushes: !request.noPush,
  };
  if (maxNs !== undefined) facts.maxUserNamespaces = Number(maxNs.trim());
  if (ns.overlay) facts.overlay = ns.overlay;
  if (newuidmap) facts.newuidmap = newuidmap;
  if (newgidmap) facts.newgidmap = newgidmap;
  if (buildahPath) facts.buildahPath = buildahPath;
  if (engineVersion) facts.engine = engineVersion;
  if (request.cacheDir && cacheW) facts.cacheDir = { path: request.cacheDir, ...cacheW };
  if (freeSpace) facts.free = freeSpace;
  facts.durationMs = Math.round(performance.now() - started);
  return facts;
}
