import { describe, expect, it } from 'vitest';
import type { OciSpec } from '../../../../src/runcvm/launch/oci.js';
import { readVolumeSources } from '../../../../src/runcvm/volumes/host.js';
import { SettingError } from '../../../../src/runcvm/launch/settings.js';
import { NFS_MOUNT_OPTIONS, planContainerVolumes, planVolumes, volumeConfigLines, volumeTransport, withVolumeTransport } from '../../../../src/runcvm/volumes/plan.js';
import { sharedVolumeSchema } from '../../../../src/runcvm/launch/volume-schema.js';

const K = '/var/lib/kubelet';
const spec: OciSpec = {
  ociVersion: '1.0.2',
  process: { cwd: '/', user: { uid: 0, gid: 0 }, args: ['sh'] },
  mounts: [
    { destination: '/data', type: 'bind', source: `${K}/pods/p1/volumes/kubernetes.io~nfs/pv-data`, options: ['rbind', 'rw'] },
    { destination: '/ro', type: 'bind', source: '/srv/ro', options: ['rbind', 'ro'] },
    { destination: '/etc/app.conf', type: 'bind', source: '/srv/app.conf', options: ['rbind', 'rw'] },
  ],
};

describe('volume transport (virtiofs | nfs)', () => {
  it('QEMU: virtiofs unless RUNCVM_VOLUME_TRANSPORT=nfs; Firecracker: always nfs', () => {
    expect(volumeTransport('qemu', undefined)).toBe('virtiofs');
    expect(volumeTransport('qemu', '')).toBe('virtiofs');
    expect(volumeTransport('qemu', 'virtiofs')).toBe('virtiofs');
    expect(volumeTransport('qemu', 'NFS')).toBe('nfs');
    expect(volumeTransport('firecracker', undefined)).toBe('nfs');
    expect(volumeTransport('firecracker', 'virtiofs')).toBe('nfs');
  });

  it('a bad value is a setting error with the fix', () => {
    let err: unknown;
    try {
      volumeTransport('qemu', '9p');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SettingError);
    expect((err as SettingError).setting).toBe('RUNCVM_VOLUME_TRANSPORT');
    expect((err as SettingError).fix).toContain('RUNCVM_VOLUME_TRANSPORT=nfs');
  });

  it('nfs: guest config mounts 169.254.1.254:/.runcvm/vols/<id> at the destination (ro kept, single files too)', () => {
    const plan = planVolumes(spec, { sources: { '/srv/app.conf': 'file' }, kubeletDir: K });
    expect(withVolumeTransport(plan, 'virtiofs')).toBe(plan);
    const nfs = withVolumeTransport(plan, 'nfs');
    expect(nfs.relocations).toEqual(plan.relocations);
    expect(volumeConfigLines(nfs.volumes, 2)).toEqual([
      'volume=nfs 169.254.1.254:/.runcvm/vols/v0-pv-data /data rw -',
      'volume=nfs 169.254.1.254:/.runcvm/vols/v1 /ro ro -',
      'volume=nfs 169.254.1.254:/.runcvm/vols/v2 /etc/app.conf rw app.conf',
    ]);
    for (const v of nfs.volumes) expect(sharedVolumeSchema.parse(v)).toEqual(v);
    expect(NFS_MOUNT_OPTIONS).toBe('vers=3,proto=tcp,port=2049,mountport=2049,mountproto=tcp,nolock,addr=169.254.1.254');
  });

  it('Firecracker: volumes are planned for nfs (no VOLUMES_UNSUPPORTED) and the PVC redirect names FIRECRACKER', async () => {
    const sources = await readVolumeSources(spec, K);
    const { plan, log } = planContainerVolumes(spec, { hypervisor: 'firecracker', kubeletDir: K, sources });
    expect(plan.volumes.map((v) => (v.kind === 'virtiofs' ? v.transport : v.kind))).toEqual(['nfs', 'nfs', 'nfs']);
    expect(log.map((l) => l.msg).join('\n')).toContain('[RunCVM-Runtime] FIRECRACKER: PVC Redirect: /data -> /.runcvm/vols/v0-pv-data');
    const qemu = planContainerVolumes(spec, { hypervisor: 'qemu', kubeletDir: K, sources }).plan;
    expect(qemu.volumes.every((v) => v.kind === 'virtiofs' && v.transport === undefined)).toBe(true);
  });
});
