import { describe, expect, it } from 'vitest';
import type { OciSpec } from '../../../../src/runcvm/launch/oci.js';
import { SettingError } from '../../../../src/runcvm/launch/settings.js';
import {
  classifyMount,
  parseDisksSetting,
  planVolumes,
  pvcInfo,
  redirectLogLine,
  relocateVolumeMounts,
  rewriteForVolumes,
  volumeConfigLines,
  volumeFlags,
  withVolumesInLaunch,
  type Volume,
} from '../../../../src/runcvm/volumes/plan.js';

const K = '/var/lib/kubelet';

/** the mounts docker 20.10 writes for `docker run -v /srv/a:/data -v named:/vol:ro --tmpfs /scratch:size=16m` */
const dockerSpec: OciSpec = {
  ociVersion: '1.0.2',
  process: { cwd: '/', user: { uid: 0, gid: 0 }, args: ['sh'] },
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'bind', source: '/var/lib/docker/containers/abc/mounts/shm', options: ['rbind', 'rprivate'] },
    { destination: '/data', type: 'bind', source: '/srv/a', options: ['rbind', 'rprivate'] },
    { destination: '/vol', type: 'bind', source: '/var/lib/docker/volumes/named/_data', options: ['rbind', 'ro', 'rprivate'] },
    { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'size=16m'] },
    { destination: '/etc/resolv.conf', type: 'bind', source: '/var/lib/docker/containers/abc/resolv.conf', options: ['rbind', 'rprivate'] },
    { destination: '/etc/hostname', type: 'bind', source: '/var/lib/docker/containers/abc/hostname', options: ['rbind', 'rprivate'] },
    { destination: '/etc/hosts', type: 'bind', source: '/var/lib/docker/containers/abc/hosts', options: ['rbind', 'rprivate'] },
  ],
};

describe('classifyMount', () => {
  it('sorts docker mounts into system, copied, tmpfs and volumes', () => {
    const classes = (dockerSpec.mounts ?? []).map((m) => `${m.destination}:${classifyMount(m, K)}`);
    expect(classes).toEqual([
      '/proc:system', '/dev:system', '/dev/pts:system', '/sys:system', '/sys/fs/cgroup:system', '/dev/mqueue:system', '/dev/shm:system',
      '/data:volume', '/vol:volume', '/scratch:tmpfs', '/etc/resolv.conf:copied', '/etc/hostname:copied', '/etc/hosts:copied',
    ]);
  });

  it('recognises Kubernetes network volumes only (not configMaps, secrets, emptyDirs, projected tokens)', () => {
    const pod = `${K}/pods/0d7c1b4e-1111-2222-3333-444455556666/volumes`;
    const m = (plugin: string) => ({ destination: '/x', type: 'bind', source: `${pod}/kubernetes.io~${plugin}/v1`, options: ['rbind'] });
    expect(classifyMount(m('nfs'), K)).toBe('pvc');
    expect(classifyMount(m('csi'), K)).toBe('pvc');
    expect(classifyMount(m('rbd'), K)).toBe('pvc');
    expect(classifyMount(m('configmap'), K)).toBe('volume');
    expect(classifyMount(m('secret'), K)).toBe('volume');
    expect(classifyMount(m('empty-dir'), K)).toBe('volume');
    expect(classifyMount(m('projected'), K)).toBe('volume');
    expect(pvcInfo(`${pod}/kubernetes.io~csi/pvc-123/mount`, K)).toEqual({ plugin: 'csi', name: 'pvc-123' });
    expect(pvcInfo(`${pod}/kubernetes.io~nfs/v1`, '/tmp/other')).toBeUndefined();
    expect(pvcInfo('/var/lib/kubelet/pods/x/etc-hosts', K)).toBeUndefined();
  });

  it('honours a custom kubelet dir (RUNCVM_KUBELET_DIR)', () => {
    const m = { destination: '/data', type: 'bind', source: '/tmp/k/pods/u/volumes/kubernetes.io~nfs/pv', options: ['rbind'] };
    expect(classifyMount(m, '/tmp/k/')).toBe('pvc');
    expect(classifyMount(m, K)).toBe('volume');
  });
});

describe('volumeFlags', () => {
  it('keeps the last of ro/rw and the nosuid/nodev/noexec flags', () => {
    expect(volumeFlags(['rbind', 'ro'])).toEqual({ readOnly: true, nosuid: false, nodev: false, noexec: false });
    expect(volumeFlags(['ro', 'rw', 'nosuid', 'nodev', 'noexec'])).toEqual({ readOnly: false, nosuid: true, nodev: true, noexec: true });
    expect(volumeFlags(undefined).readOnly).toBe(false);
  });
});

describe('parseDisksSetting (RUNCVM_DISKS)', () => {
  it('parses entries, sizes and filesystems', () => {
    expect(parseDisksSetting('/disks/a.img,/data,ext4,1G; /disks/b.img,/var/lib/db/,EXT3,512M')).toEqual([
      { source: '/disks/a.img', destination: '/data', fs: 'ext4', sizeBytes: 1024 ** 3 },
      { source: '/disks/b.img', destination: '/var/lib/db', fs: 'ext3', sizeBytes: 512 * 1024 ** 2 },
    ]);
    expect(parseDisksSetting('')).toEqual([]);
    expect(parseDisksSetting(undefined)).toEqual([]);
    expect(parseDisksSetting('/a.img,/a,ext4,1.5g')[0]!.sizeBytes).toBe(1.5 * 1024 ** 3);
  });

  const cases: [string, string][] = [
    ['/a.img,/data,ext4', 'entry "/a.img,/data,ext4": has 3 fields, expected 4 (SRC,DST,FS,SIZE)'],
    ['a.img,/data,ext4,1G', 'SRC "a.img" is not an absolute path'],
    ['/a.img,data,ext4,1G', 'DST "data" is not an absolute path'],
    ['/a.img,/,ext4,1G', 'DST cannot be /'],
    ['/a.img,/data,xfs,1G', 'the guest kernel and package have no xfs support; supported: ext4, ext3, ext2'],
    ['/a.img,/data,zfs,1G', 'unknown filesystem "zfs"'],
    ['/a.img,/data,ext4,big', 'SIZE "big" is not a size'],
    ['/a.img,/data,ext4,1M', 'below the 8M minimum'],
    ['/a.img,/data,ext4,1G;/b.img,/data,ext4,1G', 'two disks are mounted at /data'],
  ];
  it.each(cases)('%s → a setting error naming the entry and the fix', (text, problem) => {
    let err: unknown;
    try {
      parseDisksSetting(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SettingError);
    const se = err as SettingError;
    expect(se.setting).toBe('RUNCVM_DISKS');
    expect(se.problem).toContain(problem);
    expect(se.fix).toContain('RUNCVM_DISKS=/disks/data.img,/data,ext4,1G');
  });
});

describe('planVolumes', () => {
  it('moves each volume under /.runcvm/vols and keeps its flags; files get their own folder', () => {
    const spec: OciSpec = {
      ...dockerSpec,
      mounts: [...(dockerSpec.mounts ?? []), { destination: '/etc/app.conf', type: 'bind', source: '/srv/app.conf', options: ['rbind', 'ro', 'nosuid'] }],
    };
    const plan = planVolumes(spec, { sources: { '/srv/a': 'dir', '/var/lib/docker/volumes/named/_data': 'dir', '/srv/app.conf': 'file' }, kubeletDir: K });
    expect(plan.volumes).toEqual([
      { kind: 'virtiofs', id: 'v0', tag: 'runcvm0', destination: '/data', containerPath: '/.runcvm/vols/v0', flags: { readOnly: false, nosuid: false, nodev: false, noexec: false }, hostSource: '/srv/a' },
      { kind: 'virtiofs', id: 'v1', tag: 'runcvm1', destination: '/vol', containerPath: '/.runcvm/vols/v1', flags: { readOnly: true, nosuid: false, nodev: false, noexec: false }, hostSource: '/var/lib/docker/volumes/named/_data' },
      { kind: 'virtiofs', id: 'v2', tag: 'runcvm2', destination: '/etc/app.conf', containerPath: '/.runcvm/vols/v2', file: 'app.conf', flags: { readOnly: true, nosuid: true, nodev: false, noexec: false }, hostSource: '/srv/app.conf' },
    ]);
    expect(plan.relocations).toEqual([
      { index: 7, from: '/data', to: '/.runcvm/vols/v0' },
      { index: 8, from: '/vol', to: '/.runcvm/vols/v1' },
      { index: 13, from: '/etc/app.conf', to: '/.runcvm/vols/v2/app.conf' },
    ]);
    expect(plan.redirects).toEqual([]);
    const moved = relocateVolumeMounts(spec, plan, spec);
    expect(moved.mounts!.map((m) => m.destination)).toEqual([
      '/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm', '/.runcvm/vols/v0', '/.runcvm/vols/v1', '/scratch',
      '/etc/resolv.conf', '/etc/hostname', '/etc/hosts', '/.runcvm/vols/v2/app.conf',
    ]);
    expect(moved.mounts![8]!.options).toEqual(['rbind', 'ro', 'rprivate']);
  });

  it('redirects a PVC under /.runcvm/vols/<id> and says so in the guide\'s words', () => {
    const src = `${K}/pods/u1/volumes/kubernetes.io~nfs/pv-data`;
    const spec: OciSpec = { ociVersion: '1.0.2', mounts: [{ destination: '/data', type: 'bind', source: src, options: ['rbind', 'rprivate'] }] };
    const plan = planVolumes(spec, { sources: { [src]: 'dir' }, kubeletDir: K });
    expect(plan.redirects).toEqual([{ destination: '/data', to: '/.runcvm/vols/v0-pv-data', plugin: 'nfs', name: 'pv-data' }]);
    expect(redirectLogLine('firecracker', plan.redirects[0]!)).toBe('[RunCVM-Runtime] FIRECRACKER: PVC Redirect: /data -> /.runcvm/vols/v0-pv-data');
    expect(redirectLogLine('qemu', plan.redirects[0]!)).toBe('[RunCVM-Runtime] QEMU: PVC Redirect: /data -> /.runcvm/vols/v0-pv-data');
  });

  it('places a RUNCVM_DISKS image on the volume that holds it (deepest first), else in the image', () => {
    const spec: OciSpec = {
      ociVersion: '1.0.2',
      mounts: [
        { destination: '/disks', type: 'bind', source: '/h/disks', options: ['rbind'] },
        { destination: '/disks/fast', type: 'bind', source: '/h/fast', options: ['rbind'] },
      ],
    };
    const plan = planVolumes(spec, { sources: {}, kubeletDir: K, disks: '/disks/a.img,/a,ext4,1G;/disks/fast/b.img,/b,ext4,1G;/var/c.img,/c,ext2,64M' });
    const disks = plan.volumes.filter((v) => v.kind === 'disk');
    expect(disks.map((d) => d.kind === 'disk' && [d.id, d.containerPath])).toEqual([
      ['disk0', '/.runcvm/vols/v0/a.img'],
      ['disk1', '/.runcvm/vols/v1/b.img'],
      ['disk2', '/var/c.img'],
    ]);
  });

  it('has nothing to do for a spec without volumes', () => {
    const plan = planVolumes({ ociVersion: '1.0.2', mounts: dockerSpec.mounts!.filter((m) => m.destination !== '/data' && m.destination !== '/vol') }, { sources: {}, kubeletDir: K });
    expect(plan).toEqual({ volumes: [], relocations: [], redirects: [] });
  });
});

describe('guest config and LaunchSpec', () => {
  const spec: OciSpec = {
    ociVersion: '1.0.2',
    mounts: [
      { destination: '/my data', type: 'bind', source: '/h/d', options: ['rbind', 'ro', 'nodev'] },
      { destination: '/etc/x.conf', type: 'bind', source: '/h/x.conf', options: ['rbind'] },
    ],
  };
  const plan = planVolumes(spec, { sources: { '/h/x.conf': 'file' }, kubeletDir: K, disks: '/my data/d.img,/mnt/d,ext4,64M' });

  it('renders one volume= line per mount, in order, escaped, data disks after root + upper', () => {
    expect(volumeConfigLines(plan.volumes, 2)).toEqual([
      'volume=virtiofs runcvm0 /my%20data ro,nodev -',
      'volume=virtiofs runcvm1 /etc/x.conf rw x.conf',
      'volume=ext4 /dev/vdc /mnt/d rw -',
    ]);
  });

  it('adds the data disks to the LaunchSpec disk list after root and upper', () => {
    const launch: { disks: { id: string; path: string; readOnly: boolean; role: 'root' | 'upper' | 'data' }[]; volumes?: Volume[] } = {
      disks: [
        { id: 'base', path: '/b', readOnly: true, role: 'root' as const },
        { id: 'upper', path: '/u', readOnly: false, role: 'upper' as const },
      ],
    };
    const out = withVolumesInLaunch(launch, plan);
    expect(out.disks.map((d) => `${d.id}:${d.path}:${d.role}`)).toEqual(['base:/b:root', 'upper:/u:upper', 'disk0:/.runcvm/vols/v0/d.img:data']);
    expect(out.volumes).toHaveLength(3);
    expect(withVolumesInLaunch(launch, { volumes: [] })).toBe(launch);
  });
});

describe('launcher container rewrite', () => {
  const spec: OciSpec = {
    ociVersion: '1.0.2',
    mounts: [{ destination: '/data', type: 'bind', source: '/h/d', options: ['rbind'] }],
    linux: { seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] } },
  };
  it('moves each volume to its /.runcvm/vols path and leaves everything else (the seccomp profile is not the launcher\'s: bundle/transforms drops it)', () => {
    const plan = planVolumes(spec, { sources: { '/h/d': 'dir' }, kubeletDir: K });
    const out = rewriteForVolumes(spec, plan, spec);
    expect(out.mounts![0]!.destination).toBe('/.runcvm/vols/v0');
    expect(out.linux).toEqual(spec.linux);
    const none = { ...spec, mounts: [] };
    expect(rewriteForVolumes(none, planVolumes(none, { sources: {}, kubeletDir: K }), none)).toBe(none);
  });
});
