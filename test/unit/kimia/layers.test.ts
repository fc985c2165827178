import { afterAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storedLayers } from '../../../src/kimia/buildah/layers.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('storedLayers', () => {
  it('walks the top layer to the base through parents, base first (containers/storage records)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kimia-layers-'));
    dirs.push(root);
    await mkdir(join(root, 'overlay-images'));
    await mkdir(join(root, 'overlay-layers'));
    await writeFile(join(root, 'overlay-images', 'images.json'), JSON.stringify([{ id: 'img1', layer: 'l3' }, { id: 'img2', layer: 'l1' }]));
    await writeFile(join(root, 'overlay-layers', 'layers.json'), JSON.stringify([
      { id: 'l1', 'diff-digest': 'sha256:01', 'diff-size': 100 },
      { id: 'l2', parent: 'l1', 'diff-digest': 'sha256:02', 'diff-size': 20 },
      { id: 'l3', parent: 'l2', 'diff-digest': 'sha256:03', 'diff-size': 3 },
    ]));
    expect(await storedLayers({ root, driver: 'overlay' }, 'sha256:img1')).toEqual([
      { digest: 'sha256:01', size: 100 }, { digest: 'sha256:02', size: 20 }, { digest: 'sha256:03', size: 3 },
    ]);
    expect(await storedLayers({ root, driver: 'overlay' }, 'img2')).toEqual([{ digest: 'sha256:01', size: 100 }]);
    expect(await storedLayers({ root, driver: 'overlay' }, 'missing')).toEqual([]);
    expect(await storedLayers({ root, driver: 'vfs' }, 'img1')).toEqual([]);
  });
});
