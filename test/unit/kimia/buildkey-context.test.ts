import { afterAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashContext } from '../../../src/kimia/buildkey/context.js';
import { ignoreMatcher } from '../../../src/kimia/buildkey/ignore.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function context(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kimia-ctx-'));
  dirs.push(dir);
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'a.txt'), 'alpha\n');
  await writeFile(join(dir, 'b.txt'), 'bravo\n');
  await writeFile(join(dir, 'ignored.log'), 'noise\n');
  await symlink('src/a.txt', join(dir, 'link'));
  const past = new Date(Date.now() - 60_000);
  for (const f of ['src/a.txt', 'b.txt', 'ignored.log']) await utimes(join(dir, f), past, past);
  return dir;
}

describe('hashContext', () => {
  const ignore = ignoreMatcher('*.log\n');

  it('is stable, ignores mtime and ignored files; content, mode, symlink target and new files change it', async () => {
    const dir = await context();
    const first = await hashContext(dir, ignore);
    expect(first.files).toBe(2);
    expect((await hashContext(dir, ignore)).digest).toBe(first.digest);
    await utimes(join(dir, 'b.txt'), new Date(2001, 0, 1), new Date(2001, 0, 1));
    await writeFile(join(dir, 'ignored.log'), 'other noise\n');
    expect((await hashContext(dir, ignore)).digest).toBe(first.digest);
    const changes: [string, () => Promise<void>][] = [
      ['content', () => writeFile(join(dir, 'b.txt'), 'BRAVO\n')],
      ['mode', () => chmod(join(dir, 'b.txt'), 0o600)],
      ['symlink', async () => { await unlink(join(dir, 'link')); await symlink('b.txt', join(dir, 'link')); }],
      ['new file', () => writeFile(join(dir, 'src', 'c.txt'), '')],
      ['new folder', () => mkdir(join(dir, 'empty'))],
    ];
    let previous = (await hashContext(dir, ignore)).digest;
    for (const [what, change] of changes) {
      await change();
      const now = (await hashContext(dir, ignore)).digest;
      expect(now, what).not.toBe(previous);
      previous = now;
    }
  });

  it('reuses content hashes from the stat cache, except for a file rewritten since (ctime), or too recent to trust', async () => {
    const dir = await context();
    const first = await hashContext(dir, ignore);
    expect(first.reused).toBe(0);
    const second = await hashContext(dir, ignore, first.cache);
    expect(second.reused).toBe(2);
    expect(second.digest).toBe(first.digest);
    // same size, mtime put back: only ctime tells, and it does
    const st = (await import('node:fs')).statSync(join(dir, 'b.txt'));
    await writeFile(join(dir, 'b.txt'), 'BRAVO\n');
    await utimes(join(dir, 'b.txt'), st.atime, st.mtime);
    const third = await hashContext(dir, ignore, second.cache);
    expect(third.reused).toBe(1);
    expect(third.digest).not.toBe(first.digest);
    // a file modified just before the cache was written is hashed again next time (racy timestamps)
    await writeFile(join(dir, 'src', 'a.txt'), 'ALPHA\n');
    const fourth = await hashContext(dir, ignore, third.cache);
    const fifth = await hashContext(dir, ignore, fourth.cache);
    expect(fifth.reused).toBe(1);
    expect(fifth.digest).toBe(fourth.digest);
  });
});
