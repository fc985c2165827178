import { describe, expect, it } from 'vitest';
import { judge, firstFailure, renderReport, type PreflightFacts } from '../../../src/kimia/preflight/verdicts.js';
import { hasSubIdRange, statusField } from '../../../src/kimia/preflight/probe.js';

const good: PreflightFacts = {
  uid: 1000, gid: 1000, userName: 'kimia', maxUserNamespaces: 15000, userns: { ok: true }, storageDriver: 'vfs',
  capEff: 0n, capBnd: 0xc0n, noNewPrivs: false,
  newuidmap: { path: '/usr/bin/newuidmap', privileged: true }, newgidmap: { path: '/usr/bin/newgidmap', privileged: true },
  subuid: true, subgid: true, storageRoot: { path: '/home/kimia/s', writable: true },
  free: { dir: '/home/kimia', bytes: 50 * 2 ** 30 }, minFreeBytes: 2 ** 29,
  dockerConfig: { dir: '/home/kimia/.docker', exists: true, kanikoExists: false, envCredentials: false, explicit: false },
  pushes: true, buildahPath: '/usr/bin/buildah',
};

const failure = (f: Partial<PreflightFacts>) => firstFailure(judge({ ...good, ...f }));

describe('preflight verdicts', () => {
  it('a good rootless pod passes every check', () => {
    expect(judge(good).filter((v) => v.status !== 'ok')).toEqual([]);
  });

  it('disabled user namespaces: the guide text, exit 6, the sysctl fix', () => {
    const e = failure({ maxUserNamespaces: 0 })!;
    expect(e.message).toBe('failed to create user namespace: operation not permitted');
    expect(e.exitCode).toBe(6);
    expect(e.fix).toContain('sysctl -w user.max_user_namespaces=15000');
  });

  it('namespace creation refused: the securityContext YAML', () => {
    const e = failure({ userns: { ok: false, error: 'unshare: Operation not permitted' } })!;
    expect(e.message).toBe('failed to create user namespace: operation not permitted');
    expect(e.fix).toContain('add: [SETUID, SETGID]');
    expect(e.fix).toContain('allowPrivilegeEscalation: true');
  });

  it('dropped SETUID/SETGID and NoNewPrivs', () => {
    expect(failure({ capBnd: 0x40n })!.causeText).toContain('SETUID');
    expect(failure({ noNewPrivs: true })!.code).toBe('NO_NEW_PRIVS');
  });

  it('missing newuidmap and subordinate ranges', () => {
    expect(failure({ newuidmap: undefined })!.code).toBe('IDMAP_TOOLS_MISSING');
    expect(failure({ subgid: false })!.message).toBe('no subordinate ID range for kimia in /etc/subgid');
  });

  it('newuidmap/newgidmap with file capabilities pass (the image); without setuid or capabilities they fail; unknown warns', () => {
    const caps = { newuidmap: { path: '/usr/bin/newuidmap', privileged: true, how: 'cap_setuid=ep' }, newgidmap: { path: '/usr/bin/newgidmap', privileged: true, how: 'cap_setgid=ep' } };
    expect(judge({ ...good, ...caps }).find((v) => v.check === 'newuidmap/newgidmap')).toMatchObject({ status: 'ok', detail: expect.stringContaining('cap_setuid=ep') });
    const e = failure({ newuidmap: { path: '/usr/bin/newuidmap', privileged: false, how: 'none' } })!;
    expect(e.code).toBe('IDMAP_TOOLS_MISSING');
    expect(e.message).toContain('neither setuid root nor has file capabilities');
    expect(judge({ ...good, newgidmap: { path: '/usr/bin/newgidmap', privileged: false, how: 'unknown' } }).find((v) => v.check === 'newuidmap/newgidmap')!.status).toBe('warn');
  });

  it('unwritable cache dir: the guide text and the fsGroup fix', () => {
    const e = failure({ cacheDir: { path: '/cache', writable: false, error: 'EACCES' } })!;
    expect(e.render()).toContain('error: failed to write to cache directory: permission denied');
    expect(e.fix).toContain('fsGroup: 1000');
  });

  it('a writable storage folder holding what an earlier build (another UID) left: the guide text, the path and its owner', () => {
    const e = failure({ cacheDir: { path: '/cache', writable: true }, storageRoot: { path: '/cache/storage', writable: true, blocked: [{ path: '/cache/storage/overlay-layers', uid: 0 }, { path: '/cache/storage/storage.lock', uid: 0 }] } })!;
    expect(e.message).toBe('failed to write to cache directory: permission denied');
    expect(e.causeText).toBe('Cache directory /cache is not writable by UID 1000: /cache/storage/overlay-layers and 1 more belong to UID 0, left by an earlier build.');
    expect(e.fix).toContain('chown -R 1000:1000 /cache');
    const one = failure({ storageRoot: { path: '/h/storage', writable: true, blocked: [{ path: '/h/storage/vfs', uid: 0 }] } })!;
    expect(one.causeText).toBe('Cache directory /h/storage is not writable by UID 1000: /h/storage/vfs belongs to UID 0, left by an earlier build.');
  });

  it('low disk space: the guide text, a cause naming the storage and its driver, and the ephemeral-storage fix', () => {
    const e = failure({ free: { dir: '/home', bytes: 23 * 2 ** 20 }, storageDriver: 'overlay', overlay: { ok: true } })!;
    expect(e.message).toBe('error building: no space left on device');
    expect(e.causeText).toBe('Insufficient ephemeral storage: only 23 MiB free for the image storage at /home/kimia/s (overlay driver); a build needs at least 512 MiB.');
    expect(e.fix).toContain('ephemeral-storage: "20Gi"');
    const vfs = failure({ free: { dir: '/home', bytes: 1000 } })!;
    expect(vfs.causeText).toBe('Insufficient ephemeral storage: only 1000 B free for the image storage at /home/kimia/s (vfs driver); a build needs at least 512 MiB. '
      + 'With vfs every layer is a full copy of the filesystem; --storage-driver=overlay needs far less.');
    expect(judge({ ...good, free: { dir: '/home', bytes: 1000 } }).find((v) => v.check === 'free space')?.detail).toBe('1000 B free under /home, below the 512 MiB minimum');
  });

  it('config mounted at /kaniko/.docker is named as the mistake', () => {
    const e = failure({ dockerConfig: { ...good.dockerConfig, exists: false, kanikoExists: true } })!;
    expect(e.message).toContain('/kaniko/.docker (the Kaniko path)');
    expect(e.fix).toContain('mountPath: /home/kimia/.docker');
  });

  it('overlay that cannot mount suggests vfs', () => {
    expect(failure({ storageDriver: 'overlay', overlay: { ok: false, error: 'mount: permission denied' } })!.fix).toContain('--storage-driver=vfs');
  });

  it('root is not rootless: a warning, not a failure', () => {
    const v = judge({ ...good, uid: 0, capBnd: 0n, subuid: false });
    expect(firstFailure(v)).toBeUndefined();
    expect(v.find((x) => x.check === 'rootless')?.status).toBe('warn');
  });

  it('the report lists every check and the fix of each failure', () => {
    const text = renderReport(judge({ ...good, noNewPrivs: true }), 12);
    expect(text).toContain('[FAIL] no_new_privs');
    expect(text).toContain('fix: add to the container spec:');
    expect(text).toContain('preflight took 12 ms');
  });
});

describe('probe parsing', () => {
  it('reads /proc/self/status fields and /etc/subuid ranges', () => {
    expect(statusField('Name:\tx\nNoNewPrivs:\t1\nCapBnd:\t00000000000000c0\n', 'CapBnd')).toBe('00000000000000c0');
    expect(hasSubIdRange('root:1:2\nkimia:100000:65536\n', 'kimia', 1000)).toBe(true);
    expect(hasSubIdRange('1000:100000:65536\n', 'kimia', 1000)).toBe(true);
    expect(hasSubIdRange('other:1:2\n', 'kimia', 1000)).toBe(false);
  });
});
