/**
 * Issue 16, causes 8 and 9: runcvm leaves the caller's bundle as it found it (the OCI runtime suites reuse a bundle,
 * and so do people), cleans up after a foreground `run`, and keeps its base-disk cache within a bound.
 * (create writes the launcher's config into runcvm's private bundle under the state folder: runtime/plan-create.ts.)
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloserStack } from '../../src/core/fsx/index.js';
import { projectPath } from '../../src/core/paths.js';
import { run } from '../../src/core/exec/index.js';
import { conformanceFixture, type ConformanceFixture } from './conformance/bundles.js';

const closers = new CloserStack();
let cf: ConformanceFixture;
let guestRelease: string;
const exists = (p: string) => stat(p).then(() => true, () => false);

describe('conformance: the caller\'s bundle and the host stay clean (issue 16 causes 8 and 9)', { timeout: 480_000 }, () => {
  beforeAll(async () => {
    cf = await conformanceFixture(closers);
    guestRelease = (await readFile(projectPath('var', 'assets', 'kernel', 'release'), 'utf8')).trim();
    expect(guestRelease).not.toBe(release());
  });
  afterAll(async () => {
    await closers.close();
  });

  // cause 8: create writes the launcher's config into a bundle of its own under the state folder and runs runc with
  // --bundle there; the launcher's root is a folder runcvm owns, not the image's rootfs
  it('cause 8: the bundle is untouched (config.json byte for byte, no /.runcvm in the rootfs); running it again, and with plain runc, works', async () => {
    const b = await cf.bundle((s) => {
      s.process!.args = ['uname', '-r'];
    });
    const config = await readFile(join(b, 'config.json'), 'utf8');
    const rootfs = (await readdir(join(b, 'rootfs'))).sort();

    expect(await cf.run('runcvm', b, cf.newId('twice-1'))).toEqual({ exit: 0, stdout: `${guestRelease}\n`, stderr: '' });
    expect(await readFile(join(b, 'config.json'), 'utf8')).toBe(config);
    expect((await readdir(join(b, 'rootfs'))).sort()).toEqual(rootfs);
    // the same bundle again (runtime-tools and people do this)
    expect(await cf.run('runcvm', b, cf.newId('twice-2'))).toEqual({ exit: 0, stdout: `${guestRelease}\n`, stderr: '' });
    // and with plain runc: the host's kernel, i.e. runc ran the workload itself, not runcvm's launcher
    expect(await cf.run('runc', b, cf.newId('twice-runc'))).toEqual({ exit: 0, stdout: `${release()}\n`, stderr: '' });
  });

  // runc's record names the bundle runc was given (runcvm's private one): create puts the caller's back
  // (runtime/apply-create.ts relabelBundle), so `state`, `list` and OCI hooks show what the caller gave
  it('`state` after create reports the caller\'s bundle, as runc does', async () => {
    const seen = {} as Record<'runc' | 'runcvm', string>;
    const bundles = {} as Record<'runc' | 'runcvm', string>;
    for (const rt of ['runc', 'runcvm'] as const) {
      bundles[rt] = await cf.bundle((s) => {
        s.process!.args = ['true'];
      });
      const id = cf.newId(`state-${rt}`);
      expect(await cf.run(rt, bundles[rt], id, { verb: 'create' }), `${rt} create`).toMatchObject({ exit: 0 });
      const st = await cf.verb(rt, ['state', id]);
      expect(st.exitCode, st.stderr).toBe(0);
      const state = JSON.parse(st.stdout) as { bundle: string; status: string };
      expect(state.status).toBe('created');
      seen[rt] = state.bundle;
      await cf.verb(rt, ['delete', '-f', id]);
    }
    expect(seen.runc).toBe(bundles.runc);
    expect(seen.runcvm).toBe(bundles.runcvm);
  });

  // cause 9: a foreground `run` ends with runc's own delete, which never reaches the dispatcher: create removes the
  // state folder and the debug log once runc returns (the log stays with RUNCVM_LOG_LEVEL=DEBUG, as after delete)
  it('cause 9: a foreground run leaves no state folder and no debug log behind', async () => {
    const id = cf.newId('fg');
    const b = await cf.bundle((s) => {
      s.process!.args = ['echo', 'done'];
    });
    expect(await cf.run('runcvm', b, id)).toEqual({ exit: 0, stdout: 'done\n', stderr: '' });
    expect(await exists(join(cf.fx.stateDir, id))).toBe(false);
    expect(await exists(join(cf.fx.logDir, `runcvm-${id}.debug`))).toBe(false);
  });

  // cause 9: storage/apply.ts ensureBaseDisk evicts least recently used disks beyond RUNCVM_CACHE_MAX, a node-level
  // size; never the disk just built, nor one a container uses
  it('cause 9: the base-disk cache stays within RUNCVM_CACHE_MAX however many bundles are created, and keeps the disk a container uses', async () => {
    const cache = join(cf.dir, 'bounded-cache');
    const bounded = await cf.fx.wrapperWith('bounded-cache', { RUNCVM_CACHE_DIR: cache, RUNCVM_CACHE_MAX: '100M' });
    let last = '';
    let inUse = '';
    const keptId = cf.newId('cache-kept');
    for (let i = 0; i < 4; i++) {
      // each bundle is a new copy of the image: a new disk (about 36 MiB for busybox)
      const b = await cf.bundle((s) => {
        s.process!.args = ['true'];
      });
      const id = i === 0 ? keptId : cf.newId(`cache-${i}`);
      const created = await cf.run('runcvm', b, id, { verb: 'create', binary: bounded });
      expect(created.exit, created.stderr).toBe(0);
      // the first container stays (created): its disk is in use and must survive the others' builds
      if (i === 0) inUse = (await readFile(join(cf.fx.stateDir, id, 'base-disk'), 'utf8')).trim();
      else expect((await cf.verb('runcvm', ['delete', '-f', id], { binary: bounded })).exitCode).toBe(0);
      const disks = (await readdir(cache)).filter((n) => n.endsWith('.ext4'));
      const newest = await Promise.all(disks.map(async (n) => ({ n, t: (await stat(join(cache, n))).mtimeMs })));
      last = newest.sort((a, z) => z.t - a.t)[0]?.n ?? '';
    }
    const du = await run('du', ['-sb', '--apparent-size', cache]);
    expect(Number(du.stdout.split(/\s/)[0])).toBeLessThanOrEqual(100 * 1024 * 1024);
    expect(last).not.toBe('');
    expect(inUse.startsWith(`${cache}/`)).toBe(true);
    expect(await exists(inUse)).toBe(true);
    expect(await exists(join(cache, last))).toBe(true);
    expect((await cf.verb('runcvm', ['delete', '-f', keptId], { binary: bounded })).exitCode).toBe(0);
  });
});
