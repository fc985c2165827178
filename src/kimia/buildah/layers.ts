/**
 * The layers of a built image, for the "layers to push" line, read from containers/storage's own records
 * (`<driver>-images/images.json` → the top layer, `<driver>-layers/layers.json` → each layer's parent, digest and
 * size) instead of a `buildah inspect` process running beside the push. Any surprise gives an empty list: the line
 * is information, never a reason to fail.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function storedLayers(storage: { root: string; driver: string }, imageId: string | undefined): Promise<{ digest: string; size: number }[]> {
  if (!imageId) return [];
  const id = imageId.replace(/^sha256:/, '');
  try {
    const [images, layers] = await Promise.all([
      readFile(join(storage.root, `${storage.driver}-images`, 'images.json'), 'utf8').then((t) => JSON.parse(t) as { id: string; layer?: string }[]),
      readFile(join(storage.root, `${storage.driver}-layers`, 'layers.json'), 'utf8').then((t) => JSON.parse(t) as { id: string; parent?: string; 'diff-digest'?: string; 'diff-size'?: number }[]),
    ]);
    const byId = new Map(layers.map((l) => [l.id, l]));
    const out: { digest: string; size: number }[] = [];
    for (let l = byId.get(images.find((i) => i.id === id)?.layer ?? ''); l; l = l.parent ? byId.get(l.parent) : undefined) {
      if (!l['diff-digest'] || out.length > 1000) return [];
      out.push({ digest: l['diff-digest'], size: l['diff-size'] ?? 0 });
    }
    return out.reverse();
  } catch {
    return [];
  }
}
