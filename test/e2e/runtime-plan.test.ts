/**
 * `runcvm plan` against the real `create` on one real bundle (a busybox rootfs folder, a volume, DEBUG logging): the
 * plan is printed first (`bin/runcvm plan --json`), then `bin/runcvm-runtime create` runs with a stand-in runc that
 * only records how it was called. What create left is what the plan said: the LaunchSpec byte for byte, the
 * launcher's config.json (in runcvm's private bundle) with its process and mounts, every file the plan writes and
 * the disks it builds, runc called with the engine's command line pointed at that bundle; the caller's bundle
 * untouched. A second plan sees the base disk now cached and says it will reuse it. (Unit level, on every bundle
 * fixture: test/unit/runcvm/create-plan.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { CloserStack } from '../../src/core/fsx/index.js';
import { projectPath } from '../../src/core/paths.js';
import { busyboxRootfs } from '../harness/images.js';
import { runtimeFixture, type RuntimeFixture } from './runcvm/setup.js';

const closers = new CloserStack();
let fx: RuntimeFixture;
let bundle: string;
let env: Record<string, string>;
const ID = 'plan-e2e';

interface PlanJson {
  hypervisor: { name: string };
  actions: string[];
  launchSpec: unknown;
  config: { process: unknown; mounts: { destination: string; source?: string }[] };
}

async function plan(): Promise<PlanJson> {
  const r = await run(projectPath('bin', 'runcvm'), ['plan', bundle, '--id', ID, '--json'], { env, timeoutMs: 60_000 });
  return JSON.parse(r.stdout) as PlanJson;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

describe('runcvm plan and create agree on a real bundle', () => {
  beforeAll(async () => {
    fx = await runtimeFixture(closers);
    bundle = join(fx.dir, 'bundle');
    await busyboxRootfs(join(bundle, 'rootfs'));
    const volume = join(fx.dir, 'volume');
    await mkdir(volume);
    const config = {
      ociVersion: '1.0.2-dev',
      process: { user: { uid: 0, gid: 0 }, args: ['sh', '-c', 'echo hi'], env: ['PATH=/bin:/usr/bin', 'RUNCVM_LOG_LEVEL=DEBUG'], cwd: '/' },
      root: { path: 'rootfs' },
      hostname: ID,
      mounts: [{ destination: '/data', type: 'bind', source: volume, options: ['rbind', 'rw'] }],
      linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] },
    };
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
    // a runc that records how create called it, and starts nothing
    const fakeRunc = join(fx.dir, 'fake-runc');
    await writeFile(fakeRunc, `#!/bin/sh\nprintf '%s\\n' "$@" > '${join(fx.dir, 'runc-argv')}'\n`);
    await chmod(fakeRunc, 0o755);
    env = { RUNCVM_STATE_DIR: fx.stateDir, RUNCVM_CACHE_DIR: fx.cacheDir, RUNCVM_LOG_DIR: fx.logDir, RUNCVM_RUNC: fakeRunc };
  });
  afterAll(async () => {
    await rm(join(fx.stateDir, ID), { recursive: true, force: true });
    await rm(join(fx.logDir, `runcvm-${ID}.debug`), { force: true });
    await closers.close();
  });

  it('create leaves exactly what the plan printed', async () => {
    const original = await readFile(join(bundle, 'config.json'), 'utf8');
    const before = await plan();
    expect(before.hypervisor.name).toBe('qemu');
    expect(before.actions.find((a) => a.startsWith('base disk'))).toMatch(/: build it from the file tree fingerprint/);
    const argv = ['create', '--bundle', bundle, ID];
    const r = await run(projectPath('bin', 'runcvm-runtime'), argv, { env, reject: false, timeoutMs: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);

    // runc got the engine's command line pointed at runcvm's private bundle, as the plan's last action says
    const privateBundle = join(fx.stateDir, ID, 'bundle');
    const runcArgv = ['create', '--bundle', privateBundle, ID];
    expect(before.actions.at(-1)).toBe(`run ${join(fx.dir, 'fake-runc')} ${runcArgv.join(' ')}`);
    expect((await readFile(join(fx.dir, 'runc-argv'), 'utf8')).trim().split('\n')).toEqual(runcArgv);
    // the caller's bundle is as the engine wrote it
    expect(await readFile(join(bundle, 'config.json'), 'utf8')).toBe(original);
    // the hand-off and the launcher's config, as planned
    expect(JSON.parse(await readFile(join(fx.stateDir, ID, 'launch.json'), 'utf8'))).toEqual(before.launchSpec);
    const config = JSON.parse(await readFile(join(privateBundle, 'config.json'), 'utf8')) as PlanJson['config'];
    expect(config.process).toEqual(before.config.process);
    expect(config.mounts).toEqual(before.config.mounts);
    expect(config.mounts.find((m) => m.destination === '/.runcvm/vols/v0')?.source).toBe(join(fx.dir, 'volume'));
    // every file and folder the plan makes is there, unless a later action removes it again (the staging folder)
    const there = new Map<string, boolean>();
    for (const a of before.actions) {
      const made = /^(?:write|mkdir(?: -p)?|launcher root) (\S+)/.exec(a)?.[1];
      // the launcher's root holds its mount points: folders (a trailing /) and files
      const points = /^launcher root (\S+) 0755: mount points (.*)$/.exec(a);
      if (points) for (const p of points[2]!.split(' ')) there.set(join(points[1]!, p), true);
      const removed = /^remove (\S+)/.exec(a)?.[1];
      if (made) there.set(made, true);
      if (removed) for (const p of there.keys()) if (p === removed || p.startsWith(`${removed}/`)) there.set(p, false);
    }
    expect([...there.values()].filter(Boolean).length).toBeGreaterThan(3);
    for (const [p, expected] of there) expect(await exists(p), p).toBe(expected);
    const baseDisk = /^base disk (\S+):/.exec(before.actions.find((a) => a.startsWith('base disk'))!)![1]!;
    expect(await exists(baseDisk)).toBe(true);
    // the writable disk carries the guest overlay's upper/ (with the guest init) and work/
    const upper = join(fx.stateDir, ID, 'upper.ext4');
    const ls = await run('debugfs', ['-R', 'ls -p /upper/.runcvm/guest/bin', upper], { reject: false });
    expect(ls.stdout).toMatch(/\/runcvm-init\//);
    expect((await run('debugfs', ['-R', 'stat /work', upper], { reject: false })).stderr).not.toMatch(/not found/i);
    expect(await exists(join(fx.logDir, `runcvm-${ID}.debug`))).toBe(true);

    // the same bundle again: the facts changed (the base disk is cached now), and so does the plan
    const after = await plan();
    expect(after.actions.find((a) => a.startsWith('base disk'))?.startsWith(`base disk ${baseDisk}: reuse the cached disk (`)).toBe(true);
  });
});
