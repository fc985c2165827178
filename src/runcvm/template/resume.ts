/**
 * The RESUME frame (issue 17, guest/contract.ts ResumeKey; the guest's reader is guest/resume.c): what a VM restored
 * from a template gets that is its own and lives in kernel memory or on the command line. Pure, but for the clock
 * and the seed, which the caller reads at send time.
 */
import { encodeFrame, FrameType } from '../agent/codec.js';
import { FRAME_MAX_PAYLOAD, ResumeKey } from '../guest/contract.js';

export interface ResumeData {
  /** the host's CLOCK_REALTIME in nanoseconds, read when the frame is sent */
  clockNs: bigint;
  /** 64 random bytes (crypto.randomBytes), credited to the guest's pool */
  seed: Buffer;
  /** in NIC (virtio device) order */
  macs: readonly string[];
  /** the `runcvm.net.*` words guestNetCmdline makes for a cold boot's command line */
  net: readonly string[];
}

export const RESUME_SEED_BYTES = 64;

/** The RESUME payload: NUL-terminated `key=value` entries. Throws on what the guest could not take. */
export function encodeResumePayload(d: ResumeData): Buffer {
  if (d.seed.length !== RESUME_SEED_BYTES) throw new Error(`RESUME seed must be ${RESUME_SEED_BYTES} bytes, not ${d.seed.length}`);
  if (d.clockNs < 0n) throw new Error('RESUME clock before 1970');
  const entries = [
    `${ResumeKey.clockNs}=${d.clockNs.toString()}`,
    `${ResumeKey.seed}=${d.seed.toString('hex')}`,
    ...d.macs.map((m) => `${ResumeKey.mac}=${m}`),
    ...d.net.map((w) => `${ResumeKey.net}=${w}`),
  ];
  for (const e of entries) if (/[\0\n]/.test(e)) throw new Error(`RESUME entry holds a NUL or a newline: ${JSON.stringify(e.slice(0, 60))}`);
  const payload = Buffer.from(entries.map((e) => `${e}\0`).join(''), 'utf8');
  if (payload.length > FRAME_MAX_PAYLOAD) throw new Error(`RESUME payload of ${payload.length} bytes exceeds ${FRAME_MAX_PAYLOAD}`);
  return payload;
}

export function encodeResume(d: ResumeData): Buffer {
  return encodeFrame(FrameType.RESUME, 0, encodeResumePayload(d));
}

/** The inverse (tests, logs): entries by key, repeated keys in order. */
export function decodeResumePayload(payload: Buffer): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of payload.toString('utf8').split('\0')) {
    if (!e) continue;
    const eq = e.indexOf('=');
    if (eq < 0) continue;
    (out[e.slice(0, eq)] ??= []).push(e.slice(eq + 1));
  }
  return out;
}
