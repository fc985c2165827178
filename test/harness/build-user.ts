/**
 * The build user (UID 1000, as kimia runs in its pod) on whatever machine the suite runs: a bare Debian machine has no
 * such user, and a checkout in /root (mode 0700) or in a `mktemp -d` folder is out of its reach, so `node bin/kimia`
 * run as UID 1000 from the checkout fails with "Cannot find module …/bin/kimia".
 *
 *   const name = await buildUser();          // the user with UID 1000, created ("kimia") where there is none
 *   const bin = await kimiaForBuildUser();   // bin/kimia of a copy UID 1000 can read (staged once per build)
 *
 * The copy (bin/kimia, dist/, package.json and the production node_modules: everything bin/kimia loads; hard links
 * where the checkout's files are open to everyone and on the same filesystem) is made on every machine, not
 * only where the checkout is unreachable, so every machine runs the same path. It lives in
 * <tmp>/kimia-build-user/<checkout>-<build> (modes a+rX), made atomically under a lock, and replaces the same
 * checkout's earlier copies (one per checkout: the bound).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { PROJECT_ROOT, projectPath } from '../../src/core/paths.js';
import { withLock } from './images.js';

export const BUILD_UID = 1000;
/** the name given to UID 1000 on a machine that has no such user (the name kimia's image uses) */
const NEW_USER = 'kimia';

let userName: Promise<string> | undefined;

/** The name of the user with UID 1000; created (with a home, no password) on a machine that has none. */
export function buildUser(): Promise<string> {
  userName ??= (async () => {
    const found = await run('getent', ['passwd', String(BUILD_UID)], { reject: false });
    if (found.exitCode === 0) return found.stdout.split(':')[0]!;
    // a fresh Debian machine has no UID 1000: the suite's rootless builds need one (setpriv --init-groups, subuid)
    await run('useradd', ['--uid', String(BUILD_UID), '--user-group', '--create-home', '--shell', '/bin/sh', NEW_USER]);
    return NEW_USER;
  })();
  return userName;
}

/** true when UID 1000 can read `path` (every folder above it included): asked of the kernel, not computed from modes */
export async function buildUserCanRead(path: string, test = '-r'): Promise<boolean> {
  await buildUser();
  const r = await run('setpriv', ['--reuid', String(BUILD_UID), '--regid', String(BUILD_UID), '--clear-groups', 'test', test, path], { reject: false });
  return r.exitCode === 0;
}

const STAGE_ROOT = join(tmpdir(), 'kimia-build-user');

/** node_modules/<name> of every production dependency (nested ones come with the package that holds them). */
async function productionPackages(): Promise<string[]> {
  const r = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: PROJECT_ROOT, reject: false });
  const top = new Set<string>();
  for (const line of r.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(relative(PROJECT_ROOT, line));
    if (m) top.add(`node_modules/${m[1]}`);
  }
  if (top.size === 0) throw new Error(`npm ls found no production dependency in ${PROJECT_ROOT}/node_modules: run \`bash scripts/setup.sh\` (npm ci)`);
  return [...top].sort();
}
let staged: Promise<string> | undefined;

/** bin/kimia of a copy of the built project that UID 1000 can run (see the header). */
export function kimiaForBuildUser(): Promise<string> {
  staged ??= stage();
  return staged;
}

async function stage(): Promise<string> {
  if (!(await buildUserCanRead(process.execPath, '-x'))) {
    throw new Error(`UID ${BUILD_UID} cannot run node at ${process.execPath} (a folder above it is closed to other users), so no rootless build can run. ` +
      'fix: install Node.js where every user can run it (Debian: the nodejs package of NodeSource or Debian 13, or the nodejs.org tarball under /usr/local)');
  }
  const checkout = createHash('sha256').update(PROJECT_ROOT).digest('hex').slice(0, 12);
  const build = createHash('sha256')
    .update(String((await stat(projectPath('dist', '.build-stamp')).catch(() => stat(projectPath('dist')))).mtimeMs))
    .update(await readFile(projectPath('package-lock.json')))
    .digest('hex').slice(0, 12);
  const dir = join(STAGE_ROOT, `${checkout}-${build}`);
  const bin = join(dir, 'bin', 'kimia');
  if (await stat(bin).then(() => true, () => false)) return bin;
  return withLock(join(STAGE_ROOT, `${checkout}.lock`), async () => {
    if (await stat(bin).then(() => true, () => false)) return bin;
    await run('mkdir', ['-p', '-m', '0755', STAGE_ROOT]);
    await run('chmod', ['0755', STAGE_ROOT]);
    const partial = `${dir}.partial-${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    await run('mkdir', ['-m', '0755', partial]);
    // only what bin/kimia loads: the build, package.json and the production dependencies (about 27 MB, not 110)
    const sources = ['bin/kimia', 'dist', 'package.json', ...(await productionPackages())];
    // hard links when the checkout is open to everyone and on the same filesystem (fast, no space), else a copy
    // whose modes are then opened (never chmod a hard link: it would change the checkout's own file)
    // (setup's build stamp is 0600 and never loaded)
    const closed = (await run('find', [...sources, '-path', 'dist/.build-stamp', '-prune', '-o', '(', '!', '-perm', '-o+r', '-o', '-type', 'd', '!', '-perm', '-o+x', ')', '-print', '-quit'], { cwd: PROJECT_ROOT })).stdout.trim();
    const sameFs = (await stat(PROJECT_ROOT)).dev === (await stat(STAGE_ROOT)).dev;
    const link = !closed && sameFs;
    await run('cp', [link ? '-al' : '-a', '--parents', ...sources, partial], { cwd: PROJECT_ROOT });
    if (!link) await run('chmod', ['-R', 'a+rX', partial]);
    for (const old of await readdir(STAGE_ROOT).catch(() => [] as string[])) {
      if (old.startsWith(`${checkout}-`) && join(STAGE_ROOT, old) !== partial) await rm(join(STAGE_ROOT, old), { recursive: true, force: true });
    }
    await rename(partial, dir);
    if (!(await buildUserCanRead(bin))) {
      throw new Error(`UID ${BUILD_UID} cannot read ${bin} (is ${tmpdir()} closed to other users?). fix: set TMPDIR to a folder every user can enter`);
    }
    return bin;
  });
}
