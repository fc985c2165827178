/**
 * The part of kustomize (`kubectl apply -k`) that deploy/kubernetes uses: the `images` transformer, which rewrites
 * the name, tag or digest of every image field whose name matches an entry, at kustomize's built-in image paths
 * (containers and initContainers of pods and pod templates) plus the paths a `configurations` file adds (for
 * example Tekton's spec/steps/image). Re-expressed from kustomize's documented behaviour; pure.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isRecord } from '../../../src/core/k8s/manifest.js';
import { KustomizeComponent, KustomizeConfig, Kustomization } from './objects.js';

export interface ImageOverride {
  name: string;
  newName?: string | undefined;
  newTag?: string | undefined;
  digest?: string | undefined;
}

/** Built-in image field paths (as in kustomize, a list met on the way is walked element by element). */
const BUILTIN_PATHS = [
  'spec/containers/image', 'spec/initContainers/image',
  'spec/template/spec/containers/image', 'spec/template/spec/initContainers/image',
  'spec/jobTemplate/spec/template/spec/containers/image', 'spec/jobTemplate/spec/template/spec/initContainers/image',
];

/** Splits "host:5000/a/b:tag@sha256:x" into name, tag and digest. */
export function splitImage(image: string): { name: string; tag?: string; digest?: string } {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  let tag: string | undefined;
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { name: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function overrideImage(image: string, overrides: readonly ImageOverride[]): string {
  const parts = splitImage(image);
  const o = overrides.find((x) => x.name === parts.name);
  if (!o) return image;
  const name = o.newName ?? parts.name;
  if (o.digest) return `${name}@${o.digest}`;
  const tag = o.newTag ?? parts.tag;
  return `${name}${tag ? `:${tag}` : ''}${!o.newTag && parts.digest ? `@${parts.digest}` : ''}`;
}

function walk(node: unknown, steps: readonly string[], fn: (value: string) => string): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, steps, fn);
    return;
  }
  if (steps.length === 0 || !isRecord(node)) return;
  const [key, ...rest] = steps as [string, ...string[]];
  const next = node[key];
  if (rest.length === 0) {
    if (typeof next === 'string') node[key] = fn(next);
    return;
  }
  walk(next, rest, fn);
}

export interface ImagePathConfig {
  path: string;
  kind?: string;
}

/** Applies the images transformer to objects (mutates and returns them). `extraPaths` come from `configurations`. */
export function applyImages<T>(objects: T[], overrides: readonly ImageOverride[], extraPaths: readonly ImagePathConfig[] = []): T[] {
  for (const obj of objects) {
    const kind = isRecord(obj) ? obj.kind : undefined;
    const paths = [...BUILTIN_PATHS, ...extraPaths.filter((p) => !p.kind || p.kind === kind).map((p) => p.path)];
    for (const p of new Set(paths)) walk(obj, p.split('/'), (image) => overrideImage(image, overrides));
  }
  return objects;
}

async function readYamlDocs(path: string): Promise<unknown[]> {
  const { parseAllDocuments } = await import('yaml');
  return parseAllDocuments(await readFile(path, 'utf8')).map((d) => d.toJS() as unknown).filter((d) => d !== null);
}

/**
 * `kustomize build DIR` for what deploy/kubernetes uses: resources (files), components (folders with a Component
 * kustomization), the images transformer and its `configurations`. Returns the transformed objects.
 */
export async function kustomizeBuild(dir: string, opts: { setImages?: ImageOverride[] } = {}): Promise<unknown[]> {
  const doc = (await readYamlDocs(join(dir, 'kustomization.yaml')))[0];
  const k = Kustomization.parse(doc);
  const overrides: ImageOverride[] = [...(k.images ?? [])];
  const paths: ImagePathConfig[] = [];
  const addConfigs = async (base: string, files: readonly string[] | undefined) => {
    for (const f of files ?? []) paths.push(...(KustomizeConfig.parse((await readYamlDocs(join(base, f)))[0]).images ?? []));
  };
  await addConfigs(dir, k.configurations);
  for (const c of k.components ?? []) {
    const compDir = join(dir, c);
    const comp = KustomizeComponent.parse((await readYamlDocs(join(compDir, 'kustomization.yaml')))[0]);
    overrides.push(...(comp.images ?? []));
    await addConfigs(compDir, comp.configurations);
  }
  // `kustomize edit set image NAME=…`: replaces the entry of that name
  for (const set of opts.setImages ?? []) {
    const i = overrides.findIndex((o) => o.name === set.name);
    if (i >= 0) overrides.splice(i, 1, set);
    else overrides.push(set);
  }
  const objects: unknown[] = [];
  for (const r of k.resources ?? []) objects.push(...(await readYamlDocs(join(dir, r))));
  return applyImages(objects, overrides, paths);
}

/** The kustomization folder a manifest file belongs to (its own folder). */
export function kustomizationDirOf(file: string): string {
  return dirname(file);
}
