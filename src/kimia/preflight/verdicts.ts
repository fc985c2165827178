/**
 * Pure verdicts over facts probed once (see probe.ts). Each check says ok / warn / fail; a failure carries the
 * guide's error text, the cause and the exact fix through kimia's error table.
 */
import type { ToolError } from '../../core/errors.js';
import { formatSize } from '../../core/config.js';
import { fail, type KimiaErrorCode } from '../errors.js';
import { driverSpaceNote } from '../buildah/progress.js';
import type { EngineVersion } from '../dockerfile/check.js';

export interface ProbeResult {
  ok: boolean;
  error?: string;
  /** a pass remembered from an earlier build of this boot (preflight/cache.ts), not probed now */
  cached?: boolean;
}

export interface PreflightFacts {
  uid: number;
  gid: number;
  userName: string;
  maxUserNamespaces?: number;
  userns: ProbeResult;
  storageDriver: 'vfs' | 'overlay';
  overlay?: ProbeResult;
  capEff: bigint;
  capBnd: bigint;
  noNewPrivs: boolean;
  /** how: 'setuid', the file capabilities getcap shows, 'none' (neither), or 'unknown' (no getcap to ask) */
  newuidmap?: { path: string; privileged: boolean; how?: string };
  newgidmap?: { path: string; privileged: boolean; how?: string };
  subuid: boolean;
  subgid: boolean;
  cacheDir?: { path: string; writable: boolean; error?: string };
  /** `blocked`: what an earlier build left in the storage that this user cannot write (top-level entries) */
  storageRoot: { path: string; writable: boolean; error?: string; blocked?: { path: string; uid: number }[] };
  free?: { dir: string; bytes: number };
  minFreeBytes: number;
  dockerConfig: { dir: string; exists: boolean; kanikoExists: boolean; envCredentials: boolean; explicit: boolean };
  pushes: boolean;
  buildahPath?: string;
  /** `buildah --version` of buildahPath */
  engine?: EngineVersion;
  durationMs?: number;
}

export type Status = 'ok' | 'warn' | 'fail';

export interface Verdict {
  check: string;
  status: Status;
  detail: string;
  error?: ToolError;
}

const CAP_SETGID = 6n;
const CAP_SETUID = 7n;

function has(mask: bigint, bit: bigint): boolean {
  return ((mask >> bit) & 1n) === 1n;
}

function failed(check: string, code: KimiaErrorCode, details: Record<string, string>, detail: string): Verdict {
  return { check, status: 'fail', detail, error: fail(code, details) };
}

export function judge(f: PreflightFacts): Verdict[] {
  const out: Verdict[] = [];
  const rootless = f.uid !== 0;

  out.push(f.buildahPath
    ? { check: 'buildah', status: 'ok', detail: `${f.buildahPath}${f.engine ? ` (buildah ${f.engine.version})` : ''}` }
    : failed('buildah', 'BUILDAH_MISSING', {}, 'not found in PATH'));

  // user namespaces: the sysctl, then a real creation
  if (f.maxUserNamespaces !== undefined && f.maxUserNamespaces <= 0) {
    out.push(failed('user namespaces', 'USERNS_DISABLED', { detail: `/proc/sys/user/max_user_namespaces is ${f.maxUserNamespaces}` }, `max_user_namespaces=${f.maxUserNamespaces}`));
  } else if (!f.userns.ok) {
    out.push(failed('user namespaces', 'USERNS_DENIED', { detail: f.userns.error ?? 'unshare failed' }, f.userns.error ?? 'creation failed'));
  } else {
    out.push({ check: 'user namespaces', status: 'ok', detail: `max_user_namespaces=${f.maxUserNamespaces ?? '?'}, creation works${f.userns.cached ? ' (passed earlier this boot)' : ''}` });
  }

  if (rootless) {
    const missing = [has(f.capBnd, CAP_SETUID) ? '' : 'SETUID', has(f.capBnd, CAP_SETGID) ? '' : 'SETGID'].filter(Boolean);
    out.push(missing.length
      ? failed('capabilities', 'CAPS_MISSING', { detail: `capability ${missing.join(' and ')} dropped from the bounding set` }, `missing ${missing.join(', ')}`)
      : { check: 'capabilities', status: 'ok', detail: 'SETUID and SETGID available' });
    out.push(f.noNewPrivs
      ? failed('no_new_privs', 'NO_NEW_PRIVS', {}, 'NoNewPrivs=1')
      : { check: 'no_new_privs', status: 'ok', detail: 'NoNewPrivs=0' });
    const tools = [['newuidmap', f.newuidmap], ['newgidmap', f.newgidmap]] as const;
    const absent = tools.filter(([, t]) => !t).map(([n]) => `${n} not found`);
    const plain = tools.filter(([, t]) => t && !t.privileged);
    // 'none': getcap says the binary has neither the setuid bit nor the capability: the mapping cannot work
    const powerless = plain.filter(([, t]) => t!.how === 'none' || (t!.how !== undefined && t!.how !== 'unknown'));
    const how = (t: { path: string; how?: string } | undefined) => `${t!.path} (${t!.how ?? 'setuid'})`;
    if (absent.length) out.push(failed('newuidmap/newgidmap', 'IDMAP_TOOLS_MISSING', { detail: absent.join('; ') }, absent.join('; ')));
    else if (powerless.length) {
      const detail = powerless.map(([n, t]) => `${n} is neither setuid root nor has file capabilities (${t!.how})`).join('; ');
      out.push(failed('newuidmap/newgidmap', 'IDMAP_TOOLS_MISSING', { detail }, detail));
    } else if (plain.length) out.push({ check: 'newuidmap/newgidmap', status: 'warn', detail: `${plain.map(([n]) => n).join(', ')} not setuid root (fine only if it carries file capabilities; getcap is not installed to tell)` });
    else out.push({ check: 'newuidmap/newgidmap', status: 'ok', detail: `${how(f.newuidmap)}, ${how(f.newgidmap)}` });
    if (!f.subuid) out.push(failed('subordinate IDs', 'SUBID_MISSING', { user: f.userName, file: '/etc/subuid' }, `no /etc/subuid entry for ${f.userName}`));
    else if (!f.subgid) out.push(failed('subordinate IDs', 'SUBID_MISSING', { user: f.userName, file: '/etc/subgid' }, `no /etc/subgid entry for ${f.userName}`));
    else out.push({ check: 'subordinate IDs', status: 'ok', detail: `${f.userName} has /etc/subuid and /etc/subgid ranges` });
  } else {
    out.push({ check: 'rootless', status: 'warn', detail: 'running as root: the build is not rootless (in Kubernetes run as UID 1000)' });
  }

  if (f.cacheDir) {
    out.push(f.cacheDir.writable
      ? { check: 'cache dir', status: 'ok', detail: `${f.cacheDir.path} writable by UID ${f.uid}` }
      : failed('cache dir', 'CACHE_NOT_WRITABLE', { dir: f.cacheDir.path, uid: String(f.uid), where: '' }, f.cacheDir.error ?? 'not writable'));
  }
  const blocked = f.storageRoot.blocked ?? [];
  if (!f.storageRoot.writable) {
    out.push(failed('storage root', 'CACHE_NOT_WRITABLE', { dir: f.storageRoot.path, uid: String(f.uid), where: '' }, f.storageRoot.error ?? 'not writable'));
  } else if (blocked.length) {
    // the folder is writable but an earlier build (another UID) left files in it that are not
    const first = blocked[0]!;
    const more = blocked.length > 1 ? ` and ${blocked.length - 1} more` : '';
    const dir = f.cacheDir?.path ?? f.storageRoot.path;
    out.push(failed('storage root', 'CACHE_NOT_WRITABLE', {
      dir, uid: String(f.uid), where: `: ${first.path}${more} belong${more ? '' : 's'} to UID ${first.uid}, left by an earlier build`,
    }, `${first.path}${more} not writable (owner UID ${first.uid})`));
  } else {
    out.push({ check: 'storage root', status: 'ok', detail: `${f.storageRoot.path} writable` });
  }

  // after the storage checks: an overlay probe in a folder that cannot be written says nothing about overlay
  if (f.storageDriver === 'overlay' && !f.storageRoot.writable) {
    out.push({ check: 'storage driver', status: 'warn', detail: 'overlay not probed: the storage folder is not writable' });
  } else if (f.storageDriver === 'overlay') {
    out.push(f.overlay?.ok
      ? { check: 'storage driver', status: 'ok', detail: `overlay mounts inside a user namespace${f.overlay.cached ? ' (passed earlier this boot)' : ''}` }
      : failed('storage driver', 'STORAGE_DRIVER_UNUSABLE', { driver: 'overlay', detail: f.overlay?.error ?? 'probe failed' }, f.overlay?.error ?? 'probe failed'));
  } else {
    out.push({ check: 'storage driver', status: 'ok', detail: 'vfs (works everywhere; --storage-driver=overlay is faster)' });
  }

  if (f.free) {
    out.push(f.free.bytes < f.minFreeBytes
      ? failed('free space', 'NO_SPACE', {
        free: formatSize(f.free.bytes), dir: f.storageRoot.path, driver: f.storageDriver, need: formatSize(f.minFreeBytes), driverNote: driverSpaceNote(f.storageDriver),
      }, `${formatSize(f.free.bytes)} free under ${f.free.dir}, below the ${formatSize(f.minFreeBytes)} minimum`)
      : { check: 'free space', status: f.free.bytes < f.minFreeBytes * 4 ? 'warn' : 'ok', detail: `${formatSize(f.free.bytes)} free under ${f.free.dir}` });
  }

  const dc = f.dockerConfig;
  if (dc.exists) out.push({ check: 'docker config', status: 'ok', detail: `${dc.dir}/config.json` });
  else if (dc.kanikoExists && !dc.explicit) {
    out.push(failed('docker config', 'KANIKO_DOCKER_CONFIG', { expected: dc.dir }, '/kaniko/.docker/config.json is the Kaniko path'));
  } else if (dc.envCredentials) out.push({ check: 'docker config', status: 'ok', detail: 'DOCKER_USERNAME/DOCKER_PASSWORD from the environment' });
  else out.push({ check: 'docker config', status: f.pushes ? 'warn' : 'ok', detail: `no ${dc.dir}/config.json and no DOCKER_USERNAME/DOCKER_PASSWORD: registries are used anonymously (mount the secret at /home/kimia/.docker)` });
  return out;
}

export function firstFailure(verdicts: Verdict[]): ToolError | undefined {
  return verdicts.find((v) => v.status === 'fail')?.error;
}

export function renderReport(verdicts: Verdict[], durationMs?: number): string {
  const mark: Record<Status, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };
  const lines = verdicts.map((v) => `[${mark[v.status]}] ${v.check.padEnd(20)} ${v.detail}`);
  for (const v of verdicts) if (v.error) lines.push('', `${v.check}:`, v.error.render());
  if (durationMs !== undefined) lines.push('', `preflight took ${durationMs} ms`);
  return lines.join('\n') + '\n';
}
