/**
 * Scenario tests for every heading of the Kimia troubleshooting guide (spec/kimia-troubleshooting.md). Each
 * `describe` is named after a heading; each reproduces the condition for real on this machine (a user namespace
 * whose max_user_namespaces is 0, a seccomp filter refusing CLONE_NEWUSER, a cache folder owned by another UID, a
 * registry that answers 401, a small tmpfs as the storage, a Git server without a token, a Dockerfile with
 * HEALTHCHECK built as OCI, a secret at /kaniko/.docker, an unresolvable registry name) and asserts BOTH the guide's
 * symptom text in kimia's own error AND that a check (`kimia check-environment`, the preflight of every build, or
 * `kimia lint` on the guide's "wrong" manifest) names the cause and the fix. kimia runs as uid 1000 through
 * bin/kimia, the way test/e2e/kimia-*.test.ts run it; docs/troubleshooting-map.md lists which test proves what.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, chown, mkdir, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { Redactor } from '../../src/core/redact.js';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { startGitServer, type GitServer } from '../harness/git-server.js';
import { buildKimia, chownTree, ensureSubIds, imageConfig, workspace, type Workspace } from './kimia-helpers.js';
import { kimiaForBuildUser } from '../harness/build-user.js';

const KIMIA = projectPath('bin', 'kimia');
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const OTHER_UID = 2000;

let reg: StartedRegistry;
let git: GitServer;
let ws: Workspace;
let dockerConfig: string;
let denyUserns: string;
let seq = 0;

interface Outcome { exitCode: number; stdout: string; stderr: string; all: string }
interface Finding { rule: string; level: string; message: string; fix: string; line: number }

/**
 * bin/kimia as uid 1000 with a minimal environment, optionally behind `wrap` (argv run as root first: a namespace
 * or seccomp helper that then execs setpriv) and with `restrict` (extra setpriv flags, e.g. a smaller bounding set).
 * HOME is a fresh folder unless given.
 */
async function kimia(args: string[], opts: { env?: Record<string, string>; home?: string; wrap?: string[]; restrict?: string[] } = {}): Promise<Outcome> {
  const home = opts.home ?? ws.path(`home-${++seq}`);
  await mkdir(home, { recursive: true });
  await chown(home, 1000, 1000);
  const env = Object.entries({ PATH, LANG: 'C.UTF-8', HOME: home, KIMIA_PUSH_RETRY_DELAY_MS: '100', ...opts.env }).map(([k, v]) => `${k}=${v}`);
  // UID 1000 runs the staged copy of bin/kimia it can reach, wherever the checkout is (test/harness/build-user.ts)
  const argv = [...(opts.wrap ?? []), 'setpriv', '--reuid', '1000', '--regid', '1000', '--init-groups', ...(opts.restrict ?? []), 'env', '-i', ...env, process.execPath, await kimiaForBuildUser(), ...args];
  const r = await run(argv[0]!, argv.slice(1), { reject: false, cwd: ws.dir, timeoutMs: 240_000, redactor: new Redactor(), extendEnv: false });
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, all: `${r.stdout}\n${r.stderr}` };
}

/** `kimia lint --json` on a manifest (the static check users run before applying the guide's YAML). */
async function lint(name: string, yaml: string, extra: string[] = []): Promise<{ code: number; findings: Finding[] }> {
  const file = ws.path(`${name}.yaml`);
  await writeFile(file, yaml);
  const r = await run(process.execPath, [KIMIA, 'lint', '--json', ...extra, file], { reject: false, cwd: ws.dir });
  return { code: r.exitCode, findings: (JSON.parse(r.stdout) as { findings: Finding[] }).findings };
}

const rule = (findings: Finding[], id: string): Finding => {
  const f = findings.find((x) => x.rule === id);
  if (!f) throw new Error(`no ${id} finding in ${findings.map((x) => x.rule).join(', ')}`);
  return f;
};

/**
 * A kimia Job as the guide writes it; `patch` replaces parts to make the guide's "wrong" variants. The good one
 * passes `kimia lint` with no finding (asserted below), so every finding in a variant comes from the patch.
 */
function job(patch: { podSc?: string; sc?: string; args?: string[]; mounts?: string; volumes?: string; env?: string; resources?: string } = {}): string {
  const args = patch.args ?? ['--context=/workspace', '--destination=registry.example.com/app:1', '--cache', '--cache-dir=/cache', '--storage-driver=overlay'];
  return `apiVersion: batch/v1
kind: Job
metadata:
  name: kimia-build
spec:
  template:
    spec:
      restartPolicy: Never
      securityContext:
${patch.podSc ?? '        runAsNonRoot: true\n        runAsUser: 1000\n        runAsGroup: 1000\n        fsGroup: 1000'}
      containers:
      - name: kimia
        image: ghcr.io/rapidfort/kimia:latest
        args:
${args.map((a) => `        - ${a}`).join('\n')}
${patch.env ?? ''}        securityContext:
${patch.sc ?? '          runAsUser: 1000\n          allowPrivilegeEscalation: true\n          capabilities:\n            drop: [ALL]\n            add: [SETUID, SETGID]'}
        resources:
${patch.resources ?? '          limits:\n            ephemeral-storage: "20Gi"'}
        volumeMounts:
${patch.mounts ?? '        - name: docker-config\n          mountPath: /home/kimia/.docker\n        - name: build-cache\n          mountPath: /cache\n        - name: workspace\n          mountPath: /workspace'}
      volumes:
${patch.volumes ?? '      - name: docker-config\n        secret:\n          secretName: registry-credentials\n      - name: build-cache\n        emptyDir: {}\n      - name: workspace\n        emptyDir: {}'}
`;
}

const SCRATCH_CTX = () => ws.path('ctx-scratch');

beforeAll(async () => {
  await Promise.all([buildKimia(), ensureSubIds()]);
  ws = await workspace('kimia-guide');
  [reg, git] = await Promise.all([startRegistry({ auth: true }), startGitServer({ token: 'glpat-guide-token-1', user: 'oauth2' })]);
  dockerConfig = await reg.writeDockerConfig(ws.path('docker'));
  await ws.write('ctx-scratch/Dockerfile', 'FROM scratch\nCOPY Dockerfile /\n');
  await ws.write('ctx-health/Dockerfile', 'FROM scratch\nCOPY Dockerfile /\nHEALTHCHECK --interval=30s CMD ["/bin/true"]\n');
  await ws.write('ctx-big/Dockerfile', 'FROM scratch\nCOPY big.bin /\n');
  await run('dd', ['if=/dev/urandom', `of=${ws.path('ctx-big', 'big.bin')}`, 'bs=1M', 'count=48', 'status=none']);
  await chownTree(ws.dir);
  denyUserns = ws.path('deny-userns');
  await run('gcc', ['-O2', '-static', '-o', denyUserns, projectPath('test', 'fixtures', 'guide', 'deny-userns.c')]);
}, 300_000);

afterAll(async () => {
  await Promise.all([git?.stop(), reg?.stop()]);
  await ws?.cleanup();
});

describe('Kimia guide: the guide\'s correct Job', () => {
  it('passes kimia lint with no finding, so each variant below is flagged only for its mistake', async () => {
    const r = await lint('good', job());
    expect(r.findings).toEqual([]);
    expect(r.code).toBe(0);
  });
});

describe('Kimia guide: Error: Failed to Create User Namespace', () => {
  /**
   * max_user_namespaces is per user namespace: a namespace this test owns (identity-mapped, so uid 1000 and the
   * subordinate range stay valid) gets 0, then kimia runs inside it as uid 1000. The sh re-exec after the map is
   * written gives the inner root its capabilities back (exec before the map dropped them).
   */
  const USERNS_OFF = [
    'sh', '-c', [
      'set -e',
      'd=$(mktemp -d); mkfifo "$d/go"',
      'unshare --user sh -c \'read _ < "$0"; exec sh -c "echo 0 > /proc/sys/user/max_user_namespaces; exec \\"\\$@\\"" x "$@"\' "$d/go" "$@" &',
      'pid=$!',
      'while [ "$(readlink /proc/$pid/ns/user)" = "$(readlink /proc/self/ns/user)" ]; do sleep 0.01; done',
      "echo '0 0 65536' > /proc/$pid/uid_map; echo '0 0 65536' > /proc/$pid/gid_map",
      'echo go > "$d/go"; rm -rf "$d"',
      'wait $pid',
    ].join('\n'), 'userns-off',
  ];

  it('max_user_namespaces = 0: the build stops with the guide\'s error, the sysctl as the cause and the fix', async () => {
    const hostValue = Number((await run('cat', ['/proc/sys/user/max_user_namespaces'])).stdout);
    const probe = await kimia([], { wrap: [...USERNS_OFF, 'sh', '-c', 'cat /proc/sys/user/max_user_namespaces; unshare --user --map-root-user true', '--'] });
    // the condition is real: inside, the sysctl reads 0 and the kernel refuses a user namespace
    expect(probe.stdout.trim()).toBe('0');
    expect(probe.stderr).toMatch(/unshare failed: No space left on device/);

    const build = await kimia(['-c', SCRATCH_CTX(), '--no-push'], { wrap: USERNS_OFF });
    expect(build.exitCode, build.all).toBe(6);
    expect(build.stderr).toContain('error: failed to create user namespace: operation not permitted');
    expect(build.stderr).toContain('cause: User namespaces are not enabled on the cluster nodes (/proc/sys/user/max_user_namespaces is 0)');
    expect(build.stderr).toContain('sudo sysctl -w user.max_user_namespaces=15000');
    expect(build.stderr).toContain('echo "user.max_user_namespaces=15000" | sudo tee -a /etc/sysctl.conf');
    expect(build.all).not.toMatch(/STEP 1/i);

    const check = await kimia(['check-environment'], { wrap: USERNS_OFF });
    expect(check.exitCode).toBe(6);
    expect(check.stdout).toMatch(/\[FAIL\] user namespaces +max_user_namespaces=0/);
    expect(check.stdout).toContain('sudo sysctl -w user.max_user_namespaces=15000');
    // nothing leaked to the host: the sysctl there is unchanged
    expect(Number((await run('cat', ['/proc/sys/user/max_user_namespaces'])).stdout)).toBe(hostValue);
  });

  it('a seccomp filter refusing CLONE_NEWUSER (EPERM): the literal kernel error, the pod-level cause and fix', async () => {
    const wrap = [denyUserns];
    const probe = await kimia([], { wrap: [...wrap, 'sh', '-c', 'unshare --user --map-root-user true', '--'] });
    expect(probe.stderr).toContain('unshare failed: Operation not permitted');

    const build = await kimia(['-c', SCRATCH_CTX(), '--no-push'], { wrap });
    expect(build.exitCode, build.all).toBe(6);
    expect(build.stderr).toContain('error: failed to create user namespace: operation not permitted');
    expect(build.stderr).toContain('the kernel allows user namespaces but this pod may not create one (unshare: unshare failed: Operation not permitted)');
    expect(build.stderr).toContain('seccompProfile:');
    expect(build.stderr).toContain('add: [SETUID, SETGID]');
    const check = await kimia(['check-environment', '--log-format=json'], { wrap });
    const ns = check.stdout.trim().split('\n').map((l) => JSON.parse(l) as { check: string; status: string }).find((x) => x.check === 'user namespaces');
    expect(ns?.status).toBe('fail');
  });
});

describe('Kimia guide: Error: Permission Denied', () => {
  it('allowPrivilegeEscalation: false (NoNewPrivs): "permission denied while trying to connect", and lint names the security context', async () => {
    const build = await kimia(['-c', SCRATCH_CTX(), '--no-push'], { wrap: ['setpriv', '--no-new-privs'] });
    expect(build.exitCode, build.all).toBe(6);
    expect(build.stderr).toContain('error: permission denied while trying to connect');
    expect(build.stderr).toContain('cause: NoNewPrivs is set (allowPrivilegeEscalation: false)');
    expect(build.stderr).toContain('allowPrivilegeEscalation: true');

    const r = await lint('no-escalation', job({ sc: '          runAsUser: 1000\n          allowPrivilegeEscalation: false\n          capabilities:\n            drop: [ALL]\n            add: [SETUID, SETGID]' }));
    expect(r.code).toBe(1);
    const f = rule(r.findings, 'kimia/allow-privilege-escalation');
    expect(f.level).toBe('error');
    expect(f.fix).toContain('allowPrivilegeEscalation: true');
  });

  it('runAsUser 0 without runAsNonRoot: lint names the guide\'s security context', async () => {
    const r = await lint('root-user', job({ podSc: '        runAsUser: 0\n        fsGroup: 1000', sc: '          allowPrivilegeEscalation: true\n          capabilities:\n            drop: [ALL]\n            add: [SETUID, SETGID]' }));
    const f = rule(r.findings, 'kimia/run-as-user');
    expect(f.level).toBe('error');
    expect(f.fix).toContain('runAsNonRoot: true');
    expect(f.fix).toContain('runAsUser: 1000');
  });
});

describe('Kimia guide: Error: Cache Directory Permission Denied', () => {
  it('a cache folder owned by another UID: the guide\'s two lines of error text, then each of the guide\'s fixes works', async () => {
    const cache = ws.path('cache-other-uid');
    await mkdir(cache, { recursive: true });
    await chown(cache, OTHER_UID, OTHER_UID);
    await chmod(cache, 0o755);
    const build = await kimia(['-c', SCRATCH_CTX(), '--no-push', '--cache', `--cache-dir=${cache}`]);
    expect(build.exitCode, build.all).toBe(6);
    expect(build.stderr).toContain('error: failed to write to cache directory: permission denied');
    expect(build.stderr).toContain(`Cache directory ${cache} is not writable by UID 1000`);
    expect(build.stderr).toContain('fsGroup: 1000');
    expect(build.stderr).toContain(`chown -R 1000:1000 ${cache}`);

    const check = await kimia(['check-environment', '--cache', `--cache-dir=${cache}`]);
    expect(check.exitCode).toBe(6);
    expect(check.stdout).toMatch(/\[FAIL\] cache dir/);

    // Option 1 (fsGroup): the kubelet makes the volume group-owned by the fsGroup and group-writable (setgid)
    await chown(cache, OTHER_UID, 1000);
    await chmod(cache, 0o2775);
    expect((await kimia(['check-environment', '--cache', `--cache-dir=${cache}`])).stdout).toMatch(/\[ok {2}\] cache dir +.* writable by UID 1000/);
    // Option 2 (init container): chown -R 1000:1000 && chmod -R 755, then a real build fills the cache
    await chown(cache, 1000, 1000);
    await chmod(cache, 0o755);
    const ok = await kimia(['-c', SCRATCH_CTX(), '--no-push', '--cache', `--cache-dir=${cache}`, '--storage-driver=overlay']);
    expect(ok.exitCode, ok.all).toBe(0);
    expect((await stat(join(cache, 'storage'))).uid).toBe(1000);
  });

  it('a cache volume holding what an earlier build as another UID left: preflight names the path; without preflight buildah\'s refusal gets the same text; the chown fix works', async () => {
    const cache = ws.path('cache-leftover');
    // a writable cache folder whose storage an earlier build run as root left behind (lock folder owned by UID 0)
    await mkdir(join(cache, 'storage', 'overlay-layers'), { recursive: true });
    await chown(cache, 1000, 1000);
    await chown(join(cache, 'storage'), 1000, 1000);
    const args = ['-c', SCRATCH_CTX(), '--no-push', '--cache', `--cache-dir=${cache}`, '--storage-driver=overlay'];
    const build = await kimia(args);
    expect(build.exitCode, build.all).toBe(6);
    expect(build.stderr).toContain('error: failed to write to cache directory: permission denied');
    expect(build.stderr).toContain(`cause: Cache directory ${cache} is not writable by UID 1000: ${join(cache, 'storage', 'overlay-layers')} belongs to UID 0, left by an earlier build.`);
    expect(build.stderr).toContain(`chown -R 1000:1000 ${cache}`);
    expect(build.all).not.toMatch(/step 1\//);

    // the same pod with preflight skipped: buildah fails on the lock file, and kimia still says what the guide says
    const late = await kimia([...args, '--skip-preflight']);
    expect(late.exitCode, late.all).toBe(6);
    expect(late.stderr).toContain('error: failed to write to cache directory: permission denied');
    expect(late.stderr).toMatch(/buildah could not write \S*overlay-layers\/layers\.lock \(permission denied\)/);

    // the guide's Option 2 (init container: chown -R 1000:1000)
    await run('chown', ['-R', '1000:1000', cache]);
    const ok = await kimia(args);
    expect(ok.exitCode, ok.all).toBe(0);
  });

  it('lint: a hostPath cache without fsGroup or an init container is flagged with the guide\'s options', async () => {
    const r = await lint('cache-hostpath', job({
      podSc: '        runAsNonRoot: true\n        runAsUser: 1000\n        runAsGroup: 1000',
      volumes: '      - name: docker-config\n        secret:\n          secretName: registry-credentials\n      - name: build-cache\n        hostPath:\n          path: /var/cache/kimia\n      - name: workspace\n        emptyDir: {}',
    }));
    const f = rule(r.findings, 'kimia/cache-permissions');
    expect(f.message).toContain('/cache');
    expect(f.fix).toMatch(/fsGroup: 1000/);
    expect(rule(r.findings, 'kimia/missing-fsgroup').level).toBe('error');
  });
});

describe('Kimia guide: Error: Unauthorized', () => {
  it('a registry answering 401: "unauthorized: authentication required", exit 5, and the fix; with the secret mounted the push works', async () => {
    const dest = `${reg.host}/guide-unauth:1`;
    const anon = await kimia(['-c', SCRATCH_CTX(), '-d', dest, '--insecure-registry', reg.host, '--storage-driver=overlay']);
    expect(anon.exitCode, anon.all).toBe(5);
    expect(anon.stderr).toContain('error: unauthorized: authentication required');
    expect(anon.stderr).toContain('kubectl create secret docker-registry registry-credentials');
    expect(anon.stderr).toContain('mountPath: /home/kimia/.docker  # Must be this path');
    // the check-environment report said so before the build: no config where kimia reads it
    const check = await kimia(['check-environment', '-d', dest]);
    expect(check.stdout).toMatch(/\[WARN\] docker config +no \/home\/kimia\/\.docker\/config\.json .*mount the secret at \/home\/kimia\/\.docker/);
    // wrong credentials are 401 too (the guide's "check secret contents")
    const badDir = ws.path('docker-bad');
    await mkdir(badDir, { recursive: true });
    await writeFile(join(badDir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('harness:wrong-password').toString('base64') } } }));
    await chownTree(badDir);
    const bad = await kimia(['-c', SCRATCH_CTX(), '-d', dest, '--insecure-registry', reg.host, '--storage-driver=overlay'], { env: { DOCKER_CONFIG: badDir } });
    expect(bad.exitCode, bad.all).toBe(5);
    expect(bad.stderr).toContain('error: unauthorized: authentication required');

    const good = await kimia(['-c', SCRATCH_CTX(), '-d', dest, '--insecure-registry', reg.host, '--storage-driver=overlay'], { env: { DOCKER_CONFIG: dockerConfig } });
    expect(good.exitCode, good.all).toBe(0);
    expect((await reg.manifest('guide-unauth', '1')).digest).toMatch(/^sha256:/);
  });

  it('lint: a pushing Job without the registry secret at /home/kimia/.docker is flagged', async () => {
    const r = await lint('no-secret', job({
      mounts: '        - name: build-cache\n          mountPath: /cache\n        - name: workspace\n          mountPath: /workspace',
      volumes: '      - name: build-cache\n        emptyDir: {}\n      - name: workspace\n        emptyDir: {}',
    }));
    const f = rule(r.findings, 'kimia/registry-auth-mount');
    expect(f.fix).toContain('/home/kimia/.docker');
  });
});

describe('Kimia guide: Error: No Space Left on Device', () => {
  /** a 24 MiB tmpfs as HOME (so as the image storage) in a mount namespace that dies with the command */
  const smallDisk = (home: string) => ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=24m,uid=1000,gid=1000,mode=0755 tmpfs '${home}' && exec "$@"`, 'small-disk'];

  it('preflight: a storage volume below the minimum stops the build with the guide\'s text and the ephemeral-storage fix', async () => {
    const home = ws.path('home-small-1');
    await mkdir(home);
    const r = await kimia(['-c', SCRATCH_CTX(), '--no-push'], { home, wrap: smallDisk(home) });
    expect(r.exitCode, r.all).toBe(6);
    expect(r.stderr).toContain('error: error building: no space left on device');
    expect(r.stderr).toMatch(/cause: Insufficient ephemeral storage: only \d+(\.\d+)? MiB free for the image storage at \S*home-small-1\/\.local\/share\/containers\/storage \(vfs driver\); a build needs at least 512 MiB\./);
    expect(r.stderr).toContain('ephemeral-storage: "20Gi"');
    const check = await kimia(['check-environment'], { home, wrap: smallDisk(home) });
    expect(check.stdout).toMatch(/\[FAIL\] free space/);
  });

  it('the disk really fills during the build (48 MiB COPY into 24 MiB): buildah\'s ENOSPC is reported as the guide\'s error', async () => {
    const home = ws.path('home-small-2');
    await mkdir(home);
    const r = await kimia(['-c', ws.path('ctx-big'), '--no-push'], { home, wrap: smallDisk(home), env: { KIMIA_MIN_FREE_SPACE: '1M' } });
    expect(r.exitCode, r.all).toBe(6);
    expect(r.all).toMatch(/no space left on device/);
    expect(r.stderr).toContain('error: error building: no space left on device');
    // the cause names what filled up (the image storage, its path and driver) and how much is left, in a sentence
    expect(r.stderr).toMatch(/cause: Insufficient ephemeral storage: the image storage at \S*home-small-2\/\.local\/share\/containers\/storage \(vfs driver\) ran out of space during the build, \d+(\.\d+)? \w?i?B left\. With vfs every layer is a full copy/);
    expect(r.stderr).toMatch(/Buildah reported: .*no space left on device/);
    expect(r.stderr).toContain('ephemeral-storage: "20Gi"');
  });

  it('lint: no ephemeral-storage limit is flagged', async () => {
    const f = rule((await lint('no-eph', job({ resources: '          limits:\n            memory: "4Gi"' }))).findings, 'kimia/ephemeral-storage');
    expect(f.fix).toContain('ephemeral-storage');
  });
});

describe('Kimia guide: Error: Git Clone Failed', () => {
  it('a Git server that wants a token: "fatal: could not read Username", exit 5, the --git-token-file fix; with the token it builds', async () => {
    const repo = await git.createRepo('guide', { Dockerfile: 'FROM scratch\nCOPY Dockerfile /\n' });
    const none = await kimia(['-c', repo.url, '--no-push', '--storage-driver=overlay']);
    expect(none.exitCode, none.all).toBe(5);
    expect(none.stderr).toContain('error: fatal: could not read Username');
    expect(none.stderr).toContain('Git authentication not configured');
    expect(none.stderr).toContain('--git-token-file=/secrets/git-token');
    expect(none.stderr).toContain('--git-token-user=oauth2');
    const token = await ws.write('git-token', 'glpat-guide-token-1\n');
    const ok = await kimia(['-c', repo.url, '--git-token-file', token, '--git-token-user=oauth2', '--no-push', '--storage-driver=overlay']);
    expect(ok.exitCode, ok.all).toBe(0);
  });

  it('lint: a Git context without --git-token-file is flagged', async () => {
    const f = rule((await lint('git', job({ args: ['--context=https://github.com/org/repo.git', '--destination=registry.example.com/app:1'] }))).findings, 'kimia/git-token');
    expect(f.fix).toContain('--git-token-file=/secrets/git-token');
  });
});

describe('Kimia guide: Error: HEALTHCHECK Instruction Ignored', () => {
  it('the default keeps HEALTHCHECK (Docker format chosen for it); forced OCI warns with the guide\'s text; BUILDAH_FORMAT=docker still works; lint names the fix', async () => {
    const creds = reg.auth!;
    const auto = await kimia(['-c', ws.path('ctx-health'), '-d', `${reg.host}/guide-health:auto`, '--insecure-registry', reg.host, '--storage-driver=overlay'], { env: { DOCKER_CONFIG: dockerConfig } });
    expect(auto.exitCode, auto.all).toBe(0);
    expect(auto.stderr).not.toContain('HEALTHCHECK instruction ignored');
    expect(auto.stderr).toContain('building in Docker format: the Dockerfile uses HEALTHCHECK');
    expect((await imageConfig(`${reg.host}/guide-health:auto`, { creds })).config?.Healthcheck?.Test).toEqual(['CMD', '/bin/true']);

    const oci = await kimia(['-c', ws.path('ctx-health'), '-d', `${reg.host}/guide-health:oci`, '--insecure-registry', reg.host, '--storage-driver=overlay'], { env: { DOCKER_CONFIG: dockerConfig, BUILDAH_FORMAT: 'oci' } });
    expect(oci.exitCode, oci.all).toBe(0);
    expect(oci.stderr).toContain('Warning: HEALTHCHECK instruction ignored');
    expect(oci.stderr).toContain('BUILDAH_FORMAT=docker');
    expect((await imageConfig(`${reg.host}/guide-health:oci`, { creds })).config?.Healthcheck).toBeUndefined();

    const docker = await kimia(['-c', ws.path('ctx-health'), '-d', `${reg.host}/guide-health:docker`, '--insecure-registry', reg.host, '--storage-driver=overlay'], { env: { DOCKER_CONFIG: dockerConfig, BUILDAH_FORMAT: 'docker' } });
    expect(docker.exitCode, docker.all).toBe(0);
    expect(docker.stderr).not.toContain('HEALTHCHECK instruction ignored');
    expect((await imageConfig(`${reg.host}/guide-health:docker`, { creds })).config?.Healthcheck?.Test).toEqual(['CMD', '/bin/true']);

    const forced = '        env:\n        - name: BUILDAH_FORMAT\n          value: "oci"\n';
    const r = await lint('health', job({ env: forced }), ['--dockerfile', ws.path('ctx-health', 'Dockerfile')]);
    const f = rule(r.findings, 'kimia/dockerfile-format');
    expect(f.message).toContain('HEALTHCHECK');
    expect(f.fix).toContain('BUILDAH_FORMAT');
    expect(f.fix).toContain('docker');
    const fixed = await lint('health-fixed', job({ env: '        env:\n        - name: BUILDAH_FORMAT\n          value: "docker"\n' }), ['--dockerfile', ws.path('ctx-health', 'Dockerfile')]);
    expect(fixed.findings).toEqual([]);
    const unset = await lint('health-unset', job(), ['--dockerfile', ws.path('ctx-health', 'Dockerfile')]);
    expect(unset.findings).toEqual([]);
  });
});

describe('Kimia guide: Image Format Issues (How to Check Image Format, OCI vs Docker Format)', () => {
  it('the default is OCI, BUILDAH_FORMAT=docker gives a Docker v2 schema 2 manifest (what "buildah inspect | grep -i format" shows)', async () => {
    // the two images pushed by the HEALTHCHECK scenario above, or built here when run alone
    for (const [tag, env] of [['fmt-oci', {}], ['fmt-docker', { BUILDAH_FORMAT: 'docker' }]] as const) {
      const r = await kimia(['-c', SCRATCH_CTX(), '-d', `${reg.host}/guide-format:${tag}`, '--insecure-registry', reg.host, '--storage-driver=overlay'], { env: { DOCKER_CONFIG: dockerConfig, ...env } });
      expect(r.exitCode, r.all).toBe(0);
    }
    expect((await reg.manifest('guide-format', 'fmt-oci')).contentType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect((await reg.manifest('guide-format', 'fmt-docker')).contentType).toBe('application/vnd.docker.distribution.manifest.v2+json');
  });
});

describe('Kimia guide: Debugging Commands', () => {
  it('check-environment answers "Check User Namespace Support", "Verify Storage" and "Check Cache Permissions" in one report', async () => {
    const cache = ws.path('cache-debug');
    await mkdir(cache);
    await chown(cache, 1000, 1000);
    const r = await kimia(['check-environment', '--cache', `--cache-dir=${cache}`, '--log-format=json']);
    expect(r.exitCode, r.all).toBe(0);
    const checks = new Map(r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { check: string; status: string; detail?: string }).map((c) => [c.check, c]));
    expect(checks.get('user namespaces')).toMatchObject({ status: 'ok' });
    expect(checks.get('user namespaces')?.detail).toContain('creation works');
    expect(checks.get('free space')?.detail).toMatch(/free under /);
    expect(checks.get('cache dir')?.detail).toBe(`${cache} writable by UID 1000`);
    // the guide's "cat /proc/self/uid_map" in the user namespace buildah uses: uid 0 is the build user
    const map = await run('setpriv', ['--reuid', '1000', '--regid', '1000', '--init-groups', 'unshare', '--user', '--map-root-user', 'cat', '/proc/self/uid_map']);
    expect(map.stdout.trim().split(/\s+/)).toEqual(['0', '1000', '1']);
  });
});

describe('Kimia guide: Performance Issues / Slow Builds', () => {
  it('check-environment points at overlay when vfs is used, overlay works rootless, and --cache answers the same build from its key (and reuses layers with --no-build-key)', async () => {
    const vfs = await kimia(['check-environment']);
    expect(vfs.stdout).toMatch(/\[ok {2}\] storage driver +vfs \(works everywhere; --storage-driver=overlay is faster\)/);
    const overlay = await kimia(['check-environment', '--storage-driver=overlay']);
    expect(overlay.stdout).toMatch(/\[ok {2}\] storage driver +overlay mounts inside a user namespace/);
    const cache = ws.path('cache-perf');
    await mkdir(cache);
    await chown(cache, 1000, 1000);
    await ws.write('ctx-layers/Dockerfile', 'FROM scratch\nCOPY Dockerfile /a\nCOPY Dockerfile /b\n');
    const args = ['-c', ws.path('ctx-layers'), '--no-push', '--cache', `--cache-dir=${cache}`, '--storage-driver=overlay'];
    const first = await kimia(args);
    expect(first.exitCode, first.all).toBe(0);
    const second = await kimia(args);
    expect(second.exitCode, second.all).toBe(0);
    expect(second.stderr).toMatch(/unchanged: build key [0-9a-f]{12} matches sha256:[0-9a-f]{64}/);
    const layers = await kimia([...args, '--no-build-key']);
    expect(layers.exitCode, layers.all).toBe(0);
    expect(layers.stderr).toMatch(/cache: [1-9]\d* hit\(s\), 0 miss\(es\)/);
  });
});

describe('Kimia guide: Network Issues / Cannot Reach Registry', () => {
  it('an unresolvable registry: the guide\'s "dial tcp: lookup …: no such host" and the DNS / NetworkPolicy / egress fix', async () => {
    const r = await kimia(['-c', SCRATCH_CTX(), '-d', 'registry.invalid/app:1', '--push-retry=0', '--storage-driver=overlay']);
    expect(r.exitCode, r.all).toBe(4);
    expect(r.stderr).toMatch(/dial tcp: lookup registry\.invalid.*: no such host/);
    expect(r.stderr).toContain('error: cannot reach registry registry.invalid: dial tcp: lookup registry.invalid');
    expect(r.stderr).toContain('nslookup registry.invalid');
    expect(r.stderr).toContain('kubectl get networkpolicy -n <namespace>');
    expect(r.stderr).toContain('egress');
  });

  it('the same for a base image on an unresolvable registry: exit 3, with the DNS / NetworkPolicy / egress fix', async () => {
    await ws.write('ctx-dns-pull/Dockerfile', 'FROM registry.invalid/base:1\nRUN true\n');
    const r = await kimia(['-c', ws.path('ctx-dns-pull'), '--no-push', '--storage-driver=overlay']);
    expect(r.exitCode, r.all).toBe(3);
    expect(r.stderr).toMatch(/error: cannot reach registry registry\.invalid: dial tcp: lookup registry\.invalid.*: no such host/);
    expect(r.stderr).toContain('cause: the registry name registry.invalid does not resolve from this pod, so the base image cannot be pulled.');
    expect(r.stderr).toContain('nslookup registry.invalid');
    expect(r.stderr).toContain('egress');
  });
});

describe('Kimia guide: Common Mistakes / Wrong Volume Mount Path', () => {
  it('a secret at /kaniko/.docker: kimia says it reads /home/kimia/.docker before building; lint flags the mount', async () => {
    // /kaniko exists only as a mount point in a private mount namespace: the tmpfs (and the secret) vanish with it.
    // The empty folder is created on the host only if missing and removed right after.
    const created = !(await stat('/kaniko').then(() => true, () => false));
    if (created) await mkdir('/kaniko');
    try {
      const auth = Buffer.from(`${reg.auth!.username}:${reg.auth!.password}`).toString('base64');
      const wrap = ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
        `mount -t tmpfs tmpfs /kaniko && mkdir /kaniko/.docker && printf '%s' '{"auths":{"${reg.host}":{"auth":"${auth}"}}}' > /kaniko/.docker/config.json && exec "$@"`, 'kaniko'];
      const r = await kimia(['-c', SCRATCH_CTX(), '-d', `${reg.host}/guide-kaniko:1`, '--insecure-registry', reg.host], { wrap });
      expect(r.exitCode, r.all).toBe(6);
      expect(r.stderr).toContain('error: docker config found at /kaniko/.docker (the Kaniko path), but kimia reads /home/kimia/.docker');
      expect(r.stderr).toContain('mountPath: /home/kimia/.docker  # Kimia path');
      const check = await kimia(['check-environment', '-d', `${reg.host}/guide-kaniko:1`], { wrap });
      expect(check.stdout).toMatch(/\[FAIL\] docker config +\/kaniko\/\.docker\/config\.json is the Kaniko path/);
    } finally {
      if (created) await rmdir('/kaniko');
    }
    const f = rule((await lint('kaniko-path', job({ mounts: '        - name: docker-config\n          mountPath: /kaniko/.docker\n        - name: build-cache\n          mountPath: /cache\n        - name: workspace\n          mountPath: /workspace' }))).findings, 'kimia/kaniko-docker-path');
    expect(f.level).toBe('error');
    expect(f.fix).toContain('mountPath: /home/kimia/.docker');
  });
});

describe('Kimia guide: Common Mistakes / Missing fsGroup', () => {
  it('lint flags the guide\'s "wrong" securityContext; on disk, the volume without fsGroup (root-owned) fails the cache check', async () => {
    const r = await lint('no-fsgroup', job({ podSc: '        runAsUser: 1000' }));
    expect(r.code).toBe(1);
    expect(rule(r.findings, 'kimia/missing-fsgroup').fix).toContain('fsGroup: 1000');
    const cache = ws.path('cache-root-owned');
    await mkdir(cache);
    const check = await kimia(['check-environment', '--cache', `--cache-dir=${cache}`]);
    expect(check.exitCode).toBe(6);
    expect(check.stdout).toContain('failed to write to cache directory: permission denied');
    expect(check.stdout).toContain('fsGroup: 1000');
  });
});

describe('Kimia guide: Common Mistakes / Missing Capabilities', () => {
  it('SETUID/SETGID dropped: the build stops with "permission denied while trying to connect" and the capabilities fix; lint flags it', async () => {
    const build = await kimia(['-c', SCRATCH_CTX(), '--no-push'], { restrict: ['--bounding-set', '-setuid,-setgid'] });
    expect(build.exitCode, build.all).toBe(6);
    expect(build.stderr).toContain('error: permission denied while trying to connect');
    expect(build.stderr).toContain('capability SETUID and SETGID dropped from the bounding set');
    expect(build.stderr).toContain('add: [SETUID, SETGID]');
    const r = await lint('no-caps', job({ sc: '          runAsUser: 1000\n          allowPrivilegeEscalation: true' }));
    expect(rule(r.findings, 'kimia/missing-capabilities').fix).toContain('add: [SETUID, SETGID]');
  });
});
