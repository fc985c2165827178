/**
 * runc resolves the process's args[0] inside the container before `create` returns, so a missing executable fails
 * `ctr run` / `docker run` at once with `exec: "x": executable file not found in $PATH`. The VM only execs the
 * workload after boot, so create does the same lookup in the image rootfs (symlinks resolved inside the rootfs, as
 * the guest will see them) and fails the same way.
 */
import { lstat, readlink, stat } from 'node:fs/promises';
import { posix } from 'node:path';

const MAX_LINKS = 40;

/** Resolve `path` (absolute, as seen in the container) to a host path under `root`, following symlinks inside root. */
export async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  const parts = path.split('/').filter(Boolean);
  let resolved: string[] = [];
  let hops = 0;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const host = posix.join(root, ...resolved, part);
    const st = await lstat(host).catch(() => undefined);
    if (!st) return undefined;
    if (st.isSymbolicLink()) {
      if (++hops > MAX_LINKS) return undefined;
      const target = await readlink(host);
      if (target.startsWith('/')) resolved = [];
      parts.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    resolved.push(part);
  }
  return posix.join(root, ...resolved);
}

async function isExecutableFile(hostPath: string): Promise<boolean> {
  const st = await stat(hostPath).catch(() => undefined);
  return Boolean(st && st.isFile() && (st.mode & 0o111) !== 0);
}

export type LookResult = { ok: true } | { ok: false; message: string };

/** `runc`'s wording for the two common failures. */
export async function lookPathInRoot(root: string, arg0: string | undefined, env: readonly string[], cwd: string): Promise<LookResult> {
  if (!arg0) return { ok: true };
  if (arg0.includes('/')) {
    const abs = arg0.startsWith('/') ? arg0 : posix.join(cwd || '/', arg0);
    const host = await resolveInRoot(root, abs);
    if (!host) return { ok: false, message: `exec: "${arg0}": stat ${arg0}: no such file or directory` };
    return { ok: true };
  }
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  for (const dir of pathVar.split(':')) {
    if (!dir) continue;
    const host = await resolveInRoot(root, posix.join(dir.startsWith('/') ? dir : posix.join(cwd || '/', dir), arg0));
    if (host && (await isExecutableFile(host))) return { ok: true };
  }
  return { ok: false, message: `exec: "${arg0}": executable file not found in $PATH` };
}
