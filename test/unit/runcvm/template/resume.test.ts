/**
 * The RESUME frame (issue 17): the host's encoder against the guest contract (contract.h, which runcvm-resume
 * compiles against) and its guards.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../../../../src/core/paths.js';
import { FrameDecoder, FrameType } from '../../../../src/runcvm/agent/codec.js';
import { ResumeKey } from '../../../../src/runcvm/guest/contract.js';
import { decodeResumePayload, encodeResume, encodeResumePayload } from '../../../../src/runcvm/template/resume.js';

const seed = Buffer.alloc(64, 0xab);
const header = readFileSync(projectPath('src', 'runcvm', 'guest', 'contract.h'), 'utf8');
const resumeC = readFileSync(projectPath('src', 'runcvm', 'guest', 'resume.c'), 'utf8');

describe('RESUME frame', () => {
  it('one frame of type RESUME (10), NUL-terminated key=value entries in the contract keys, MACs and words in order', () => {
    const frame = encodeResume({ clockNs: 1_700_000_000_123_456_789n, seed, macs: ['52:54:00:00:00:01', '52:54:00:00:00:02'], net: ['runcvm.net.if=eth0,52:54:00:00:00:01,1500,10.0.0.2/24', 'runcvm.net.wait=10000'] });
    const [f, ...rest] = new FrameDecoder().push(frame);
    expect(rest).toEqual([]);
    expect(f!.type).toBe(FrameType.RESUME);
    expect(FrameType.RESUME).toBe(10);
    expect(f!.payload.at(-1)).toBe(0);
    expect(decodeResumePayload(f!.payload)).toEqual({
      [ResumeKey.clockNs]: ['1700000000123456789'],
      [ResumeKey.seed]: ['ab'.repeat(64)],
      [ResumeKey.mac]: ['52:54:00:00:00:01', '52:54:00:00:00:02'],
      [ResumeKey.net]: ['runcvm.net.if=eth0,52:54:00:00:00:01,1500,10.0.0.2/24', 'runcvm.net.wait=10000'],
    });
  });

  it('the guest side reads the same keys from contract.h (no hand-written copies in resume.c)', () => {
    expect(header).toMatch(/T_PARKED = 9, T_RESUME = 10/);
    for (const [k, v] of Object.entries(ResumeKey)) {
      const macro = `RESUME_KEY_${k.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`;
      expect(header).toContain(`#define ${macro} "${v}"`);
      expect(resumeC).toContain(macro);
      expect(resumeC).not.toContain(`"${v}"`);
    }
    expect(resumeC).toContain('IO_PORT_NAME');
  });

  it('refuses what the guest could not take', () => {
    expect(() => encodeResumePayload({ clockNs: 1n, seed: Buffer.alloc(8), macs: [], net: [] })).toThrow(/64 bytes/);
    expect(() => encodeResumePayload({ clockNs: 1n, seed, macs: [], net: ['a\nb'] })).toThrow(/newline/);
    expect(() => encodeResumePayload({ clockNs: 1n, seed, macs: [], net: ['x'.repeat(70_000)] })).toThrow(/exceeds/);
  });
});
