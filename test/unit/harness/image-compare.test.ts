import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { compareImages, flattenLayers, normalizeConfig, type ImageSnapshot } from '../../harness/image-compare.js';

const dir = mkdtempSync(join(tmpdir(), 'image-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One ustar entry; `link` may be set on any type (BuildKit writes whiteouts with one). */
function entry(name: string, opts: { type?: string; body?: string; mode?: number; uid?: number; gid?: number; link?: string } = {}): Buffer {
  const body = Buffer.from(opts.body ?? '');
  const h = Buffer.alloc(512);
  const put = (off: number, len: number, v: string) => h.write(v, off, len, 'utf8');
  const oct = (off: number, len: number, n: number) => put(off, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
  put(0, 100, name);
  oct(100, 8, opts.mode ?? 0o644);
  oct(108, 8, opts.uid ?? 0);
  oct(116, 8, opts.gid ?? 0);
  oct(124, 12, body.length);
  oct(136, 12, 0);
  h.fill(0x20, 148, 156);
  put(156, 1, opts.type ?? '0');
  if (opts.link) put(157, 100, opts.link);
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

function layer(name: string, entries: Buffer[], gzip = false): string {
  const tar = Buffer.concat([...entries, Buffer.alloc(1024)]);
  const path = join(dir, name);
  writeFileSync(path, gzip ? gzipSync(tar) : tar);
  return path;
}

describe('flattenLayers', () => {
  it('applies whiteouts (also BuildKit\'s, which carry a link name), opaque folders, replacements and hard links', async () => {
    const l1 = layer('l1.tar', [
      entry('w/', { type: '5', mode: 0o755 }), entry('w/dir/', { type: '5' }), entry('w/dir/sub/f', { body: '1\n' }), entry('w/file', { body: '2\n' }),
      entry('w/h1', { body: 'h\n', uid: 1000, gid: 2000 }), entry('w/h2', { type: '1', link: 'w/h1' }), entry('w/keep/', { type: '5' }), entry('w/keep/old', { body: 'o' }),
      entry('ln', { type: '2', link: '/w/file' }),
    ]);
    const l2 = layer('l2.tar.gz', [
      entry('w/.wh.dir', { link: 'w/dir' }), entry('w/keep/', { type: '5', mode: 0o700 }), entry('w/keep/.wh..wh..opq'), entry('w/keep/new', { body: 'n' }),
      entry('w/file/', { type: '5' }),
    ], true);
    const l3 = layer('l3.tar', [entry('w/file', { body: 'replaced\n' })]);
    const files = await flattenLayers([l1, l2, l3]);
    expect([...files.keys()].sort()).toEqual(['ln', 'w', 'w/file', 'w/h1', 'w/h2', 'w/keep', 'w/keep/new']);
    expect(files.get('w/file')).toMatchObject({ type: 'file', text: 'replaced\n' });
    expect(files.get('w/h2')).toMatchObject({ type: 'file', text: 'h\n', sha256: files.get('w/h1')!.sha256 });
    expect(files.get('w/keep')).toMatchObject({ type: 'dir', mode: 0o700 });
    expect(files.get('ln')).toMatchObject({ type: 'symlink', linkTarget: '/w/file' });
    expect(files.get('w/h1')).toMatchObject({ uid: 1000, gid: 2000 });
  });
});

describe('compareImages', () => {
  const snap = (config: Record<string, unknown>, files: [string, object][]): ImageSnapshot => ({
    config: normalizeConfig(config), files: new Map(files.map(([p, e]) => [p, { type: 'file', mode: 0o644, uid: 0, gid: 0, ...e }])) as ImageSnapshot['files'], mediaType: '',
  });
  it('treats absent, null and empty alike and reports every other difference', () => {
    const a = snap({ Env: ['A=1'], Cmd: [], Volumes: {}, Healthcheck: { Test: ['CMD', 'x'], Interval: 0 } }, [['a', { sha256: '1' }], ['b', {}]]);
    const b = snap({ Env: ['A=1'], Healthcheck: { Test: ['CMD', 'x'] }, User: 'app' }, [['a', { sha256: '2' }], ['c', {}]]);
    expect(compareImages(a, b).map((d) => `${d.where}:${d.key}`)).toEqual(['config:User', 'fs:a', 'fs:b', 'fs:c']);
  });
});
