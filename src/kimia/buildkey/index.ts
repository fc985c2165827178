/**
 * The build key at work: computed before Buildah would start; when a successful build recorded the same key and
 * its image is still in the storage, the build is answered without `buildah bud`: each destination is asked for its
 * manifest (pushed again only when it does not hold the recorded one), local names, exports and digest files are
 * written as a full build writes them, and kimia says `unchanged: build key … matches …, built …`. Anything the key
 * cannot cover (see key.ts, dockerfile.ts) makes kimia build, as it would without a key.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildRequest } from '../cli/request.js';
import type { Credential } from '../auth/merge.js';
import type { Log } from '../log.js';
import type { BuildPlan } from '../plan/plan.js';
import type { ParsedDockerfile } from '../dockerfile/parse.js';
import type { EngineFound } from '../buildah/engine.js';
import { projectVersion } from '../../core/version.js';
import { hashContext, type StatCache } from './context.js';
import { dockerfileDigest, externalInputs } from './dockerfile.js';
import { ignoreMatcher } from './ignore.js';
import { buildKey, keyDisabled, localKey } from './key.js';
import { keyDir, loadSalt, localKeyKnown, prepareRecordDir, readRecord, readStatCache, storedImage, writeRecord, writeStatCache, type BuildRecord } from './record.js';
import { manifestDigest, parseImageRef, type DigestAnswer, type RegistryAccess } from './registry.js';
import { mark } from '../timing.js';

export interface KeyInput {
  request: BuildRequest;
  plan: BuildPlan;
  contextDir: string;
  /** identifies the context across runs for the stat cache (the --context value; a fetched context gets none) */
  contextId?: string;
  dockerfile: ParsedDockerfile;
  /** buildah on PATH and its version (looked up once when kimia starts) */
  engine: Promise<EngineFound>;
  certDir?: string;
  credentials: Credential[];
  env: Record<string, string | undefined>;
  log: Log;
}

export interface KeyedBuild {
  key: string;
  /** the key without the registries' answers (key.ts localKey) */
  local?: string;
  dir: string;
  /** the recorded build, when its image is still in the storage */
  match?: BuildRecord;
  statCache?: StatCache;
  contextId?: string;
  durationMs: number;
}

const REGISTRY_TIMEOUT_MS = 10_000;

function hostPlatform(): string {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  return `linux/${arch}`;
}

/** The Buildah binary's version and identity (real path, inode, size, mtime, ctime: a new package changes them). */
async function buildahIdentity(found: Promise<EngineFound>): Promise<{ version: string; identity: string } | undefined> {
  const { identity, engine } = await found;
  return identity && engine ? { version: engine.version, identity } : undefined;
}

/** TLS, CA files and credentials for a registry host, as Buildah would use them (--cert-dir, auth.json, flags). */
async function accessFor(host: string, side: 'pull' | 'push', input: KeyInput): Promise<RegistryAccess> {
  const r = input.request;
  const insecure = r.insecureRegistries.includes(host) || (side === 'pull' ? r.insecurePull || r.skipTlsVerifyPull : r.insecure || r.skipTlsVerify);
  const access: RegistryAccess = { insecure, timeoutMs: REGISTRY_TIMEOUT_MS };
  if (input.certDir) {
    const { readdir } = await import('node:fs/promises');
    const names = await readdir(input.certDir).catch(() => [] as string[]);
    const ca = await Promise.all(names.filter((n) => n.endsWith('.crt')).map((n) => readFile(join(input.certDir!, n), 'utf8')));
    if (ca.length) access.ca = ca;
    const pair = names.find((n) => n.endsWith('.cert') && names.includes(n.replace(/\.cert$/, '.key')));
    if (pair) access.clientCert = { cert: await readFile(join(input.certDir, pair), 'utf8'), key: await readFile(join(input.certDir, pair.replace(/\.cert$/, '.key')), 'utf8') };
  }
  const cred = input.credentials.find((c) => c.registry === host);
  if (cred) access.credentials = { username: cred.username, password: cred.password };
  return access;
}

async function ignoreText(contextDir: string, dockerfilePath: string): Promise<{ text: string; exclude: boolean }> {
  // Buildah reads .containerignore before .dockerignore; an ignore file beside the Dockerfile (newer Buildah) is not
  // read here, so with one present every file is hashed
  const besides = await Promise.all(['.dockerignore', '.containerignore'].map((s) => stat(`${dockerfilePath}${s}`).then(() => true, () => false)));
  for (const name of ['.containerignore', '.dockerignore']) {
    const text = await readFile(join(contextDir, name), 'utf8').catch(() => undefined);
    if (text !== undefined) return { text, exclude: !besides.includes(true) };
  }
  return { text: '', exclude: !besides.includes(true) };
}

async function secretValues(request: BuildRequest, env: Record<string, string | undefined>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of request.buildSecrets) out[s.id] = s.source.kind === 'env' ? env[s.source.name] ?? '' : await readFile(s.source.path, 'utf8');
  return out;
}

/** The key of a build that no record can match: `finish` completes it (once Buildah runs), for the record after it. */
export interface PendingKey {
  finish(): Promise<KeyedBuild | undefined>;
}

/**
 * The build key and the recorded build it matches; a PendingKey when no record can match (the local key is
 * unknown); undefined when the key is off or cannot be computed.
 */
export async function checkBuildKey(input: KeyInput): Promise<KeyedBuild | PendingKey | undefined> {
  const started = performance.now();
  const { request, plan, log } = input;
  const off = keyDisabled(request);
  if (off) {
    log.debug(`build key not used: ${off}`, { event: 'build-key', used: false });
    return undefined;
  }
  const dir = keyDir(plan.storage.root);
  const unusable = (why: string) => {
    log.debug(`build key not used: ${why}`, { event: 'build-key', used: false });
    return undefined;
  };
  let salt: string;
  try {
    salt = await loadSalt(dir);
  } catch (err) {
    return unusable(`${dir} is not writable (${(err as Error).message})`);
  }
  const args = new Map<string, string>();
  for (const a of request.buildArgs) if (!a.unset) args.set(a.name, a.value);
  const inputs = externalInputs(input.dockerfile, args, { target: request.platforms[0] ?? hostPlatform(), build: hostPlatform() });
  if (inputs.kind === 'unprovable') return unusable(inputs.reason);

  // the registries are asked only when a recorded build could match (see localKey), or once Buildah has started:
  // a request costs ~10 ms of this thread and the registry's answer time, which a changed build need not wait for
  let resolving: Promise<(readonly [string, DigestAnswer])[]> | undefined;
  const resolveImages = () => (resolving ??= Promise.all(inputs.images.map(async (ref) => [ref, await manifestDigest(ref, await accessFor(parseImageRef(ref).registry, 'pull', input))] as const)));
  const [ignore, previous, buildah, secrets] = await Promise.all([
    ignoreText(input.contextDir, plan.dockerfilePath),
    input.contextId ? readStatCache(dir, input.contextId) : Promise.resolve(undefined),
    buildahIdentity(input.engine),
    secretValues(request, input.env),
  ]);
  mark('key-inputs');
  if (!buildah) return unusable('buildah or its version not found on PATH');
  const matcher = ignoreMatcher(ignore.exclude ? ignore.text : undefined);
  for (const s of matcher.skipped) log.debug(`build key: ignore pattern not applied (${s})`, { event: 'build-key' });
  const context = await hashContext(input.contextDir, matcher, previous);
  mark('key-context');
  const facts = {
    kimiaVersion: projectVersion(), engineVersion: buildah.version, buildah: buildah.identity, dockerfile: dockerfileDigest(input.dockerfile),
    format: plan.format, ignoreText: ignore.text, contextDigest: context.digest, secretValues: secrets, salt,
  };
  const local = localKey(request, facts, inputs.images);
  const complete = async (): Promise<KeyedBuild | undefined> => {
    const images: Record<string, string> = {};
    for (const [ref, answer] of await resolveImages()) {
      if (answer.kind !== 'digest') return unusable(`the digest of ${ref} is unknown (${answer.kind === 'error' ? answer.detail : 'not found'})`);
      images[ref] = answer.digest;
    }
    const key = buildKey(request, { ...facts, images });
    const durationMs = Math.round(performance.now() - started);
    log.debug(`build key ${key.slice(0, 12)} in ${durationMs} ms (${context.files} files, ${context.bytes} bytes, ${context.reused} hashes reused; ${Object.keys(images).length} image digests)`, {
      event: 'build-key', key, durationMs, files: context.files, reusedHashes: context.reused,
    });
    return { key, local, dir, statCache: context.cache, durationMs, ...(input.contextId ? { contextId: input.contextId } : {}) };
  };
  if (!(await localKeyKnown(dir, local))) {
    log.debug(`build key: no recorded build has these files, flags and versions (local key ${local.slice(0, 12)}): Buildah starts without waiting for the registry`, { event: 'build-key', local });
    let finishing: Promise<KeyedBuild | undefined> | undefined;
    return { finish: () => (finishing ??= complete().catch(() => undefined)) };
  }
  const keyed = await complete();
  if (!keyed) return undefined;
  const record = await readRecord(dir, keyed.key);
  if (record && (await storedImage(plan.storage, record.imageId))) keyed.match = record;
  else if (record) log.debug(`build key ${keyed.key.slice(0, 12)}: the recorded image ${record.imageId.slice(0, 12)} is no longer in the storage`, { event: 'build-key' });
  return keyed;
}

/**
 * What the record of a build needs that does not depend on its result: the stat cache of the context written, an
 * earlier record of the same key read, room made in the folders. A build runs it while Buildah pushes (its own time
 * then costs the build nothing) and hands it to recordBuild; failures only cost the next build its key.
 */
export interface RecordPrepared {
  old?: BuildRecord;
  ready: boolean;
}

export async function prepareRecord(keyed: KeyedBuild): Promise<RecordPrepared> {
  const [, old, ready] = await Promise.all([
    keyed.statCache && keyed.contextId ? writeStatCache(keyed.dir, keyed.contextId, keyed.statCache).catch(() => undefined) : undefined,
    keyed.match ?? readRecord(keyed.dir, keyed.key),
    prepareRecordDir(keyed.dir, keyed.key, keyed.local).then(() => true, () => false),
  ]);
  return { ...(old ? { old } : {}), ready };
}

/** After a successful build: the record for the next one (failures to write only cost the next build its key). */
export async function recordBuild(keyed: KeyedBuild, result: { imageId?: string; pushed: { destination: string; digest: string }[] }, log: Log, prepared?: RecordPrepared): Promise<void> {
  const imageId = result.imageId?.replace(/^sha256:/, '');
  try {
    const done = prepared ?? await prepareRecord(keyed);
    if (!imageId) return;
    const old = done.old;
    const pushed = { ...(old?.imageId === imageId ? old.pushed : {}) };
    for (const p of result.pushed) pushed[p.destination] = p.digest;
    const builtAt = keyed.match?.builtAt ?? (old?.imageId === imageId ? old.builtAt : new Date().toISOString());
    await writeRecord(keyed.dir, { v: 1, key: keyed.key, imageId, builtAt, pushed }, keyed.local, { prepared: done.ready });
  } catch (err) {
    log.debug(`build key not recorded: ${(err as Error).message}`, { event: 'build-key' });
  }
}

/** Which manifest digests a recorded image is known by (one per compression, usually one). */
export function knownDigests(record: BuildRecord): Set<string> {
  return new Set(Object.values(record.pushed));
}

/** Does the destination already hold one of the recorded manifests? */
export async function destinationHolds(destination: string, record: BuildRecord, input: Pick<KeyInput, 'request' | 'certDir' | 'credentials'> & Partial<KeyInput>): Promise<string | undefined> {
  const access = await accessFor(parseImageRef(destination).registry, 'push', input as KeyInput);
  const answer = await manifestDigest(destination, access);
  return answer.kind === 'digest' && knownDigests(record).has(answer.digest) ? answer.digest : undefined;
}

export function describeAge(builtAt: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(builtAt)) / 1000));
  const ago = s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} days`;
  return `${builtAt} (${ago} ago)`;
}

/** `name` as containers/storage records it: `reg:5000/a/b:1`, `docker.io/library/busybox:latest`. */
export function storageName(name: string): string {
  const r = parseImageRef(name);
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/**
 * The matched build, answered without `buildah bud`: the local names point at the recorded image, every destination
 * holds its manifest (pushed again when it does not), exports and digest files are written. Returns what a full
 * build returns.
 */
export async function answerUnchanged(keyed: KeyedBuild, input: KeyInput, opts: { baseDelayMs: number; signal?: AbortSignal }): Promise<{ destination: string; digest: string }[]> {
  const record = keyed.match!;
  const { request, plan, log } = input;
  const [{ writePlanFiles, pushWithRetry, runExports }, { outputFiles, writeOutputs }, { run }] = await Promise.all([
    import('../buildah/run.js'), import('../outputs/index.js'), import('../../core/exec/index.js'),
  ]);
  let filesWritten = false;
  const engineFiles = async () => {
    if (!filesWritten) await writePlanFiles(plan);
    filesWritten = true;
  };
  const global = ['--root', plan.storage.root, '--runroot', plan.storage.runroot, '--storage-driver', plan.storage.driver];
  // the names a full build would have given the image (another build in this storage may have taken one)
  const stored = await storedImage(plan.storage, record.imageId);
  const names = plan.bud.flatMap((a, i) => (i > 0 && plan.bud[i - 1] === '-t' ? [a] : []));
  const missing = names.filter((n) => !stored?.names.includes(storageName(n)));
  if (missing.length) {
    await engineFiles();
    await run(plan.buildah, [...global, 'tag', record.imageId, ...missing], { env: plan.env });
  }
  const pushed: { destination: string; digest: string }[] = [];
  const checks = await Promise.all(plan.pushes.map((step) => destinationHolds(step.destination, record, input).catch(() => undefined)));
  for (const [i, step] of plan.pushes.entries()) {
    const held = checks[i];
    if (held) {
      log.info(`${step.destination} already holds ${held}`, { event: 'pushed', destination: step.destination, digest: held, unchanged: true });
      pushed.push({ destination: step.destination, digest: held });
      continue;
    }
    await engineFiles();
    const done = await pushWithRetry(plan, step, request.pushRetry, log, { baseDelayMs: opts.baseDelayMs, ...(opts.signal ? { signal: opts.signal } : {}) });
    pushed.push({ destination: done.destination, digest: done.digest });
  }
  if (plan.exports.length) {
    await engineFiles();
    await runExports(plan, log);
  }
  await writeOutputs(outputFiles(request, pushed));
  const digest = pushed[0]?.digest ?? `sha256:${record.imageId}`;
  log.info(`unchanged: build key ${keyed.key.slice(0, 12)} matches ${digest}, built ${describeAge(record.builtAt)}`, {
    event: 'unchanged', key: keyed.key, digest, imageId: record.imageId, builtAt: record.builtAt, durationMs: keyed.durationMs,
  });
  await recordBuild(keyed, { imageId: record.imageId, pushed }, log);
  return pushed;
}
