/**
 * Pure decisions behind test/e2e/runtime-settings.test.ts and the read-only /run case of runtime-caps.test.ts:
 * which RUNCVM_KERNEL_APPEND values may reach the kernel command line, and when the workload's /run follows a
 * read-only root.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import { buildLaunchSpec, rootFromSpec } from '../../../src/runcvm/launch/build.js';
import { kernelAppendProblem, parseSettings, SettingError } from '../../../src/runcvm/launch/settings.js';
import { parseLaunchSpec } from '../../../src/runcvm/launch/schema.js';
import { renderGuestConfig } from '../../../src/runcvm/launch/guest-config.js';
import { judgeSetting } from '../../../src/runcvm/lint/settings.js';

const fixture = (): OciSpec => JSON.parse(readFileSync(new URL('../../fixtures/runcvm/config.docker.json', import.meta.url), 'utf8')) as OciSpec;

describe('RUNCVM_KERNEL_APPEND', () => {
  it.each([
    'loglevel=7',
    'mitigations=off  e2e.marker=1',
    'e2e.words="two words" nokaslr',
    'rootdelay=1 initcall_debug consoleblank=0', // names that merely start like reserved ones
    '',
  ])('accepts %j', (text) => {
    expect(kernelAppendProblem(text)).toBeUndefined();
  });

  it.each([
    ['runcvm.init=/bin/sh', /sets runcvm\.init/],
    ['quiet runcvm.break=initramfs', /sets runcvm\.break/],
    ['e2e.x="a runcvm.debug=1"', /sets runcvm\.debug/], // the initramfs splits on blanks, quotes or not
    ['"runcvm.upper=/dev/vdc"', /sets runcvm\.upper/], // the kernel strips a leading quote from the name
    ['root=/dev/vdb', /sets root=/],
    ['rdinit=/x', /sets rdinit=/],
    ['init=/bin/sh', /sets init=/],
    ['console=tty0', /sets console=/],
    ['rootfstype=xfs', /sets rootfstype=/],
    ['e2e.x="open', /unbalanced double quote/],
    ['quiet -- anything', /contains "--"/],
    ['a=1\nrunc=2', /control character/],
    ['a=1\tb=2', /control character/],
  ])('refuses %j', (text, problem) => {
    expect(kernelAppendProblem(text)).toMatch(problem);
  });

  it('parseSettings trims, keeps an accepted value, and throws a SettingError with the fix for a refused one', () => {
    expect(parseSettings({ RUNCVM_KERNEL_APPEND: '  loglevel=7 ' }).kernelAppend).toBe('loglevel=7');
    let err: unknown;
    try {
      parseSettings({ RUNCVM_KERNEL_APPEND: ' runcvm.init=/bin/sh ' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SettingError);
    const se = err as SettingError;
    expect(se.message).toBe('RUNCVM_KERNEL_APPEND="runcvm.init=/bin/sh" is not valid: it sets runcvm.init, a parameter of runcvm\'s own boot contract');
    expect(se.fix).toMatch(/^keep RUNCVM_KERNEL_APPEND to plain kernel parameters/);
    expect(se.fix).toContain('RUNCVM_BREAK');
  });

  it('runcvm lint judges it with the same check', () => {
    expect(judgeSetting('RUNCVM_KERNEL_APPEND', 'root=/dev/vdb')).toMatchObject({ kind: 'invalid', problem: expect.stringMatching(/sets root=/) as unknown });
    expect(judgeSetting('RUNCVM_KERNEL_APPEND', 'loglevel=7')).toBeUndefined();
  });
});

describe('read-only root: the workload /run', () => {
  const settings = parseSettings({});
  const withRoot = (readonly: boolean, mounts: OciSpec['mounts']): OciSpec => ({ ...fixture(), root: { path: 'rootfs', readonly }, mounts });

  it('follows the root when the spec mounts nothing at /run (Docker --read-only)', () => {
    expect(rootFromSpec(withRoot(true, [{ destination: '/tmp', type: 'tmpfs', source: 'tmpfs' }]))).toEqual({ readonly: true, readonlyRun: true });
  });
  it('stays writable when the spec has a mount at /run, however it is spelt (containerd\'s default tmpfs, a bind)', () => {
    expect(rootFromSpec(withRoot(true, [{ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] }]))).toEqual({ readonly: true });
    expect(rootFromSpec(withRoot(true, [{ destination: '/run/', type: 'bind', source: '/host/run', options: ['rbind'] }]))).toEqual({ readonly: true });
  });
  it('a mount below /run does not count (its mount point lives in the read-only /run)', () => {
    expect(rootFromSpec(withRoot(true, [{ destination: '/run/secrets', type: 'bind', source: '/s', options: ['rbind'] }]))).toEqual({ readonly: true, readonlyRun: true });
  });
  it('never without a read-only root', () => {
    expect(rootFromSpec(withRoot(false, []))).toEqual({ readonly: false });
  });
  it('reaches the guest config as readonly_run=1, after readonly=1, and survives the launch spec round trip', () => {
    const l = buildLaunchSpec(withRoot(true, []), { containerId: 'c1', settings, debugLog: false });
    expect(parseLaunchSpec(JSON.stringify(l))).toEqual(l);
    expect(renderGuestConfig(l)).toContain('\nreadonly=1\nreadonly_run=1\n');
    const writable = buildLaunchSpec(withRoot(true, [{ destination: '/run', type: 'tmpfs', source: 'tmpfs' }]), { containerId: 'c1', settings, debugLog: false });
    expect(renderGuestConfig(writable)).not.toContain('readonly_run');
  });
});
