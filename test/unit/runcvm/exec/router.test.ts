import { describe, expect, it } from 'vitest';
import { ExecRouter, type Peer } from '../../../../src/runcvm/agent/mux.js';
import { encodeData, encodeExit, encodeFrame, FrameDecoder, FrameType, type Frame } from '../../../../src/runcvm/agent/codec.js';
import { encodeOpen, ExecFrameType } from '../../../../src/runcvm/agent/exec.js';

class FakePeer implements Peer {
  out: Buffer[] = [];
  ended = false;
  write(b: Buffer): void {
    this.out.push(b);
  }
  end(): void {
    this.ended = true;
  }
  frames(): Frame[] {
    return new FrameDecoder().push(Buffer.concat(this.out));
  }
}

const one = (b: Buffer): Frame => new FrameDecoder().push(b)[0]!;
const open = one(encodeOpen({ args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false }));

describe('ExecRouter (launcher side of the agent port)', () => {
  it('queues client frames until the agent is READY, then sends them stamped with the session', () => {
    const r = new ExecRouter();
    const port = new FakePeer();
    r.attachPort(port);
    const a = new FakePeer();
    const s = r.addClient(a);
    r.fromClient(s, open);
    expect(port.out).toHaveLength(0);
    r.fromPort(one(encodeFrame(FrameType.READY, 0)));
    expect(port.frames().map((f) => [f.type, f.session])).toEqual([[ExecFrameType.OPEN, s]]);
  });

  it('routes interleaved output of several execs to the right clients, with session 0, and ends each on EXIT', () => {
    const r = new ExecRouter();
    const port = new FakePeer();
    r.attachPort(port);
    r.fromPort(one(encodeFrame(FrameType.READY, 0)));
    const [a, b, c] = [new FakePeer(), new FakePeer(), new FakePeer()];
    const [sa, sb, sc] = [r.addClient(a), r.addClient(b), r.addClient(c)];
    expect(new Set([sa, sb, sc]).size).toBe(3);
    for (let i = 0; i < 3; i++) {
      for (const [s, name] of [[sa, 'a'], [sb, 'b'], [sc, 'c']] as const) r.fromPort(one(encodeData(1, Buffer.from(`${name}${i}\n`), s)[0]!));
    }
    r.fromPort(one(encodeData(2, Buffer.from('err-b'), sb)[0]!));
    r.fromPort(one(encodeExit(3, 0, sb)));
    const text = (p: FakePeer, ch: number) => Buffer.concat(p.frames().filter((f) => f.type === FrameType.DATA && f.channel === ch).map((f) => f.payload)).toString();
    expect(text(a, 1)).toBe('a0\na1\na2\n');
    expect(text(b, 1)).toBe('b0\nb1\nb2\n');
    expect(text(b, 2)).toBe('err-b');
    expect(text(c, 1)).toBe('c0\nc1\nc2\n');
    expect(b.frames().every((f) => f.session === 0)).toBe(true);
    expect(b.ended).toBe(true);
    expect(a.ended).toBe(false);
    expect(r.active).toBe(2);
    // a late frame for a finished session goes nowhere
    r.fromPort(one(encodeData(1, Buffer.from('late'), sb)[0]!));
    expect(text(b, 1)).toBe('b0\nb1\nb2\n');
  });

  it('a client gone before EXIT gets a CLOSE sent for it; after EXIT nothing is sent', () => {
    const r = new ExecRouter();
    const port = new FakePeer();
    r.attachPort(port);
    r.fromPort(one(encodeFrame(FrameType.READY, 0)));
    const s1 = r.addClient(new FakePeer());
    const s2 = r.addClient(new FakePeer());
    r.fromPort(one(encodeExit(0, 0, s2)));
    r.clientGone(s1);
    r.clientGone(s2);
    expect(port.frames().map((f) => [f.type, f.session])).toEqual([[ExecFrameType.CLOSE, s1]]);
  });

  it('only client→guest frame types pass (a client cannot forge READY or EXIT)', () => {
    const r = new ExecRouter();
    const port = new FakePeer();
    r.attachPort(port);
    r.fromPort(one(encodeFrame(FrameType.READY, 0)));
    const s = r.addClient(new FakePeer());
    r.fromClient(s, one(encodeExit(0, 0)));
    r.fromClient(s, one(encodeFrame(FrameType.READY, 0)));
    r.fromClient(99, open);
    expect(port.out).toHaveLength(0);
  });

  it('when the VM goes away every client is ended', () => {
    const r = new ExecRouter();
    r.attachPort(new FakePeer());
    const a = new FakePeer();
    r.addClient(a);
    r.portGone();
    expect(a.ended).toBe(true);
    expect(r.active).toBe(0);
  });
});
