/**
 * findEngine: `buildah --version` once per binary, its answer kept beside the build keys under the binary's identity,
 * so that an unchanged build starts no Buildah process. A wrapper first in PATH counts the calls and runs the real
 * /usr/bin/buildah.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_KNOWN_ENGINES, findEngine } from '../../../src/kimia/buildah/engine.js';

let dir: string;
let env: Record<string, string>;
const calls = async () => (await readFile(join(dir, 'calls'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
const wrapper = (extra = '') => writeFile(join(dir, 'bin', 'buildah'), `#!/bin/sh\n${extra}echo "$*" >> ${join(dir, 'calls')}\nexec /usr/bin/buildah "$@"\n`, { mode: 0o755 });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kimia-engine-'));
  await mkdir(join(dir, 'bin'));
  await wrapper();
  env = { PATH: `${join(dir, 'bin')}:/usr/bin:/bin` };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('findEngine', () => {
  it('runs buildah --version once per binary when a known-engines file is given, and every time without one', async () => {
    const known = join(dir, 'keys', 'engines');
    const first = await findEngine(env, known);
    expect(first.path).toBe(join(dir, 'bin', 'buildah'));
    expect(first.engine?.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(first.identity).toContain(join(dir, 'bin', 'buildah'));
    expect(await calls()).toBe(1);
    expect((await stat(known)).mode & 0o777).toBe(0o600);

    expect(await findEngine(env, known)).toEqual(first);
    expect(await calls()).toBe(1);

    await findEngine(env);
    expect(await calls()).toBe(2);
  });

  it('a replaced binary is another identity: asked again', async () => {
    const known = join(dir, 'engines');
    const first = await findEngine(env, known);
    await wrapper('# a new package\n');
    const second = await findEngine(env, known);
    expect(second.identity).not.toBe(first.identity);
    expect(await calls()).toBe(2);
  });

  it('an unreadable or foreign file is ignored; the file keeps at most MAX_KNOWN_ENGINES binaries', async () => {
    const known = join(dir, 'engines');
    await writeFile(known, 'not json');
    expect((await findEngine(env, known)).engine).toBeDefined();
    const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`/old/buildah-${i}:1:2:3:4`, '1.2.3']));
    await writeFile(known, JSON.stringify({ ...many, '/x:1:2:3:4': 'not a version' }));
    await wrapper('# another\n');
    const found = await findEngine(env, known);
    const kept = JSON.parse(await readFile(known, 'utf8')) as Record<string, string>;
    expect(Object.keys(kept)).toHaveLength(MAX_KNOWN_ENGINES);
    expect(kept[found.identity!]).toBe(found.engine!.version);
    expect(Object.values(kept)).not.toContain('not a version');
  });

  it('no buildah on PATH: nothing found, nothing written', async () => {
    const known = join(dir, 'engines');
    expect(await findEngine({ PATH: join(dir, 'nowhere') }, known)).toEqual({});
    await expect(stat(known)).rejects.toThrow();
  });
});
