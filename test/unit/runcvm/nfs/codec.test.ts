import { describe, expect, it } from 'vitest';
import { XdrError, XdrReader, XdrWriter } from '../../../../src/runcvm/nfs/xdr.js';
import {
  AcceptStat,
  acceptedReply,
  AuthStat,
  authErrorReply,
  decodeAuthSys,
  decodeCall,
  decodeReply,
  encodeAuthSys,
  encodeCall,
  encodeRecord,
  RecordDecoder,
} from '../../../../src/runcvm/nfs/rpc.js';

describe('XDR', () => {
  it('round-trips every primitive with 4-byte padding', () => {
    const w = new XdrWriter(4);
    w.uint(0xdeadbeef).int(-2).bool(true).uhyper(0x0123456789abcdefn).string('héllo').opaque(Buffer.from([1, 2, 3]));
    w.fixed(Buffer.from([9, 9, 9, 9, 9])).optional(7, (x, v) => x.uint(v)).optional<number>(undefined, (x, v) => x.uint(v));
    w.array([1, 2], (x, v) => x.uint(v));
    const buf = w.toBuffer();
    expect(buf.length % 4).toBe(0);
    const r = new XdrReader(buf);
    expect(r.uint()).toBe(0xdeadbeef);
    expect(r.int()).toBe(-2);
    expect(r.bool()).toBe(true);
    expect(r.uhyper()).toBe(0x0123456789abcdefn);
    expect(r.string()).toBe('héllo');
    expect([...r.opaque()]).toEqual([1, 2, 3]);
    expect([...r.fixed(5)]).toEqual([9, 9, 9, 9, 9]);
    expect(r.optional((x) => x.uint())).toBe(7);
    expect(r.optional((x) => x.uint())).toBeUndefined();
    expect(r.array((x) => x.uint())).toEqual([1, 2]);
    expect(r.remaining).toBe(0);
  });

  it('encodes opaque exactly as RFC 4506 (length, bytes, zero padding)', () => {
    expect(new XdrWriter().string('abcde').toBuffer().toString('hex')).toBe('00000005' + '6162636465' + '000000');
  });

  it('refuses short messages, bad bools, over-long opaques and out-of-range values', () => {
    expect(() => new XdrReader(Buffer.alloc(3)).uint()).toThrow(XdrError);
    expect(() => new XdrReader(Buffer.from('00000002', 'hex')).bool()).toThrow(/bool/);
    expect(() => new XdrReader(new XdrWriter().opaque(Buffer.alloc(10)).toBuffer()).opaque(8)).toThrow(/limit/);
    expect(() => new XdrReader(Buffer.from('000000ff', 'hex')).opaque()).toThrow(XdrError);
    expect(() => new XdrWriter().uint(-1)).toThrow(XdrError);
    expect(() => new XdrWriter().uhyper(-1n)).toThrow(XdrError);
  });

  it('truncate rewinds the writer', () => {
    const w = new XdrWriter().uint(1);
    const mark = w.length;
    w.uint(2).uint(3);
    w.truncate(mark).uint(4);
    expect(w.toBuffer().toString('hex')).toBe('0000000100000004');
  });
});

describe('RPC record marking', () => {
  it('reassembles records split at any byte and joined fragments', () => {
    const a = encodeRecord(Buffer.from('aaaa'));
    const b = encodeRecord(Buffer.from('bbbbbbbb'));
    const stream = Buffer.concat([a, b]);
    for (let split = 0; split <= stream.length; split++) {
      const d = new RecordDecoder();
      const got = [...d.push(stream.subarray(0, split)), ...d.push(stream.subarray(split))];
      expect(got.map((x) => x.toString())).toEqual(['aaaa', 'bbbbbbbb']);
      expect(d.buffered).toBe(0);
    }
    // two fragments, the second one last
    const frag1 = Buffer.concat([Buffer.from('00000002', 'hex'), Buffer.from('xy')]);
    const frag2 = Buffer.concat([Buffer.from('80000003', 'hex'), Buffer.from('zzz')]);
    const d = new RecordDecoder();
    expect(d.push(frag1)).toEqual([]);
    expect(d.push(frag2).map((x) => x.toString())).toEqual(['xyzzz']);
  });

  it('refuses a record larger than the limit', () => {
    const d = new RecordDecoder(16);
    expect(() => d.push(Buffer.from('80000100', 'hex'))).toThrow(/exceeds 16 bytes/);
  });
});

describe('RPC calls and replies', () => {
  const auth = { stamp: 7, machine: 'guest', uid: 1000, gid: 1000, gids: [1000, 2000] };

  it('AUTH_SYS round-trips', () => {
    expect(decodeAuthSys(encodeAuthSys(auth))).toEqual(auth);
  });

  it('decodes a call header with AUTH_SYS and leaves the reader at the arguments', () => {
    const args = new XdrWriter().string('/export').toBuffer();
    const d = decodeCall(encodeCall({ xid: 42, prog: 100005, vers: 3, proc: 1, auth, args }));
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.call).toMatchObject({ xid: 42, prog: 100005, vers: 3, proc: 1, auth });
    expect(d.call.args.string()).toBe('/export');
  });

  it('answers a wrong RPC version with RPC_MISMATCH and an unknown flavour with AUTH_ERROR', () => {
    const call = encodeCall({ xid: 9, prog: 1, vers: 1, proc: 0 });
    call.writeUInt32BE(3, 8); // rpcvers
    const d = decodeCall(call);
    expect(d.ok).toBe(false);
    if (d.ok || !d.reply) throw new Error('expected a reply');
    expect(decodeReply(d.reply)).toMatchObject({ xid: 9, accepted: false, rejectStat: 0, mismatch: { low: 2, high: 2 } });

    const gss = encodeCall({ xid: 10, prog: 1, vers: 1, proc: 0 });
    gss.writeUInt32BE(6, 24); // cred flavor RPCSEC_GSS
    const g = decodeCall(gss);
    if (g.ok || !g.reply) throw new Error('expected a reply');
    expect(decodeReply(g.reply)).toMatchObject({ xid: 10, accepted: false, rejectStat: 1, authStat: AuthStat.AUTH_REJECTEDCRED });
    expect(decodeReply(authErrorReply(11, AuthStat.AUTH_BADCRED))).toMatchObject({ authStat: AuthStat.AUTH_BADCRED });
  });

  it('drops records that are not calls and answers truncated headers with GARBAGE_ARGS', () => {
    const reply = acceptedReply(1, AcceptStat.SUCCESS);
    expect(decodeCall(reply)).toMatchObject({ ok: false, xid: undefined });
    const short = encodeCall({ xid: 5, prog: 1, vers: 1, proc: 0 }).subarray(0, 20);
    const d = decodeCall(short);
    if (d.ok || !d.reply) throw new Error('expected a reply');
    expect(decodeReply(d.reply)).toMatchObject({ xid: 5, accepted: true, acceptStat: AcceptStat.GARBAGE_ARGS });
  });

  it('encodes accepted replies: SUCCESS carries the body, PROG_MISMATCH the version range', () => {
    const ok = decodeReply(acceptedReply(3, AcceptStat.SUCCESS, new XdrWriter().uint(77).toBuffer()));
    expect(ok).toMatchObject({ xid: 3, accepted: true, acceptStat: AcceptStat.SUCCESS });
    expect(ok.body.uint()).toBe(77);
    expect(decodeReply(acceptedReply(4, AcceptStat.PROG_MISMATCH, undefined, { low: 3, high: 3 }))).toMatchObject({
      acceptStat: AcceptStat.PROG_MISMATCH,
      mismatch: { low: 3, high: 3 },
    });
  });
});
