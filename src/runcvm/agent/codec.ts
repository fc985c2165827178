/**
 * The host ↔ guest channel: one bidirectional virtio-serial port named `runcvm.io` carries framed messages, so that
 * stdout, stderr and the exit status travel in one ordered queue (the exit frame always comes after the last output
 * byte: nothing is lost at the end) and stdin, signals and window sizes travel back.
 *
 * Frame: 8-byte header `type u8 | channel u8 | session u16 BE | length u32 BE` then `length` payload bytes.
 * Session 0 is the container's main process; an exec agent can open more sessions with new frame types.
 * The types, channels and limits are the guest contract's (src/runcvm/guest/contract.ts), which the C side reads as
 * the generated contract.h: one definition for both languages.
 */
import { Channel, FRAME_HEADER_BYTES, FRAME_MAX_PAYLOAD, FrameType, type FrameTypeName, IO_PORT_NAME } from '../guest/contract.js';

export const PORT_NAME = IO_PORT_NAME;
export const HEADER_BYTES = FRAME_HEADER_BYTES;
export const MAX_PAYLOAD = FRAME_MAX_PAYLOAD;

export { Channel, FrameType, type FrameTypeName };

export interface Frame {
  type: number;
  channel: number;
  session: number;
  payload: Buffer;
}

export function encodeFrame(type: number, channel: number, payload: Buffer = Buffer.alloc(0), session = 0): Buffer {
  if (payload.length > 0xffffffff) throw new RangeError('frame payload too large');
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(type, 0);
  header.writeUInt8(channel, 1);
  header.writeUInt16BE(session, 2);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Split data into DATA frames of at most MAX_PAYLOAD bytes. */
export function encodeData(channel: number, data: Buffer, session = 0): Buffer[] {
  const frames: Buffer[] = [];
  for (let off = 0; off < data.length; off += MAX_PAYLOAD) {
    frames.push(encodeFrame(FrameType.DATA, channel, data.subarray(off, off + MAX_PAYLOAD), session));
  }
  return frames;
}

export function encodeSignal(signo: number, session = 0): Buffer {
  return encodeFrame(FrameType.SIGNAL, 0, Buffer.from([signo & 0xff]), session);
}

export function encodeWinsize(rows: number, cols: number, session = 0): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt16BE(rows & 0xffff, 0);
  p.writeUInt16BE(cols & 0xffff, 2);
  return encodeFrame(FrameType.WINSIZE, 0, p, session);
}

export function encodeExit(code: number, signal = 0, session = 0): Buffer {
  const p = Buffer.alloc(5);
  p.writeInt32BE(code, 0);
  p.writeUInt8(signal, 4);
  return encodeFrame(FrameType.EXIT, 0, p, session);
}

export function decodeExit(payload: Buffer): { code: number; signal: number } {
  if (payload.length < 4) throw new RangeError(`EXIT frame too short (${payload.length} bytes)`);
  return { code: payload.readInt32BE(0), signal: payload.length > 4 ? payload.readUInt8(4) : 0 };
}

/** A header claimed more than MAX_PAYLOAD bytes: the peer is broken or hostile, the stream cannot be trusted further. */
export class FrameTooLargeError extends Error {
  constructor(readonly length: number) {
    super(`frame of ${length} bytes announced; the limit is ${MAX_PAYLOAD}: closing the channel`);
  }
}

/**
 * Incremental decoder: feed chunks as they arrive, get whole frames back. A header announcing more than MAX_PAYLOAD
 * throws FrameTooLargeError before anything is buffered for it: guest root must not make the host side hold up to
 * 4 GiB per session (the caller closes the connection).
 */
export class FrameDecoder {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    const frames: Frame[] = [];
    while (this.buffered.length >= HEADER_BYTES) {
      const length = this.buffered.readUInt32BE(4);
      if (length > MAX_PAYLOAD) {
        this.buffered = Buffer.alloc(0);
        throw new FrameTooLargeError(length);
      }
      if (this.buffered.length < HEADER_BYTES + length) break;
      frames.push({
        type: this.buffered.readUInt8(0),
        channel: this.buffered.readUInt8(1),
        session: this.buffered.readUInt16BE(2),
        payload: Buffer.from(this.buffered.subarray(HEADER_BYTES, HEADER_BYTES + length)),
      });
      this.buffered = this.buffered.subarray(HEADER_BYTES + length);
    }
    return frames;
  }

  /** bytes of an unfinished frame (non-zero at end of stream means the peer died mid-frame) */
  get pending(): number {
    return this.buffered.length;
  }
}
