import { describe, expect, it } from 'vitest';
import { Channel, decodeExit, encodeData, encodeExit, encodeFrame, encodeSignal, encodeWinsize, FrameDecoder, FrameType, MAX_PAYLOAD } from '../../../src/runcvm/agent/codec.js';

describe('host ↔ guest frame codec', () => {
  it('header layout: type, channel, session BE, length BE', () => {
    const f = encodeFrame(FrameType.DATA, Channel.stderr, Buffer.from('hi'), 0x0102);
    expect([...f]).toEqual([1, 2, 1, 2, 0, 0, 0, 2, 0x68, 0x69]);
  });
  it('decodes frames split at any byte boundary', () => {
    const stream = Buffer.concat([encodeFrame(FrameType.READY, 0), ...encodeData(Channel.stdout, Buffer.from('hello')), encodeExit(143, 15), encodeSignal(15), encodeWinsize(24, 80)]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(frames.map((f) => f.type)).toEqual([FrameType.READY, FrameType.DATA, FrameType.EXIT, FrameType.SIGNAL, FrameType.WINSIZE]);
      expect(frames[1]!.payload.toString()).toBe('hello');
      expect(decodeExit(frames[2]!.payload)).toEqual({ code: 143, signal: 15 });
      expect(d.pending).toBe(0);
    }
  });
  it('splits large data into frames of at most 64 KiB', () => {
    const frames = encodeData(Channel.stdin, Buffer.alloc(MAX_PAYLOAD * 2 + 1));
    expect(frames.map((f) => f.length - 8)).toEqual([MAX_PAYLOAD, MAX_PAYLOAD, 1]);
  });
  it('negative and large exit codes survive', () => {
    const d = new FrameDecoder();
    const [f] = d.push(encodeExit(255));
    expect(decodeExit(f!.payload)).toEqual({ code: 255, signal: 0 });
    expect(() => decodeExit(Buffer.alloc(2))).toThrow(/too short/);
  });
});
