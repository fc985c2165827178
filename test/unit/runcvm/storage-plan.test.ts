import { describe, expect, it } from 'vitest';
import {
  baseDiskSize,
  layerCacheKeyMaterial,
  overlayLayersAt,
  parseMountinfo,
  planEviction,
  splitVolatileLowers,
  upperDiskSize,
  unescapeMountinfo,
} from '../../../src/runcvm/storage/plan.js';

const MiB = 1024 * 1024;
const MOUNTINFO = [
  '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
  '812 22 0:75 / /run/containerd/io.containerd.runtime.v2.task/ns/c1/rootfs rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/snapshots/3/fs:/var/lib/containerd/snapshots/2/fs,upperdir=/var/lib/containerd/snapshots/4/fs,workdir=/var/lib/containerd/snapshots/4/work',
  '813 22 0:76 / /var/lib/docker/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/INIT:/var/lib/docker/overlay2/l/BASE,upperdir=/var/lib/docker/overlay2/abc/diff,workdir=/var/lib/docker/overlay2/abc/work',
  '814 22 0:77 / /with\\040space rw - overlay overlay rw,lowerdir=x/fs:y/fs,upperdir=z',
  '815 22 0:78 / /plain rw - ext4 /dev/vda2 rw',
].join('\n');

describe('disk sizes (never truncate)', () => {
  it('base: content + 10 % + 32 MiB, whole MiB, inodes with headroom', () => {
    const s = baseDiskSize({ bytes: 200 * MiB, inodes: 10_000 });
    expect(s.bytes % MiB).toBe(0);
    expect(s.bytes).toBeGreaterThanOrEqual(220 * MiB + 32 * MiB);
    expect(s.inodes).toBe(13_524);
  });
  it('writable: at least RUNCVM_ROOTFS_SIZE, and at least the content (2.4 GB image is not squeezed into 256M)', () => {
    expect(upperDiskSize({ bytes: 3 * MiB, inodes: 300 }, 256 * MiB).bytes).toBe(256 * MiB);
    const big = upperDiskSize({ bytes: 2400 * MiB, inodes: 50_000 }, 256 * MiB);
    expect(big.bytes).toBeGreaterThan(2400 * MiB);
    expect(big.inodes).toBeGreaterThan(50_000);
  });
});

describe('mountinfo → overlay layers (cache key source)', () => {
  const mounts = parseMountinfo(MOUNTINFO);
  it('parses and unescapes', () => {
    expect(mounts.map((m) => m.mountPoint)).toContain('/with space');
    expect(unescapeMountinfo('a\\011b')).toBe('a\tb');
  });
  it('finds lowers and upper of the rootfs mount', () => {
    expect(overlayLayersAt(mounts, '/run/containerd/io.containerd.runtime.v2.task/ns/c1/rootfs/')).toEqual({
      lowers: ['/var/lib/containerd/snapshots/3/fs', '/var/lib/containerd/snapshots/2/fs'],
      upper: '/var/lib/containerd/snapshots/4/fs',
    });
  });
  it('refuses relative layer paths and non-overlay mounts (→ tree fingerprint fallback)', () => {
    expect(overlayLayersAt(mounts, '/with space')).toBeUndefined();
    expect(overlayLayersAt(mounts, '/plain')).toBeUndefined();
    expect(overlayLayersAt(mounts, '/nowhere')).toBeUndefined();
  });
  it("splits docker's per-container -init layer off the shared ones", () => {
    const lowers = ['/var/lib/docker/overlay2/l/INIT', '/var/lib/docker/overlay2/l/BASE'];
    const resolved = ['/var/lib/docker/overlay2/abc-init/diff', '/var/lib/docker/overlay2/base/diff'];
    expect(splitVolatileLowers(lowers, resolved)).toEqual({ shared: ['/var/lib/docker/overlay2/l/BASE'], volatile: ['/var/lib/docker/overlay2/l/INIT'] });
  });
  it('cache key material changes with any layer identity', () => {
    const a = layerCacheKeyMaterial([{ path: '/l/1', dev: 1, ino: 2, mtimeMs: 3.7 }]);
    expect(a).toBe(layerCacheKeyMaterial([{ path: '/l/1', dev: 1, ino: 2, mtimeMs: 3.2 }]));
    expect(a).not.toBe(layerCacheKeyMaterial([{ path: '/l/1', dev: 1, ino: 9, mtimeMs: 3 }]));
  });
});

describe('planEviction: the base-disk cache within RUNCVM_CACHE_MAX (issue 16 cause 9)', () => {
  const e = (name: string, mib: number, usedMs: number) => ({ path: `/c/${name}.ext4`, bytes: mib * MiB, usedMs });
  const entries = [e('a', 40, 1), e('b', 40, 3), e('c', 40, 2), e('d', 40, 4)];
  it('removes the least recently used first, only until the cache fits', () => {
    expect(planEviction(entries, 100 * MiB, '/c/d.ext4', new Set())).toEqual(['/c/a.ext4', '/c/c.ext4']);
    expect(planEviction(entries, 160 * MiB, '/c/d.ext4', new Set())).toEqual([]);
  });
  it('never the disk just built or hit, never one a container uses; over the bound when nothing else can go', () => {
    expect(planEviction(entries, 100 * MiB, '/c/a.ext4', new Set(['/c/c.ext4']))).toEqual(['/c/b.ext4', '/c/d.ext4']);
    expect(planEviction(entries, 0, '/c/d.ext4', new Set(['/c/a.ext4', '/c/b.ext4', '/c/c.ext4']))).toEqual([]);
  });
});
