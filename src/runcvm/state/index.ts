/**
 * Per-container state on the host: `$RUNCVM_STATE_DIR/<id>/` (default /run/runcvm/<id>, mode 0700) holding
 * launch.json (0600), upper.ext4 (0600), the launcher's sockets, `base-disk` (the cached base disk this container
 * uses: the cache never evicts it) and runcvm's private OCI bundle `bundle/` (the launcher's config.json and its root
 * folder of mount points: runc gets `--bundle` there, the caller's bundle is never written). Bind-mounted at
 * /.runcvm/state. Removed by the dispatcher on `delete` (sh, no Node), by create itself when runc create fails, and
 * by create after a foreground `run`.
 */
import { join } from 'node:path';

export const DEFAULT_STATE_ROOT = '/run/runcvm';
export const DEFAULT_CACHE_DIR = '/var/lib/runcvm/disks';
export const DEFAULT_LOG_DIR = '/tmp';

/** The file in a container's state folder that names the cached base disk it uses (the cache never evicts it). */
export const BASE_DISK_REF = 'base-disk';
/** The file in a container's state folder that names the template folder it starts from (the cache never evicts it). */
export const TEMPLATE_REF = 'template';

export interface HostDirs {
  stateRoot: string;
  cacheDir: string;
  logDir: string;
}

export function hostDirs(env: Record<string, string | undefined>): HostDirs {
  return {
    stateRoot: env.RUNCVM_STATE_DIR || DEFAULT_STATE_ROOT,
    cacheDir: env.RUNCVM_CACHE_DIR || DEFAULT_CACHE_DIR,
    logDir: env.RUNCVM_LOG_DIR || DEFAULT_LOG_DIR,
  };
}

export function containerPaths(dirs: HostDirs, id: string) {
  const state = join(dirs.stateRoot, id);
  return {
    state,
    launchSpec: join(state, 'launch.json'),
    upperDisk: join(state, 'upper.ext4'),
    staging: join(state, 'staging'),
    keepLog: join(state, 'keep-log'),
    baseDiskRef: join(state, BASE_DISK_REF),
    templateRef: join(state, TEMPLATE_REF),
    bundle: join(state, 'bundle'),
    launcherConfig: join(state, 'bundle', 'config.json'),
    launcherRoot: join(state, 'bundle', 'root'),
    debugLog: join(dirs.logDir, `runcvm-${id}.debug`),
  };
}

/** Lifecycle as runc reports it; runcvm adds nothing that runc does not already track. */
export type ContainerState = 'creating' | 'created' | 'running' | 'stopped';
