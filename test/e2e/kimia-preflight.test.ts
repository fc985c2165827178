/**
 * Preflight runs before every build and `kimia check-environment` reports it: real pods' mistakes (NoNewPrivs,
 * dropped SETUID/SETGID, an unwritable cache volume, a full disk) stop the build with the guide's text, the cause
 * and the fix, exit 6, before buildah runs. Also the command line as users meet it: flag forms, Kaniko flags,
 * unknown flags, JSON errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, chmod, chown, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { buildKimia, ensureSubIds, kimia, workspace, type Workspace } from './kimia-helpers.js';
import { kimiaForBuildUser } from '../harness/build-user.js';

let ws: Workspace;

beforeAll(async () => {
  await Promise.all([buildKimia(), ensureSubIds()]);
  ws = await workspace('kimia-pre');
  await ws.write('ctx/Dockerfile', 'FROM scratch\nCOPY Dockerfile /\n');
});

afterAll(async () => {
  await ws?.cleanup();
});

/** kimia as uid 1000 under extra setpriv restrictions (what a badly configured pod looks like). */
async function kimiaRestricted(restrict: string[], args: string[], home = ws.home) {
  const { Redactor } = await import('../../src/core/redact.js');
  const r = await run('setpriv', ['--reuid', '1000', '--regid', '1000', '--init-groups', ...restrict, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', `HOME=${home}`,
    process.execPath, await kimiaForBuildUser(), ...args], { reject: false, redactor: new Redactor() });
  return { ...r, all: `${r.stdout}\n${r.stderr}` };
}

describe('check-environment', () => {
  it('prints the full report for a good rootless environment, overlay probed, in well under a second', async () => {
    const r = await kimia(['check-environment', '--storage-driver=overlay'], { home: ws.home });
    expect(r.exitCode, r.all).toBe(0);
    for (const check of ['buildah', 'user namespaces', 'capabilities', 'no_new_privs', 'newuidmap/newgidmap', 'subordinate IDs', 'storage driver', 'storage root', 'free space', 'docker config']) {
      expect(r.stdout).toMatch(new RegExp(`\\[(ok  |WARN)\\] ${check.replace('/', '\\/')}`));
    }
    expect(r.stdout).toContain('overlay mounts inside a user namespace');
    const ms = Number(/preflight took (\d+) ms/.exec(r.stdout)?.[1]);
    console.log(`preflight (check-environment, overlay) took ${ms} ms`);
    expect(ms).toBeGreaterThan(0);
  });

  it('--log-format json gives one object per check', async () => {
    const r = await kimia(['check-environment', '--log-format=json'], { home: ws.home });
    const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { check: string; status: string });
    expect(records.map((x) => x.check)).toContain('user namespaces');
    expect(records.at(-1)!.check).toBe('summary');
  });
});

describe('preflight stops bad pods before buildah runs (exit 6)', () => {
  it('NoNewPrivs (allowPrivilegeEscalation: false)', async () => {
    const r = await kimiaRestricted(['--no-new-privs'], ['-c', ws.path('ctx'), '--no-push']);
    expect(r.exitCode, r.all).toBe(6);
    expect(r.stderr).toContain('error: permission denied while trying to connect');
    expect(r.stderr).toContain('NoNewPrivs is set');
    expect(r.stderr).toContain('allowPrivilegeEscalation: true');
    expect(r.stderr).not.toMatch(/step 1/);
  });

  it('a passed user-namespace probe is remembered for the next build of this boot; check-environment and a restricted run still probe', async () => {
    const home = ws.path('home-ns-cache');
    await mkdir(home);
    await chown(home, 1000, 1000);
    const build = () => kimia(['-c', ws.path('ctx'), '--no-push', '--storage-driver=overlay'], { home });
    const first = await build();
    expect(first.exitCode, first.all).toBe(0);
    expect(first.stderr).not.toContain('passed earlier this boot');
    expect(first.stderr).not.toContain('timing'); // the phase timing is a -v debug line only
    const second = await build();
    expect(second.exitCode, second.all).toBe(0);
    expect(second.stderr).toContain('(its user namespace probe passed earlier this boot)');
    const cache = JSON.parse(await readFile(join(home, '.cache', 'kimia', 'preflight.json'), 'utf8')) as { bootId: string; entries: unknown[] };
    expect(cache.bootId).toBe((await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim());
    expect(cache.entries).toHaveLength(1);
    const check = await kimia(['check-environment', '--storage-driver=overlay'], { home });
    expect(check.exitCode, check.all).toBe(0);
    expect(check.stdout).toContain('overlay mounts inside a user namespace\n');
    expect(check.stdout).not.toContain('passed earlier this boot');
    // the same HOME and storage, NoNewPrivs set: another key, and the pod is still refused
    const restricted = await kimiaRestricted(['--no-new-privs'], ['-c', ws.path('ctx'), '--no-push', '--storage-driver=overlay'], home);
    expect(restricted.exitCode, restricted.all).toBe(6);
    expect(restricted.stderr).toContain('NoNewPrivs is set');
    expect(restricted.stderr).not.toContain('passed earlier this boot');
  });

  it('SETUID/SETGID dropped from the bounding set', async () => {
    const r = await kimiaRestricted(['--bounding-set', '-setuid,-setgid'], ['check-environment']);
    expect(r.exitCode, r.all).toBe(6);
    expect(r.stdout).toContain('[FAIL] capabilities');
    expect(r.stdout).toContain('add: [SETUID, SETGID]');
  });

  it('a cache volume not writable by UID 1000: the guide text and the fsGroup fix', async () => {
    const cache = ws.path('root-owned-cache');
    await mkdir(cache);
    await chmod(cache, 0o755); // owned by root
    const r = await kimia(['-c', ws.path('ctx'), '--no-push', '--cache', `--cache-dir=${cache}`], { home: ws.home });
    expect(r.exitCode, r.all).toBe(6);
    expect(r.stderr).toContain('error: failed to write to cache directory: permission denied');
    expect(r.stderr).toContain(`Cache directory ${cache} is not writable by UID 1000`);
    expect(r.stderr).toContain('fsGroup: 1000');
    expect(r.stderr).not.toMatch(/step 1/);
  });

  it('not enough free space: "error building: no space left on device" and the ephemeral-storage fix', async () => {
    const r = await kimia(['-c', ws.path('ctx'), '--no-push'], { home: ws.home, env: { KIMIA_MIN_FREE_SPACE: '1000T' } });
    expect(r.exitCode, r.all).toBe(6);
    expect(r.stderr).toContain('error building: no space left on device');
    expect(r.stderr).toContain('ephemeral-storage: "20Gi"');
  });

  it('--log-format json renders the error as JSON', async () => {
    const r = await kimia(['-c', ws.path('ctx'), '--no-push', '--log-format', 'json'], { home: ws.home, env: { KIMIA_MIN_FREE_SPACE: '1000T' } });
    expect(r.exitCode).toBe(6);
    const last = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(last).toMatchObject({ level: 'error', code: 'NO_SPACE', exitCode: 6, message: 'error building: no space left on device' });
    expect(String(last.fix)).toContain('ephemeral-storage');
  });
});

describe('command line', () => {
  it('builds with a scratch Dockerfile (no registry) in both flag forms', async () => {
    for (const args of [['--context', ws.path('ctx'), '--no-push', '--storage-driver', 'overlay'], [`--context=${ws.path('ctx')}`, '--no-push=true', '--storage-driver=overlay']]) {
      const r = await kimia(args, { home: ws.home });
      expect(r.exitCode, r.all).toBe(0);
    }
  });

  it('unknown flag: exit 2 and a suggestion; refused Kaniko flag: exit 2 and the alternative; no-op Kaniko flag: a note', async () => {
    const unknown = await kimia(['--destnation=r/a'], { home: ws.home });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('did you mean --destination?');
    const refused = await kimia(['--ignore-path=/var', '-d', 'r/a'], { home: ws.home });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('.dockerignore');
    const noop = await kimia(['-c', ws.path('ctx'), '--no-push', '--snapshot-mode=redo', '--single-snapshot', '--storage-driver=overlay'], { home: ws.home });
    expect(noop.exitCode, noop.all).toBe(0);
    expect(noop.stderr).toContain('--snapshot-mode accepted for Kaniko compatibility');
  });

  it('a failing step is exit 3 with its Dockerfile line and buildah\'s error quoted', async () => {
    await ws.write('bad/Dockerfile', 'FROM scratch\nCOPY nothing-here /x\n');
    const r = await kimia(['-c', ws.path('bad'), '--no-push', '--storage-driver=overlay'], { home: ws.home });
    expect(r.exitCode, r.all).toBe(3);
    expect(r.stderr).toMatch(/error: COPY at Dockerfile:2 failed: .*nothing-here/);
  });

  it('--label, --custom-platform, --reproducible with SOURCE_DATE_EPOCH and --build-arg from the environment reach the image', async () => {
    await ws.write('meta/Dockerfile', 'FROM scratch\nARG http_proxy\nARG FLAVOR=vanilla\nLABEL proxy=$http_proxy flavor=$FLAVOR\nCOPY Dockerfile /\n');
    const tar = ws.path('meta.tar');
    const r = await kimia(['-c', ws.path('meta'), '--tar-path', tar, '--label', 'org.example.team=build', '--label=tier=1', '--custom-platform', 'linux/arm64',
      '--reproducible', '--build-arg', 'http_proxy', '--build-arg', 'FLAVOR', '--storage-driver=overlay', '--log-timestamp'], { home: ws.home, env: { SOURCE_DATE_EPOCH: '1700000000', http_proxy: 'http://proxy.local:3128' } });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stderr).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z step 1\/\d+: FROM scratch$/m);
    const { Redactor } = await import('../../src/core/redact.js');
    const info = JSON.parse((await run('skopeo', ['inspect', `docker-archive:${tar}`], { redactor: new Redactor() })).stdout) as { Labels: Record<string, string>; Architecture: string; Created: string };
    // FLAVOR is not in the environment: the bare --build-arg leaves the Dockerfile's default in place
    expect(info.Labels).toMatchObject({ 'org.example.team': 'build', tier: '1', proxy: 'http://proxy.local:3128', flavor: 'vanilla' });
    expect(info.Architecture).toBe('arm64');
    expect(info.Created).toBe('2023-11-14T22:13:20Z');
  });

  it('several --custom-platform values build a multi-platform manifest list', async () => {
    const layout = ws.path('multi-layout');
    const r = await kimia(['-c', ws.path('ctx'), '--no-push', '--custom-platform=linux/amd64,linux/arm64', '--oci-layout-path', layout, '--storage-driver=overlay'], { home: ws.home });
    expect(r.exitCode, r.all).toBe(0);
    const { Redactor } = await import('../../src/core/redact.js');
    const index = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${layout}`], { redactor: new Redactor() })).stdout) as { manifests: { platform?: { architecture: string } }[] };
    expect(index.manifests.map((m) => m.platform?.architecture).sort()).toEqual(['amd64', 'arm64']);
  });

  it('--dry-run prints the buildah commands of the plan without running them', async () => {
    const r = await kimia(['-c', ws.path('ctx'), '-d', '127.0.0.1:1/x:1', '--image-download-retry=4', '--compression=zstd', '--registry-mirror', 'mirror.local', '--dry-run'], { home: ws.home });
    expect(r.exitCode, r.all).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^buildah --root .* bud --isolation chroot .* --retry 4 /);
    expect(lines[1]).toMatch(/^buildah .* push .* --compression-format zstd .*docker:\/\/127\.0\.0\.1:1\/x:1$/);
  });

  it('version and help', async () => {
    expect((await kimia(['version'], { home: ws.home })).stdout).toMatch(/^kimia \d+\.\d+\.\d+/);
    const help = await kimia(['help'], { home: ws.home });
    expect(help.stdout).toContain('--image-name-tag-with-digest-file');
    expect(help.stdout).toContain('exit codes: 0 ok, 2 usage/config, 3 build, 4 push, 5 auth, 6 environment');
  });
});
