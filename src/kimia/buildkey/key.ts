/**
 * The build key: one digest of everything that decides what `buildah bud` produces. Pure.
 *
 * In: the parsed Dockerfile (every instruction as written and the escape character: comments and blank lines between
 * instructions do not count), the context digest (context.ts) and the ignore file, every build arg and its value,
 * every build secret's content, target, platforms, the format built and the format pushed (the format decision of
 * dockerfile/format.ts, not the format asked for), labels, timestamp, squash, identity label, compression,
 * isolation, the resolved digest of every image the Dockerfile reads (FROM, COPY --from, RUN --mount from=), kimia's
 * version, and Buildah's version with the identity of its binary (path, size, mtime: a rebuilt package of the same
 * version is another engine too). Values are never in the key in clear: each passes through an HMAC with the
 * cache's own salt, so a key or a record reveals nothing of a secret, and the same value in another cache gives
 * another key.
 *
 * Not in: destinations (the same image is pushed to each), the cache flags, log settings, retries, credentials,
 * and what a RUN step fetches from the network: as with Buildah's layer cache, a RUN whose instruction, arguments
 * and parent are unchanged is not run again.
 */
import { createHash, createHmac } from 'node:crypto';
import type { BuildRequest } from '../cli/request.js';
import type { FormatDecision } from '../dockerfile/format.js';

export interface KeyFacts {
  kimiaVersion: string;
  /** `buildah --version`'s version */
  engineVersion: string;
  /** path, size and mtime of the Buildah binary: a new Buildah is a new key */
  buildah: string;
  /** dockerfileDigest() of the parsed Dockerfile */
  dockerfile: string;
  /** what the plan builds and pushes (plan.format) */
  format: Pick<FormatDecision, 'build' | 'output'>;
  ignoreText: string;
  contextDigest: string;
  /** image reference as written (expanded) → manifest digest */
  images: Record<string, string>;
  /** build secret id → its content */
  secretValues: Record<string, string>;
  salt: string;
}

export function hmac(salt: string, value: string): string {
  return createHmac('sha256', salt).update(value).digest('hex');
}

/** The document that is hashed: canonical (sorted keys where order carries no meaning), no value in clear. */
export function keyDocument(request: BuildRequest, facts: KeyFacts): Record<string, unknown> {
  // a later --build-arg of the same name wins, as in Buildah
  const args = new Map<string, string>();
  for (const a of request.buildArgs) if (!a.unset) args.set(a.name, a.value);
  return {
    v: 2,
    kimia: facts.kimiaVersion,
    engine: facts.engineVersion,
    buildah: facts.buildah,
    dockerfile: facts.dockerfile,
    ignore: createHash('sha256').update(facts.ignoreText).digest('hex'),
    context: facts.contextDigest,
    args: [...args.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, hmac(facts.salt, v)]),
    secrets: Object.entries(facts.secretValues).sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, v]) => [id, hmac(facts.salt, v)]),
    images: Object.entries(facts.images).sort(([a], [b]) => (a < b ? -1 : 1)),
    target: request.target ?? null,
    platforms: request.platforms,
    format: { build: facts.format.build, output: facts.format.output },
    labels: request.labels.map((l) => [l.key, l.value]).sort(([a], [b]) => (a! < b! ? -1 : 1)),
    timestamp: request.timestamp ?? null,
    reproducible: request.reproducible,
    squash: request.squash,
    compression: request.compression ?? null,
    compressionLevel: request.compressionLevel ?? null,
    isolation: request.isolation,
  };
}

export function buildKey(request: BuildRequest, facts: KeyFacts): string {
  return createHash('sha256').update(JSON.stringify(keyDocument(request, facts))).digest('hex');
}

/**
 * The key without what the registries answer: the images' references in place of their digests. Every input of
 * the key but those is local (files, flags, versions), so when no recorded build has this local key, none can
 * match the full key either, and Buildah may start before the registries are asked.
 */
export function localKey(request: BuildRequest, facts: Omit<KeyFacts, 'images'>, imageRefs: readonly string[]): string {
  const doc = keyDocument(request, { ...facts, images: {} });
  return createHash('sha256').update(JSON.stringify({ ...doc, images: [...new Set(imageRefs)].sort(), local: true })).digest('hex');
}

/** Why a request never uses the build key (undefined: it may). */
export function keyDisabled(request: BuildRequest): string | undefined {
  if (request.noBuildKey) return '--no-build-key';
  if (!request.cache) return 'the layer cache is off (--cache=false): every step runs';
  if (request.platforms.length > 1) return 'a multi-platform build';
  if (request.registryMirrors.length) return 'registry mirrors decide where base images come from';
  if (request.dryRun) return '--dry-run';
  return undefined;
}
