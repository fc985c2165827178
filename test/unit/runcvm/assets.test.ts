import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { isToolError } from '../../../src/core/errors.js';
import {
  assertAssetsPresent,
  guestPackageDir,
  initramfsCmdline,
  kernelAssets,
  missingAsset,
  REQUIRED_GUEST_FILES,
  tscEarlyKhz,
} from '../../../src/runcvm/assets.js';

const dir = '/nonexistent/assets';
const all = new Set([
  join(dir, 'kernel/vmlinux'),
  join(dir, 'kernel/initramfs.img'),
  ...REQUIRED_GUEST_FILES.map((f) => join(dir, 'guest', f)),
]);

describe('asset paths', () => {
  it('kernelAssets and guestPackageDir name files under the assets folder', () => {
    expect(kernelAssets(dir)).toEqual({
      vmlinux: '/nonexistent/assets/kernel/vmlinux',
      initramfs: '/nonexistent/assets/kernel/initramfs.img',
      release: '',
      manifestPath: '/nonexistent/assets/kernel/manifest.json',
    });
    expect(guestPackageDir(dir)).toBe('/nonexistent/assets/guest');
  });

  it('missingAsset reports the first missing file, kernel before guest', () => {
    expect(missingAsset(dir, (p) => all.has(p))).toBeUndefined();
    expect(missingAsset(dir, (p) => all.has(p) && !p.endsWith('initramfs.img'))).toEqual({
      kind: 'kernel',
      path: '/nonexistent/assets/kernel/initramfs.img',
      missing: 'initramfs.img',
    });
    expect(missingAsset(dir, (p) => all.has(p) && !p.endsWith('lib/ld'))).toEqual({
      kind: 'guest',
      path: '/nonexistent/assets/guest',
      missing: 'lib/ld',
    });
  });

  it('assertAssetsPresent throws NO_KERNEL / NO_GUEST_PACKAGE with the file and the fix', () => {
    expect(() => assertAssetsPresent(dir, (p) => all.has(p))).not.toThrow();
    try {
      assertAssetsPresent(dir, () => false);
      expect.unreachable();
    } catch (err) {
      expect(isToolError(err)).toBe(true);
      if (!isToolError(err)) return;
      expect(err.code).toBe('NO_KERNEL');
      expect(err.message).toContain('/nonexistent/assets/kernel/vmlinux');
      expect(err.causeText).toContain('bash scripts/assets/10-kernel.sh');
      expect(err.fix).toContain('scripts/assets/10-kernel.sh');
    }
    try {
      assertAssetsPresent(dir, (p) => p.includes('/kernel/'));
      expect.unreachable();
    } catch (err) {
      expect(isToolError(err) && err.code).toBe('NO_GUEST_PACKAGE');
      expect((err as Error).message).toContain('lib/ld');
    }
  });
});

describe('initramfsCmdline', () => {
  it('emits only what is set, in a stable order', () => {
    expect(initramfsCmdline()).toEqual([]);
    expect(
      initramfsCmdline({ root: '/dev/vda', upper: '/dev/vdb', init: '/sbin/init', debug: true, breakInitramfs: true, moduleGroups: ['nfs'] }),
    ).toEqual(['root=/dev/vda', 'runcvm.upper=/dev/vdb', 'runcvm.init=/sbin/init', 'runcvm.modules=nfs', 'runcvm.break=initramfs', 'runcvm.debug=1']);
    expect(initramfsCmdline({ moduleGroups: [] })).toEqual(['runcvm.modules=none']);
    expect(initramfsCmdline({ rootfstype: 'ext4', rootflags: 'noatime,discard' })).toEqual(['rootfstype=ext4', 'rootflags=noatime,discard']);
  });

  it('refuses values that would split the kernel command line', () => {
    expect(() => initramfsCmdline({ init: '/bin/my init' })).toThrow(/runcvm.init/);
    expect(() => initramfsCmdline({ root: '/dev/vda"' })).toThrow(/root=/);
  });
});

describe('tscEarlyKhz', () => {
  it('reads the first cpu MHz line', () => {
    expect(tscEarlyKhz('processor\t: 0\ncpu MHz\t\t: 2000.000\ncpu MHz\t\t: 2100.5\n')).toBe(2_000_000);
    expect(tscEarlyKhz('cpu MHz : 2394.454')).toBe(2_394_454);
    expect(tscEarlyKhz('no such line')).toBeUndefined();
  });
});
