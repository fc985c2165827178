/**
 * XDR (RFC 4506) encoding and decoding: big-endian 32-bit units, opaque data padded to 4 bytes. Pure: buffers in,
 * values out. Decoding never reads past the end: a short or malformed message throws XdrError, which the RPC layer
 * answers with GARBAGE_ARGS.
 */

export class XdrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XdrError';
  }
}

const pad4 = (n: number) => (4 - (n & 3)) & 3;

export class XdrReader {
  private pos = 0;

  constructor(private readonly buf: Buffer, start = 0) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new XdrError(`XDR: ${what} needs ${n} bytes at offset ${this.pos}, message has ${this.buf.length}`);
    }
  }

  uint(): number {
    this.need(4, 'uint32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bool(): boolean {
    const v = this.uint();
    if (v > 1) throw new XdrError(`XDR: bool must be 0 or 1, got ${v}`);
    return v === 1;
  }

  uhyper(): bigint {
    this.need(8, 'uint64');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Fixed-length opaque (padded). */
  fixed(n: number): Buffer {
    this.need(n + pad4(n), `opaque[${n}]`);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n + pad4(n);
    return v;
  }

  /** Variable-length opaque<max> (length, bytes, padding); returns a view, not a copy. */
  opaque(max = 0xffffffff): Buffer {
    const n = this.uint();
    if (n > max) throw new XdrError(`XDR: opaque of ${n} bytes exceeds its limit of ${max}`);
    return this.fixed(n);
  }

  string(max = 0xffffffff): string {
    return this.opaque(max).toString('utf8');
  }

  /** optional-data (`*T`): a bool then T when true. */
  optional<T>(read: (r: XdrReader) => T): T | undefined {
    return this.bool() ? read(this) : undefined;
  }

  array<T>(read: (r: XdrReader) => T, max = 0xffffffff): T[] {
    const n = this.uint();
    if (n > max) throw new XdrError(`XDR: array of ${n} items exceeds its limit of ${max}`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(read(this));
    return out;
  }

  /** The rest of the message (a view). */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }
}

export class XdrWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  uint(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new XdrError(`XDR: ${v} is not a uint32`);
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  int(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new XdrError(`XDR: ${v} is not an int32`);
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  bool(v: boolean): this {
    return this.uint(v ? 1 : 0);
  }

  uhyper(v: bigint | number): this {
    const b = BigInt(v);
    if (b < 0n || b > 0xffffffffffffffffn) throw new XdrError(`XDR: ${b} is not a uint64`);
    this.ensure(8);
    this.buf.writeBigUInt64BE(b, this.pos);
    this.pos += 8;
    return this;
  }

  fixed(data: Buffer | Uint8Array): this {
    const p = pad4(data.length);
    this.ensure(data.length + p);
    this.buf.set(data, this.pos);
    this.pos += data.length;
    this.buf.fill(0, this.pos, this.pos + p);
    this.pos += p;
    return this;
  }

  opaque(data: Buffer | Uint8Array): this {
    this.uint(data.length);
    return this.fixed(data);
  }

  string(s: string): this {
    return this.opaque(Buffer.from(s, 'utf8'));
  }

  optional<T>(value: T | undefined, write: (w: XdrWriter, v: T) => void): this {
    if (value === undefined) return this.bool(false);
    this.bool(true);
    write(this, value);
    return this;
  }

  array<T>(items: readonly T[], write: (w: XdrWriter, v: T) => void): this {
    this.uint(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  /** Forget everything written after `length` (to rewrite a reply body after a failure). */
  truncate(length: number): this {
    if (length < 0 || length > this.pos) throw new XdrError(`XDR: cannot truncate ${this.pos} bytes to ${length}`);
    this.pos = length;
    return this;
  }

  /** A copy of the bytes written so far. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  /** A view of the bytes written so far (valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
