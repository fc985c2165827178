import { describe, expect, it } from 'vitest';
import { decodeOpenRequest, encodeClose, encodeOpen, encodeOpenRequest, ExecFrameType, exitCodeOf, type ExecRequest } from '../../../../src/runcvm/agent/exec.js';
import { FrameDecoder, FrameTooLargeError, HEADER_BYTES, MAX_PAYLOAD } from '../../../../src/runcvm/agent/codec.js';

const req: ExecRequest = {
  args: ['sh', '-c', 'echo "a b" $HOME', ''],
  env: ['PATH=/bin', 'X=é=ü'],
  cwd: '/tmp',
  user: { uid: 1000, gid: 1000, additionalGids: [2000, 3000] },
  terminal: true,
  rows: 24,
  cols: 80,
};

describe('exec OPEN request', () => {
  it('is NUL-terminated key=value entries, in a fixed order (the C agent parses it)', () => {
    const p = encodeOpenRequest(req).toString('utf8');
    expect(p).toBe('uid=1000\0gid=1000\0groups=2000,3000\0cwd=/tmp\0tty=1\0rows=24\0cols=80\0arg=sh\0arg=-c\0arg=echo "a b" $HOME\0arg=\0env=PATH=/bin\0env=X=é=ü\0');
  });
  it('round-trips, empty arguments included', () => {
    expect(decodeOpenRequest(encodeOpenRequest(req))).toEqual(req);
    const plain: ExecRequest = { args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false };
    expect(decodeOpenRequest(encodeOpenRequest(plain))).toEqual(plain);
  });
  it('refuses NUL bytes, an empty command, and requests over one frame', () => {
    expect(() => encodeOpenRequest({ ...req, args: ['a\0b'] })).toThrow(/NUL byte/);
    expect(() => encodeOpenRequest({ ...req, args: [] })).toThrow(/needs a command/);
    expect(() => encodeOpenRequest({ ...req, env: [`BIG=${'x'.repeat(MAX_PAYLOAD)}`] })).toThrow(/limit is 65536/);
  });
  it('frames: OPEN and CLOSE carry the session in the shared 8-byte header', () => {
    const dec = new FrameDecoder();
    const frames = dec.push(Buffer.concat([encodeOpen(req, 7), encodeClose(7)]));
    expect(frames.map((f) => [f.type, f.session])).toEqual([
      [ExecFrameType.OPEN, 7],
      [ExecFrameType.CLOSE, 7],
    ]);
    expect(encodeClose(0x1234).subarray(0, HEADER_BYTES)).toEqual(Buffer.from([17, 0, 0x12, 0x34, 0, 0, 0, 0]));
  });
  it('exit code: 128+N for a signal', () => {
    expect(exitCodeOf({ code: 3, signal: 0 })).toBe(3);
    expect(exitCodeOf({ code: 137, signal: 9 })).toBe(137);
    expect(exitCodeOf({ code: 0, signal: 15 })).toBe(143);
  });
});

describe('frame decoder bound (guest root must not make the host buffer gigabytes)', () => {
  it('a header announcing more than MAX_PAYLOAD throws at once, before its payload arrives', () => {
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt8(1, 0);
    header.writeUInt32BE(1024 * 1024 * 1024, 4);
    const dec = new FrameDecoder();
    expect(() => dec.push(header)).toThrow(FrameTooLargeError);
    expect(dec.pending).toBe(0);
  });
  it('exactly MAX_PAYLOAD is a frame', () => {
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(MAX_PAYLOAD, 4);
    const frames = new FrameDecoder().push(Buffer.concat([header, Buffer.alloc(MAX_PAYLOAD, 7)]));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.payload.length).toBe(MAX_PAYLOAD);
  });
});
