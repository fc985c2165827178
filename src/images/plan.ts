/**
 * `npm run images`: which images to build, from which staged context, with which kimia command line. Pure: the
 * request and a few facts in, the plan out; `--dry-run` prints exactly this plan.
 *
 * Images (one folder each under images/, with its Dockerfile):
 *   kimia              the builder: Debian 13 + Buildah 1.39 + Node.js 20 + the esbuild bundle of src/kimia
 */

export const IMAGE_NAMES = ['kimia'] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];

/** The public base image a user's build starts from; the suite passes a local Debian 13 instead. */
export const DEFAULT_BASE_IMAGE = 'docker.io/library/debian:trixie-slim';

export interface ImagesRequest {
  /** HOST[:PORT]/PREFIX: images are pushed as HOST[:PORT]/PREFIX/NAME:TAG */
  registry: string;
  tag: string;
  images: readonly ImageName[];
  baseImage: string;
  /** kimia's layer cache (persists between runs, outside the checkout) */
  cacheDir: string;
  storageDriver: 'vfs' | 'overlay';
  /** passed to kimia as --registry-certificate (a folder with CA *.crt files, or HOST=FILE) */
  registryCertificates: readonly string[];
  insecureRegistries: readonly string[];
  dryRun: boolean;
}

export interface ImagesFacts {
  /** absolute path of the project's kimia (bin/kimia) */
  kimia: string;
  /** git commit of the checkout, for the revision label ('' when unknown) */
  revision: string;
  /** a private work folder for staged contexts and digest files */
  workDir: string;
}

export interface ImageBuild {
  name: ImageName;
  /** HOST/PREFIX/NAME:TAG */
  ref: string;
  /** the folder src/images/stage.ts fills (the Dockerfile is copied into it) */
  contextDir: string;
  dockerfile: string;
  digestFile: string;
  /** the kimia command: [kimia, ...args] */
  command: string[];
}

export interface ImagesPlan {
  builds: ImageBuild[];
}

export class ImagesUsageError extends Error {
  constructor(message: string, readonly fix: string) {
    super(message);
    this.name = 'ImagesUsageError';
  }
}

const TITLES: Record<ImageName, string> = {
  kimia: 'kimia: rootless, daemonless image builder for Kubernetes (Kaniko drop-in)',
};

/** HOST[:PORT]/PREFIX with a host part that looks like a registry (a dot, a port or localhost). */
export function checkRegistry(registry: string): string {
  const trimmed = registry.replace(/\/+$/, '');
  const [host, ...rest] = trimmed.split('/');
  const hostLike = !!host && (host.includes('.') || host.includes(':') || host === 'localhost');
  if (!hostLike || rest.length === 0 || rest.some((p) => !/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(p))) {
    throw new ImagesUsageError(`--registry ${JSON.stringify(registry)} is not HOST[:PORT]/PREFIX`,
      'give the registry host and a repository prefix, e.g. --registry registry.example.com/platform or --registry 127.0.0.1:5000/test');
  }
  return trimmed;
}

export function checkTag(tag: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) {
    throw new ImagesUsageError(`--tag ${JSON.stringify(tag)} is not a valid image tag`, 'use letters, digits, _ . - (at most 128, not starting with . or -)');
  }
  return tag;
}

export function imageRef(registry: string, name: ImageName, tag: string): string {
  return `${registry}/${name}:${tag}`;
}

export function planImages(req: ImagesRequest, facts: ImagesFacts): ImagesPlan {
  const registry = checkRegistry(req.registry);
  const tag = checkTag(req.tag);
  const builds = req.images.map((name): ImageBuild => {
    const contextDir = `${facts.workDir}/${name}`;
    const digestFile = `${facts.workDir}/${name}.digest`;
    const ref = imageRef(registry, name, tag);
    const args = [
      `--context=${contextDir}`,
      '--dockerfile=Dockerfile',
      `--destination=${ref}`,
      `--build-arg=BASE_IMAGE=${req.baseImage}`,
      '--cache',
      `--cache-dir=${req.cacheDir}`,
      `--storage-driver=${req.storageDriver}`,
      `--digest-file=${digestFile}`,
      `--label=org.opencontainers.image.title=${name}`,
      `--label=org.opencontainers.image.description=${TITLES[name]}`,
      `--label=org.opencontainers.image.version=${tag}`,
      ...(facts.revision ? [`--label=org.opencontainers.image.revision=${facts.revision}`] : []),
      ...req.registryCertificates.map((c) => `--registry-certificate=${c}`),
      ...req.insecureRegistries.map((h) => `--insecure-registry=${h}`),
    ];
    return { name, ref, contextDir, dockerfile: `images/${name}/Dockerfile`, digestFile, command: [facts.kimia, ...args] };
  });
  return { builds };
}

// ---- the report: what was pushed, how big, which layers

export interface ManifestLayer {
  digest: string;
  size: number;
}

export interface LayerReport {
  digest: string;
  size: number;
  /** the Dockerfile step that made it (the config history's created_by), '' when unknown */
  createdBy: string;
}

export interface ImageReport {
  ref: string;
  digest: string;
  layers: LayerReport[];
  /** sum of the compressed layer sizes (what a node downloads) */
  compressedBytes: number;
}

interface HistoryEntry {
  created_by?: string;
  empty_layer?: boolean;
}

/** Pairs the manifest's layers with the config history entries that made a layer (empty_layer entries skipped). */
export function reportImage(ref: string, digest: string, layers: readonly ManifestLayer[], history: readonly HistoryEntry[]): ImageReport {
  const makers = history.filter((h) => !h.empty_layer);
  const paired = layers.map((l, i) => ({ digest: l.digest, size: l.size, createdBy: shortStep(makers[i]?.created_by ?? '') }));
  return { ref, digest, layers: paired, compressedBytes: layers.reduce((n, l) => n + l.size, 0) };
}

/** "/bin/sh -c #(nop) COPY dir:… in /opt/kimia/" → "COPY dir:… in /opt/kimia/"; long RUN lines cut. */
function shortStep(createdBy: string): string {
  const s = createdBy.replace(/^\/bin\/sh -c #\(nop\)\s*/, '').replace(/^\/bin\/sh -c\s*/, 'RUN ').replace(/\s+/g, ' ').trim();
  return s.length > 100 ? `${s.slice(0, 97)}...` : s;
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export function renderReport(r: ImageReport): string {
  const lines = [`${r.ref}@${r.digest}: ${r.layers.length} layers, ${formatBytes(r.compressedBytes)} compressed`];
  for (const l of r.layers) lines.push(`  ${formatBytes(l.size).padStart(10)}  ${l.digest.slice(0, 19)}  ${l.createdBy}`);
  return lines.join('\n') + '\n';
}
