import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lookPathInRoot, resolveInRoot } from '../../../src/runcvm/runtime/lookpath.js';

const root = mkdtempSync(join(tmpdir(), 'lookpath-'));
mkdirSync(join(root, 'bin'));
mkdirSync(join(root, 'usr/bin'), { recursive: true });
writeFileSync(join(root, 'bin/busybox'), '', { mode: 0o755 });
writeFileSync(join(root, 'bin/data'), '', { mode: 0o644 });
symlinkSync('/bin/busybox', join(root, 'bin/sh')); // absolute link: must resolve inside the rootfs
symlinkSync('../../bin/busybox', join(root, 'usr/bin/env'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('executable lookup inside the image (runc parity at create)', () => {
  const env = ['PATH=/usr/bin:/bin'];
  it('follows absolute symlinks inside the rootfs, never on the host', async () => {
    expect(await resolveInRoot(root, '/bin/sh')).toBe(join(root, 'bin/busybox'));
    expect(await resolveInRoot(root, '/usr/bin/env')).toBe(join(root, 'bin/busybox'));
    expect(await resolveInRoot(root, '/../../bin/busybox')).toBe(join(root, 'bin/busybox'));
  });
  it('finds commands on PATH, skips non-executables, and words failures as runc does', async () => {
    expect(await lookPathInRoot(root, 'sh', env, '/')).toEqual({ ok: true });
    expect(await lookPathInRoot(root, 'env', env, '/')).toEqual({ ok: true });
    expect(await lookPathInRoot(root, 'data', env, '/')).toEqual({ ok: false, message: 'exec: "data": executable file not found in $PATH' });
    expect(await lookPathInRoot(root, '/no/such', env, '/')).toEqual({ ok: false, message: 'exec: "/no/such": stat /no/such: no such file or directory' });
    expect(await lookPathInRoot(root, undefined, env, '/')).toEqual({ ok: true });
  });
});
