import { describe, expect, it } from 'vitest';
import { outputFiles, repositoryOf, withTag } from '../../../src/kimia/outputs/index.js';
import { parseCommand } from '../../../src/kimia/cli/parse.js';

describe('Kaniko output formats', () => {
  it('repository and tag parsing keeps registry ports', () => {
    expect(repositoryOf('reg:5000/a/b:1')).toBe('reg:5000/a/b');
    expect(repositoryOf('reg:5000/a/b')).toBe('reg:5000/a/b');
    expect(withTag('reg:5000/a/b')).toBe('reg:5000/a/b:latest');
  });

  it('writes digest, name@digest and name:tag@digest, one line per destination', () => {
    const c = parseCommand(['-d', 'r:1/a:1', '-d', 'r:1/b', '--digest-file=/d', '--image-name-with-digest-file=/n', '--image-name-tag-with-digest-file=/t'], {});
    if (c.kind !== 'build') throw new Error();
    const d = 'sha256:' + 'a'.repeat(64);
    expect(outputFiles(c.request, [{ destination: 'r:1/a:1', digest: d }, { destination: 'r:1/b', digest: d }])).toEqual([
      { path: '/d', content: d },
      { path: '/n', content: `r:1/a@${d}\nr:1/b@${d}\n` },
      { path: '/t', content: `r:1/a:1@${d}\nr:1/b:latest@${d}\n` },
    ]);
  });
});
