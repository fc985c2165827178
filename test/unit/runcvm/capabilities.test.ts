/**
 * OCI capabilities and root.readonly on their way to the guest: names → numbers, the launch spec fields, the guest
 * config lines the C init parses, and the exec request the agent parses (the same `cap=` format).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import {
  CAPABILITY_NUMBERS,
  capabilitiesFromSpec,
  capabilityConfigLines,
  capabilityMask,
  capabilityNumbers,
  emptyCapabilitySets,
} from '../../../src/runcvm/launch/capabilities.js';
import { buildLaunchSpec } from '../../../src/runcvm/launch/build.js';
import { parseSettings } from '../../../src/runcvm/launch/settings.js';
import { parseLaunchSpec } from '../../../src/runcvm/launch/schema.js';
import { renderGuestConfig } from '../../../src/runcvm/launch/guest-config.js';
import { decodeOpenRequest, encodeOpenRequest, type ExecRequest } from '../../../src/runcvm/agent/exec.js';
import { rewriteExecProcess } from '../../../src/runcvm/exec/rewrite.js';

const fixture = (): OciSpec => JSON.parse(readFileSync(new URL('../../fixtures/runcvm/config.docker.json', import.meta.url), 'utf8')) as OciSpec;

/** Docker 20.10's default set (moby oci/caps/defaults.go), which every `docker run` without --cap-* gets. */
const DOCKER_DEFAULT = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

describe('capability names → numbers', () => {
  it('covers 0..40 once each, in kernel order', () => {
    const nums = Object.values(CAPABILITY_NUMBERS).sort((a, b) => a - b);
    expect(nums).toEqual(Array.from({ length: 41 }, (_, i) => i));
    expect(CAPABILITY_NUMBERS.CAP_NET_ADMIN).toBe(12);
    expect(CAPABILITY_NUMBERS.CAP_SYS_ADMIN).toBe(21);
    expect(CAPABILITY_NUMBERS.CAP_CHECKPOINT_RESTORE).toBe(40);
  });
  it("Docker's default set is the mask runc containers show in /proc/self/status (00000000a80425fb)", () => {
    expect(capabilityMask(DOCKER_DEFAULT).toString(16).padStart(16, '0')).toBe('00000000a80425fb');
  });
  it('every capability the kernel knows is CapBnd 000001ffffffffff; lastCap limits the mask', () => {
    const all = Object.keys(CAPABILITY_NUMBERS);
    expect(capabilityMask(all).toString(16)).toBe('1ffffffffff');
    expect(capabilityMask(all, 37).toString(16)).toBe('3fffffffff');
  });
  it('numbers are sorted, duplicate-free, unknown names skipped; not an inherited property', () => {
    expect(capabilityNumbers(['CAP_KILL', 'CAP_CHOWN', 'CAP_KILL', 'CAP_NOPE', 'toString'])).toEqual([0, 5]);
  });
});

describe('capabilitiesFromSpec (runc 1.1 rules)', () => {
  it('no capabilities object → five empty sets (runc starts such a process with none)', () => {
    expect(capabilitiesFromSpec(undefined)).toEqual({ sets: emptyCapabilitySets(), unknown: [] });
    expect(capabilitiesFromSpec(null)).toEqual({ sets: emptyCapabilitySets(), unknown: [] });
  });
  it('missing sets are empty; unknown names are left out and reported once; exact names only', () => {
    const r = capabilitiesFromSpec({
      bounding: ['CAP_CHOWN', 'CAP_BOGUS', 'CAP_CHOWN'],
      effective: ['CAP_BOGUS', 'net_admin'],
      permitted: ['CAP_NET_ADMIN'],
    });
    expect(r.sets).toEqual({ bounding: ['CAP_CHOWN'], effective: [], inheritable: [], permitted: ['CAP_NET_ADMIN'], ambient: [] });
    expect(r.unknown).toEqual(['CAP_BOGUS', 'net_admin']);
  });
});

describe('guest config and launch spec', () => {
  const settings = parseSettings({});
  it('buildLaunchSpec carries the five sets and root.readonly (false by default)', () => {
    const l = buildLaunchSpec(fixture(), { containerId: 'c1', settings, debugLog: false });
    expect(l.process.capabilities).toEqual({ bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], inheritable: [], permitted: ['CAP_CHOWN'], ambient: [] });
    expect(l.root).toEqual({ readonly: false });
    expect(parseLaunchSpec(JSON.stringify(l))).toEqual(l);
  });
  it('config lines: one cap= line per set (empty set as -) and readonly=1 only when asked', () => {
    const spec = fixture();
    spec.root = { path: 'rootfs', readonly: true };
    spec.process!.capabilities = { bounding: ['CAP_NET_ADMIN', 'CAP_CHOWN'], effective: [], ambient: ['CAP_KILL'] };
    const text = renderGuestConfig(buildLaunchSpec(spec, { containerId: 'c1', settings, debugLog: false }));
    expect(text.split('\n').filter((l) => l.startsWith('cap='))).toEqual([
      'cap=bounding 0,12',
      'cap=effective -',
      'cap=inheritable -',
      'cap=permitted -',
      'cap=ambient 5',
    ]);
    expect(text).toContain('\nreadonly=1\n');
    expect(renderGuestConfig(buildLaunchSpec(fixture(), { containerId: 'c1', settings, debugLog: false }))).not.toContain('readonly=');
  });
  it('a launch spec written before these fields still parses, and renders no cap= lines (old behaviour)', () => {
    const l = buildLaunchSpec(fixture(), { containerId: 'c1', settings, debugLog: false });
    const old = JSON.parse(JSON.stringify(l)) as Record<string, unknown> & { process: Record<string, unknown> };
    delete old.root;
    delete old.process.capabilities;
    const parsed = parseLaunchSpec(JSON.stringify(old));
    expect(parsed.process.capabilities).toBeUndefined();
    expect(renderGuestConfig(parsed)).not.toMatch(/^cap=/m);
  });
  it('capabilityConfigLines: one line per set, always in the same order', () => {
    expect(capabilityConfigLines({ ...emptyCapabilitySets(), permitted: ['CAP_SYS_ADMIN'] })).toEqual([
      'cap=bounding -', 'cap=effective -', 'cap=inheritable -', 'cap=permitted 21', 'cap=ambient -',
    ]);
  });
});

describe('exec requests carry the capabilities', () => {
  const base: ExecRequest = { args: ['id'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false };
  it('encodes cap= entries before the arguments and round-trips them', () => {
    const req: ExecRequest = { ...base, capabilities: { ...emptyCapabilitySets(), bounding: ['CAP_CHOWN', 'CAP_KILL'], effective: ['CAP_KILL'] } };
    const text = encodeOpenRequest(req).toString('utf8');
    expect(text).toContain('\0cap=bounding 0,5\0cap=effective 5\0cap=inheritable -\0cap=permitted -\0cap=ambient -\0arg=id\0');
    expect(decodeOpenRequest(encodeOpenRequest(req))).toEqual(req);
  });
  it('a request without capabilities has no cap= entry (the agent then keeps the old behaviour)', () => {
    expect(encodeOpenRequest(base).toString('utf8')).not.toContain('cap=');
  });
  it("rewriteExecProcess takes docker exec's sets, unknown names left out", () => {
    const { request } = rewriteExecProcess({ args: ['id'], cwd: '/', user: { uid: 0, gid: 0 }, capabilities: { bounding: ['CAP_KILL', 'CAP_FUTURE'], permitted: ['CAP_KILL'] } }, 'r1');
    expect(request.capabilities).toEqual({ ...emptyCapabilitySets(), bounding: ['CAP_KILL'], permitted: ['CAP_KILL'] });
  });
});
