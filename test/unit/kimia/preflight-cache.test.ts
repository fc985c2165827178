/**
 * The remembered namespace probe (src/kimia/preflight/cache.ts): believed only for the same boot, UID, namespaces,
 * capabilities, storage root and volume; bounded; ignored when someone else could have written it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_ENTRIES, cacheFile, forgetPass, namespaceKey, passedBefore, readKeyInput, rememberPass, statusLines, type NamespaceKeyInput,
} from '../../../src/kimia/preflight/cache.js';

let dir: string;
let file: string;
const input: NamespaceKeyInput = {
  bootId: '3c96fdb5-b450-41d6-8319-23d32390b2fb', uid: 1000, gid: 1000, userNs: 'user:[4026531837]', mntNs: 'mnt:[4026531841]',
  status: 'CapEff: 0000000000000000;CapBnd: 000001ffffffffff;NoNewPrivs: 0;Seccomp: 0', maxUserNamespaces: '15000',
  storageDriver: 'overlay', storageRoot: '/home/kimia/.local/share/containers/storage', probeDir: '2049:1234',
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kimia-preflight-cache-'));
  file = join(dir, 'cache', 'kimia', 'preflight.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('preflight namespace cache', () => {
  it('a pass is remembered for the same inputs, in a 0600 file', async () => {
    expect(passedBefore(file, input)).toBe(false);
    rememberPass(file, input);
    expect(passedBefore(file, input)).toBe(true);
    const { statSync } = await import('node:fs');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'cache', 'kimia')).mode & 0o777).toBe(0o700);
  });

  it('another boot, storage root, volume, namespace, UID, driver or capability set is another key', () => {
    rememberPass(file, input);
    const changes: Partial<NamespaceKeyInput>[] = [
      { bootId: '00000000-0000-0000-0000-000000000000' }, { storageRoot: '/cache/storage' }, { probeDir: '2049:9999' },
      { mntNs: 'mnt:[4026532000]' }, { userNs: 'user:[4026532001]' }, { uid: 1001 }, { storageDriver: 'vfs' },
      { status: input.status.replace('NoNewPrivs: 0', 'NoNewPrivs: 1') }, { maxUserNamespaces: '0' },
    ];
    for (const c of changes) expect(passedBefore(file, { ...input, ...c }), JSON.stringify(c)).toBe(false);
    expect(passedBefore(file, input)).toBe(true);
  });

  it('a new boot drops every entry of the old one', async () => {
    rememberPass(file, input);
    rememberPass(file, { ...input, storageRoot: '/other' });
    const next = { ...input, bootId: 'ffffffff-0000-0000-0000-000000000000' };
    rememberPass(file, next);
    const saved = JSON.parse(await readFile(file, 'utf8')) as { bootId: string; entries: unknown[] };
    expect(saved.bootId).toBe(next.bootId);
    expect(saved.entries).toHaveLength(1);
    expect(passedBefore(file, input)).toBe(false);
    expect(passedBefore(file, next)).toBe(true);
  });

  it(`holds at most ${MAX_ENTRIES} keys, the oldest dropped`, async () => {
    for (let i = 0; i < MAX_ENTRIES + 5; i++) rememberPass(file, { ...input, storageRoot: `/s${i}` });
    const saved = JSON.parse(await readFile(file, 'utf8')) as { entries: unknown[] };
    expect(saved.entries).toHaveLength(MAX_ENTRIES);
    expect(passedBefore(file, { ...input, storageRoot: '/s0' })).toBe(false);
    expect(passedBefore(file, { ...input, storageRoot: `/s${MAX_ENTRIES + 4}` })).toBe(true);
  });

  it('forgetPass removes only that key', () => {
    rememberPass(file, input);
    rememberPass(file, { ...input, storageRoot: '/other' });
    forgetPass(file, input);
    expect(passedBefore(file, input)).toBe(false);
    expect(passedBefore(file, { ...input, storageRoot: '/other' })).toBe(true);
  });

  it('is not believed when others can write it, when it belongs to another UID, or when it is not a cache file', async () => {
    rememberPass(file, input);
    await chmod(file, 0o620);
    expect(passedBefore(file, input)).toBe(false);
    await chmod(file, 0o600);
    expect(passedBefore(file, input)).toBe(true);
    if (process.getuid?.() === 0) {
      const { chown } = await import('node:fs/promises');
      await chown(file, 4242, 4242);
      expect(passedBefore(file, input)).toBe(false);
      await chown(file, 0, 0);
    }
    await writeFile(file, '{"v":1,"bootId":"x","entries":[{"key":"not-hex","at":"now"}]}\n', { mode: 0o600 });
    expect(passedBefore(file, { ...input, bootId: 'x' })).toBe(false);
    await writeFile(file, 'garbage', { mode: 0o600 });
    expect(passedBefore(file, input)).toBe(false);
    rememberPass(file, input); // a broken file is replaced, not a reason to fail
    expect(passedBefore(file, input)).toBe(true);
  });

  it('reads its inputs from /proc: a new boot id is a new key', async () => {
    const proc = join(dir, 'proc');
    await mkdir(join(proc, 'sys/kernel/random'), { recursive: true });
    await mkdir(join(proc, 'sys/user'), { recursive: true });
    await mkdir(join(proc, 'self/ns'), { recursive: true });
    await writeFile(join(proc, 'sys/kernel/random/boot_id'), 'boot-a\n');
    await writeFile(join(proc, 'sys/user/max_user_namespaces'), '15000\n');
    await writeFile(join(proc, 'self/status'), 'Name:\tnode\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\nNoNewPrivs:\t0\nSeccomp:\t0\nVmRSS:\t100 kB\n');
    await symlink('user:[4026531837]', join(proc, 'self/ns/user'));
    await symlink('mnt:[4026531841]', join(proc, 'self/ns/mnt'));
    const storage = { root: join(dir, 'home', 'storage'), driver: 'overlay' };
    await mkdir(storage.root, { recursive: true });
    const a = readKeyInput(storage, proc)!;
    expect(a).toMatchObject({ bootId: 'boot-a', userNs: 'user:[4026531837]', mntNs: 'mnt:[4026531841]', maxUserNamespaces: '15000', storageRoot: storage.root });
    expect(a.status).toBe('CapEff: 0000000000000000;CapBnd: 000001ffffffffff;NoNewPrivs: 0;Seccomp: 0');
    rememberPass(file, a);
    await writeFile(join(proc, 'sys/kernel/random/boot_id'), 'boot-b\n');
    const b = readKeyInput(storage, proc)!;
    expect(namespaceKey(b)).not.toBe(namespaceKey(a));
    expect(passedBefore(file, b)).toBe(false);
    // the same path on another volume (another folder there: another inode; the old one kept, so it is not reused)
    const { rename } = await import('node:fs/promises');
    await rename(join(dir, 'home'), join(dir, 'home-old'));
    await mkdir(storage.root, { recursive: true });
    expect(readKeyInput(storage, proc)!.probeDir).not.toBe(a.probeDir);
    // something missing: no key, so nothing is cached
    await rm(join(proc, 'self/ns/mnt'));
    expect(readKeyInput(storage, proc)).toBeUndefined();
  });

  it('lives in $XDG_CACHE_HOME/kimia when that is absolute, else $HOME/.cache/kimia', () => {
    expect(cacheFile({ XDG_CACHE_HOME: '/x/cache' }, '/home/kimia')).toBe('/x/cache/kimia/preflight.json');
    expect(cacheFile({ XDG_CACHE_HOME: 'relative' }, '/home/kimia')).toBe('/home/kimia/.cache/kimia/preflight.json');
    expect(cacheFile({}, '/home/kimia')).toBe('/home/kimia/.cache/kimia/preflight.json');
    expect(statusLines('CapPrm:\t0\nCapEff:\t1\nVmRSS:\t2\n')).toBe('CapPrm: 0;CapEff: 1');
  });
});
