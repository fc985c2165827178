/**
 * The launcher's root in runcvm's private bundle (issue 16 causes 2, 3, 8): only the mount points of its config,
 * files where a bind mount's source is a file; and the host ids a user namespace's root maps to.
 */
import { describe, expect, it } from 'vitest';
import { launcherMountPoints, userNamespaceRoot, LAUNCHER_ROOT_DIRS } from '../../../src/runcvm/bundle/transforms/launcher-root.js';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';

describe('launcherMountPoints', () => {
  it('one folder or file per mount point, nothing inside /proc, /sys or /dev, parents made with their children', () => {
    const config: OciSpec = {
      ociVersion: '1.0.2',
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/dev/pts', type: 'devpts', source: 'devpts' },
        { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup' },
        { destination: '/.runcvm/guest', type: 'bind', source: '/g', options: ['rbind', 'ro'] },
        { destination: '/.runcvm/disks/base.ext4', type: 'bind', source: '/cache/k.ext4', options: ['rbind', 'ro'] },
        { destination: '/.runcvm/vols/v0', type: 'bind', source: '/srv/data', options: ['rbind'] },
        { destination: '/.runcvm/vols/v1/my.cnf', type: 'bind', source: '/srv/my.cnf', options: ['rbind'] },
        { destination: '/etc/hosts', type: 'bind', source: '/engine/hosts', options: ['rbind'] },
        { destination: 'scratch/', type: 'tmpfs', source: 'tmpfs' },
      ],
    };
    const out = launcherMountPoints(config, new Set(['/cache/k.ext4', '/srv/my.cnf', '/engine/hosts']));
    expect(out.files).toEqual(['/.runcvm/disks/base.ext4', '/.runcvm/vols/v1/my.cnf', '/etc/hosts']);
    expect(out.dirs).toEqual(['/.runcvm/guest', '/.runcvm/vols/v0', '/dev', '/proc', '/run', '/scratch', '/sys', '/tmp', '/var/run/virtiofsd']);
    for (const d of LAUNCHER_ROOT_DIRS) expect(out.dirs).toContain(d);
  });
});

describe('userNamespaceRoot', () => {
  const spec = (linux: OciSpec['linux']): OciSpec => ({ ociVersion: '1.0.2', linux });
  it('the host ids container root maps to, for a new user namespace with maps', () => {
    const maps = { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }] };
    expect(userNamespaceRoot(spec({ namespaces: [{ type: 'user' }], ...maps }))).toEqual({ uid: 100000, gid: 200000 });
    // none: no user namespace, one joined by path (its maps are not the spec's), or root not mapped
    expect(userNamespaceRoot(spec({ namespaces: [{ type: 'pid' }], ...maps }))).toBeUndefined();
    expect(userNamespaceRoot(spec({ namespaces: [{ type: 'user', path: '/proc/1/ns/user' }], ...maps }))).toBeUndefined();
    expect(userNamespaceRoot(spec({ namespaces: [{ type: 'user' }], uidMappings: [{ containerID: 1, hostID: 100001, size: 10 }], gidMappings: maps.gidMappings }))).toBeUndefined();
  });
});
