/**
 * kimia's own image (images/kimia/Dockerfile: Debian 13, Buildah 1.39) for tests: built by `npm run images` (our kimia
 * on the host) on the harness's trixie base and pushed to a harness registry; the layer cache lives in the shared
 * cache outside the checkout, so a rebuild with unchanged sources is quick.
 *
 *   const image = await pushKimiaImage(reg);          // "127.0.0.1:PORT/harness/kimia:0.1.0"
 *   const r = await kimiaInImage(dockerd, image, { mounts: [[ctx, '/workspace']], args: ['-c', '/workspace', …] });
 */
import { projectPath } from '../../src/core/paths.js';
import { projectVersion } from '../../src/core/version.js';
import { run, type RunResult } from '../../src/core/exec/index.js';
import type { StartedRegistry } from './services/registry.js';
import type { StartedDockerd } from './services/dockerd.js';
import { pushTrixieImage } from './images.js';

export async function pushKimiaImage(registry: StartedRegistry): Promise<string> {
  if (registry.auth || registry.tls) throw new Error('pushKimiaImage needs a plain registry (no TLS, no auth)');
  const base = await pushTrixieImage(registry);
  const r = await run(process.execPath, [projectPath('dist', 'images', 'main.js'), '--registry', `${registry.host}/harness`, '--base-image', base,
    '--insecure-registry', registry.host, '--image', 'kimia'], { reject: false, timeoutMs: 20 * 60_000 });
  if (r.exitCode !== 0) throw new Error(`building kimia's image failed (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  return `${registry.host}/harness/kimia:${projectVersion()}`;
}

/**
 * Run kimia in its image the way the guide's pod does: UID 1000, every capability dropped but SETUID and SETGID,
 * privilege escalation allowed, seccomp unconfined (a runtime's default profile refuses unshare(CLONE_NEWUSER)),
 * host network (the harness's dockerd has no bridge).
 */
export async function kimiaInImage(dockerd: StartedDockerd, image: string, opts: { args: string[]; mounts?: [string, string][]; env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult & { all: string }> {
  const argv = ['run', '--rm', '--network', 'host', '--user', '1000:1000', '--cap-drop', 'ALL', '--cap-add', 'SETUID', '--cap-add', 'SETGID',
    '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--security-opt', 'systempaths=unconfined'];
  for (const [host, inside] of opts.mounts ?? []) argv.push('-v', `${host}:${inside}`);
  for (const [k, v] of Object.entries(opts.env ?? {})) argv.push('-e', `${k}=${v}`);
  const r = await dockerd.docker([...argv, image, ...opts.args], { reject: false, timeoutMs: opts.timeoutMs ?? 300_000 });
  return { ...r, all: `${r.stdout}\n${r.stderr}` };
}
