/**
 * Helpers for kimia's e2e tests: check kimia is built in dist/, give uid 1000 a subordinate range, make temp folders
 * owned by uid 1000, and run kimia as uid 1000 (rootless) with an explicit, minimal environment.
 */
import { access, chown, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { BUILD_UID, buildUser, kimiaForBuildUser } from '../harness/build-user.js';

export { BUILD_UID };
/** dist/ is built once by the suite's global set-up (scripts/setup.sh); fail clearly if it is missing. */
export async function buildKimia(): Promise<void> {
  await access(projectPath('dist', 'kimia', 'main.js')).catch(() => {
    throw new Error('dist/kimia/main.js is missing: run `npm run setup` (the test suite does it in its global set-up)');
  });
}

/** Idempotent: give uid 1000 (created where the machine has none) the subordinate range 100000-165535. */
export async function ensureSubIds(): Promise<void> {
  const user = await buildUser();
  const [subuid, subgid] = await Promise.all([readFile('/etc/subuid', 'utf8').catch(() => ''), readFile('/etc/subgid', 'utf8').catch(() => '')]);
  const has = (t: string) => t.split('\n').some((l) => l.startsWith(`${user}:`) || l.startsWith(`${BUILD_UID}:`));
  if (has(subuid) && has(subgid)) return;
  await run('usermod', ['--add-subuids', '100000-165535', '--add-subgids', '100000-165535', user]);
}

export interface Workspace {
  dir: string;
  home: string;
  path(...p: string[]): string;
  write(rel: string, content: string): Promise<string>;
  cleanup(): Promise<void>;
}

/** A temp folder owned by uid 1000, with a HOME inside it (so no test shares image storage). */
export async function workspace(prefix = 'kimia-e2e'): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  await chown(dir, BUILD_UID, BUILD_UID);
  const home = join(dir, 'home');
  await mkdir(home);
  await chown(home, BUILD_UID, BUILD_UID);
  return {
    dir,
    home,
    path: (...p) => join(dir, ...p),
    async write(rel, content) {
      const p = join(dir, rel);
      const made = await mkdir(join(p, '..'), { recursive: true });
      await writeFile(p, content);
      // only what this write made or changed: a chown -R of the workspace would also rewrite the ownership (and
      // ctime) of Buildah's storage and of every context file, which the build key rightly notices
      await run('chown', [...(made ? ['-R'] : []), `${BUILD_UID}:${BUILD_UID}`, made ?? p]);
      if (made) await chown(p, BUILD_UID, BUILD_UID);
      return p;
    },
    async cleanup() {
      // buildah storage written in a user namespace holds files owned by subordinate ids: remove as root
      await rm(dir, { recursive: true, force: true }).catch(async () => {
        await run('rm', ['-rf', dir], { reject: false });
      });
    },
  };
}

export async function chownTree(dir: string): Promise<void> {
  await run('chown', ['-R', `${BUILD_UID}:${BUILD_UID}`, dir]);
}

export interface KimiaRun extends RunResult {
  /** stdout + stderr, for greps */
  all: string;
}

const BASE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

/**
 * Run bin/kimia as uid 1000 with only the given environment (plus PATH, HOME); asRoot runs the checkout's bin/kimia
 * as root. UID 1000 runs the staged copy it can reach (test/harness/build-user.ts), wherever the checkout is.
 */
export async function kimia(args: string[], opts: { home: string; env?: Record<string, string>; cwd?: string; asRoot?: boolean; timeoutMs?: number; prefix?: string[] }): Promise<KimiaRun> {
  await mkdir(opts.home, { recursive: true });
  if (!opts.asRoot) await chown(opts.home, BUILD_UID, BUILD_UID);
  const env = { ...BASE_ENV, HOME: opts.home, KIMIA_PUSH_RETRY_DELAY_MS: '200', ...opts.env };
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const node = [process.execPath, opts.asRoot ? projectPath('bin', 'kimia') : await kimiaForBuildUser(), ...args];
  const argv = [...(opts.prefix ?? []), ...(opts.asRoot
    ? ['env', '-i', ...envArgs, ...node]
    : ['setpriv', '--reuid', String(BUILD_UID), '--regid', String(BUILD_UID), '--init-groups', 'env', '-i', ...envArgs, ...node])];
  // no redaction here: the tests must see exactly what kimia printed
  const { Redactor } = await import('../../src/core/redact.js');
  const r = await run(argv[0]!, argv.slice(1), { reject: false, cwd: opts.cwd ?? opts.home, timeoutMs: opts.timeoutMs ?? 300_000, redactor: new Redactor(), extendEnv: false });
  return { ...r, all: `${r.stdout}\n${r.stderr}` };
}

/** Skopeo against a harness registry (plain HTTP unless certDir given). */
export async function skopeo(args: string[], opts: { certDir?: string; creds?: { username: string; password: string } } = {}): Promise<string> {
  const { Redactor } = await import('../../src/core/redact.js');
  const [verb, ...rest] = args;
  const pre = verb === 'copy' ? 'src-' : '';
  const tls = opts.certDir ? [`--${pre}cert-dir`, opts.certDir] : [`--${pre}tls-verify=false`];
  const creds = opts.creds ? [`--${pre}creds`, `${opts.creds.username}:${opts.creds.password}`] : [];
  const remote = rest.some((a) => a.startsWith('docker://'));
  const r = await run('skopeo', [verb!, ...(remote ? [...tls, ...creds] : []), ...rest], { redactor: new Redactor() });
  return r.stdout;
}

export interface ImageConfig {
  config?: { Healthcheck?: { Test?: string[] }; Shell?: string[]; StopSignal?: string; User?: string; Labels?: Record<string, string>; Cmd?: string[] };
  created?: string;
}

export async function imageConfig(ref: string, opts: Parameters<typeof skopeo>[1] = {}): Promise<ImageConfig> {
  return JSON.parse(await skopeo(['inspect', '--config', '--raw', `docker://${ref}`], opts)) as ImageConfig;
}

/** Extract a file's content from an image through skopeo copy to an OCI layout + tar (no daemon). */
export async function filesInImage(ref: string, ws: Workspace, opts: Parameters<typeof skopeo>[1] = {}): Promise<Map<string, { uid: number; gid: number; content?: string }>> {
  const out = ws.path(`oci-${Math.random().toString(36).slice(2)}`);
  await skopeo(['copy', `docker://${ref}`, `oci:${out}:x`], opts);
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (d: string) => join(out, 'blobs', 'sha256', d.replace('sha256:', ''));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  const tar = await import('tar');
  const files = new Map<string, { uid: number; gid: number; content?: string }>();
  for (const layer of manifest.layers) {
    await tar.t({
      file: blob(layer.digest),
      onReadEntry: (e) => {
        const name = e.path.replace(/^\.\//, '');
        const rec: { uid: number; gid: number; content?: string } = { uid: e.uid ?? -1, gid: e.gid ?? -1 };
        if (e.type === 'File' && (e.size ?? 0) < 4096) {
          const chunks: Buffer[] = [];
          e.on('data', (c: Buffer) => chunks.push(c));
          e.on('end', () => { rec.content = Buffer.concat(chunks).toString('utf8'); });
        } else e.resume();
        files.set(name, rec);
      },
    });
  }
  return files;
}
