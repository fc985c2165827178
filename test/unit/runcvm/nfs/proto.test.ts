import { describe, expect, it } from 'vitest';
import { XdrReader, XdrWriter } from '../../../../src/runcvm/nfs/xdr.js';
import {
  ACCESS,
  accessFor,
  checkName,
  cookieOf,
  decodeHandle,
  encodeHandle,
  exportIdOf,
  FATTR_SIZE,
  fattrFromStat,
  FileType,
  mayDo,
  mountStatusOf,
  MountStat,
  NfsError,
  NfsStat,
  orderForReaddir,
  readFattr,
  readSattr,
  splitDev,
  statusOf,
  timeFromNs,
  writeFattr,
  writeSattr,
  xdrOpaqueSize,
} from '../../../../src/runcvm/nfs/proto.js';
import { ownerForNew, parseListen } from '../../../../src/runcvm/nfs/server.js';
import { defaultStateDir, parseNfsServeArgs } from '../../../../src/runcvm/nfs/main.js';
import { renameInMap, replayHandleLog } from '../../../../src/runcvm/nfs/handles.js';
import { admit, peerMatcher } from '../../../../src/runcvm/nfs/transport.js';

const stat = {
  mode: 0o100640n,
  nlink: 1n,
  uid: 1000n,
  gid: 2000n,
  size: 5n,
  blocks: 8n,
  rdev: 0n,
  dev: 2049n,
  ino: 1234567n,
  atimeNs: 1_700_000_000_123_456_789n,
  mtimeNs: 1_700_000_001_000_000_000n,
  ctimeNs: 1_700_000_002_000_000_001n,
};

describe('attributes', () => {
  it('fattr3 from a stat: type, permission bits, times in seconds + nanoseconds; 84 bytes on the wire', () => {
    const a = fattrFromStat(stat, 77n);
    expect(a).toMatchObject({ type: FileType.REG, mode: 0o640, uid: 1000, gid: 2000, size: 5n, used: 4096n, fsid: 77n, fileid: 1234567n });
    expect(a.atime).toEqual({ seconds: 1_700_000_000, nseconds: 123_456_789 });
    const w = new XdrWriter();
    writeFattr(w, a);
    expect(w.length).toBe(FATTR_SIZE);
    expect(readFattr(new XdrReader(w.toBuffer()))).toEqual(a);
    expect(fattrFromStat({ ...stat, mode: 0o40755n }, 1n).type).toBe(FileType.DIR);
    expect(fattrFromStat({ ...stat, mode: 0o120777n }, 1n).type).toBe(FileType.LNK);
  });

  it('times before 1970 clamp to 0; device numbers split the Linux way', () => {
    expect(timeFromNs(-5n)).toEqual({ seconds: 0, nseconds: 0 });
    expect(splitDev(0x0103n)).toEqual({ major: 1, minor: 3 }); // /dev/null-style
    const major = 0x1234n;
    const minor = 0x56789n;
    const rdev = (minor & 0xffn) | ((major & 0xfffn) << 8n) | ((minor & ~0xffn) << 12n) | ((major & ~0xfffn) << 32n);
    expect(splitDev(rdev)).toEqual({ major: 0x1234, minor: 0x56789 });
  });

  it('sattr3 round-trips, including the three time modes', () => {
    const w = new XdrWriter();
    writeSattr(w, { mode: 0o4755, uid: 5, size: 0n, atime: { how: 'server' }, mtime: { how: 'client', time: { seconds: 9, nseconds: 1 } } });
    expect(readSattr(new XdrReader(w.toBuffer()))).toEqual({
      mode: 0o4755,
      uid: 5,
      size: 0n,
      atime: { how: 'server' },
      mtime: { how: 'client', time: { seconds: 9, nseconds: 1 } },
    });
  });
});

describe('permissions', () => {
  const file = { type: FileType.REG, mode: 0o640, uid: 1000, gid: 2000 };
  const dir = { type: FileType.DIR, mode: 0o750, uid: 1000, gid: 2000 };
  const all = 0x3f;

  it('owner, group (primary or supplementary) and others get their own bits', () => {
    expect(accessFor(file, { uid: 1000, gid: 1, gids: [] }, all)).toBe(ACCESS.READ | ACCESS.MODIFY | ACCESS.EXTEND);
    expect(accessFor(file, { uid: 7, gid: 2000, gids: [] }, all)).toBe(ACCESS.READ);
    expect(accessFor(file, { uid: 7, gid: 1, gids: [2000] }, all)).toBe(ACCESS.READ);
    expect(accessFor(file, { uid: 7, gid: 1, gids: [] }, all)).toBe(0);
    expect(accessFor(dir, { uid: 1000, gid: 1, gids: [] }, all)).toBe(ACCESS.READ | ACCESS.MODIFY | ACCESS.EXTEND | ACCESS.DELETE | ACCESS.LOOKUP);
    expect(accessFor(dir, { uid: 7, gid: 2000, gids: [] }, all)).toBe(ACCESS.READ | ACCESS.LOOKUP);
  });

  it('root gets everything except executing a file without x bits; only what was asked is returned', () => {
    const root = { uid: 0, gid: 0, gids: [] };
    expect(accessFor(file, root, all)).toBe(ACCESS.READ | ACCESS.MODIFY | ACCESS.EXTEND);
    expect(accessFor({ ...file, mode: 0o100 }, root, ACCESS.EXECUTE)).toBe(ACCESS.EXECUTE);
    expect(accessFor(file, root, ACCESS.READ)).toBe(ACCESS.READ);
    expect(mayDo(file, root, 2)).toBe(true);
    expect(mayDo(file, root, 1)).toBe(false);
    expect(mayDo(file, { uid: 7, gid: 2000, gids: [] }, 2)).toBe(false);
  });
});

describe('owner of new objects', () => {
  const app = { uid: 1000, gid: 1000, gids: [1000, 2000] };
  const plain = { mode: 0o755, gid: 50 };
  const setgid = { mode: 0o2775, gid: 50 };
  it('is the caller, with the folder group when the folder is setgid', () => {
    expect(ownerForNew(plain, app, undefined)).toEqual({ uid: 1000, gid: 1000 });
    expect(ownerForNew(setgid, app, undefined)).toEqual({ uid: 1000, gid: 50 });
  });
  it('honours a requested uid/gid for root, and for others only their own uid and groups', () => {
    expect(ownerForNew(plain, { uid: 0, gid: 0, gids: [] }, { uid: 7, gid: 8 })).toEqual({ uid: 7, gid: 8 });
    expect(ownerForNew(plain, app, { uid: 0, gid: 2000 })).toEqual({ uid: 1000, gid: 2000 });
    expect(ownerForNew(plain, app, { uid: 1000, gid: 0 })).toEqual({ uid: 1000, gid: 1000 });
  });
});

describe('handles, names, cookies, errors', () => {
  it('a handle is (export id, dev, ino) and nothing else decodes', () => {
    const k = { exportId: exportIdOf('/srv/vol'), dev: 2049n, ino: 0xffffffffffn };
    const fh = encodeHandle(k);
    expect(fh.length).toBeLessThanOrEqual(64);
    expect(decodeHandle(fh)).toEqual(k);
    expect(decodeHandle(Buffer.alloc(8))).toBeUndefined();
    const bad = Buffer.from(fh);
    bad[0] = 9;
    expect(decodeHandle(bad)).toBeUndefined();
    expect(exportIdOf('/srv/vol')).not.toBe(exportIdOf('/srv/vol2'));
  });

  it('names: no empty, dot, dotdot, slash or NUL; at most 255 bytes', () => {
    expect(checkName('ok.txt')).toBe(NfsStat.OK);
    for (const n of ['', '.', '..', 'a/b', 'a\0b']) expect(checkName(n)).toBe(NfsStat.INVAL);
    expect(checkName('x'.repeat(256))).toBe(NfsStat.NAMETOOLONG);
  });

  it('cookies: . and .. first, stable per name, sorted; resuming after a removed entry skips nothing', () => {
    expect(cookieOf('.')).toBe(1n);
    expect(cookieOf('..')).toBe(2n);
    expect(cookieOf('a')).toBe(cookieOf('a'));
    expect(cookieOf('a')).toBeGreaterThan(2n);
    const names = ['.', '..', ...Array.from({ length: 50 }, (_, i) => `f${i}`)];
    const ordered = orderForReaddir(names.map((name) => ({ name })));
    expect(ordered.slice(0, 2).map((e) => e.name)).toEqual(['.', '..']);
    const first = ordered.slice(0, 20);
    const last = first.at(-1)!.cookie;
    const after = orderForReaddir(names.filter((n) => n !== first.at(-1)!.name).map((name) => ({ name }))).filter((e) => e.cookie > last);
    expect(new Set([...first.map((e) => e.name), ...after.map((e) => e.name)]).size).toBe(names.length);
  });

  it('errno → nfsstat3 → mountstat3', () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    expect(statusOf(e('ENOENT'))).toBe(NfsStat.NOENT);
    expect(statusOf(e('ENOTEMPTY'))).toBe(NfsStat.NOTEMPTY);
    expect(statusOf(e('EWEIRD'))).toBe(NfsStat.IO);
    expect(statusOf(new NfsError(NfsStat.STALE))).toBe(NfsStat.STALE);
    expect(mountStatusOf(NfsStat.STALE)).toBe(MountStat.NOENT);
    expect(mountStatusOf(NfsStat.ACCES)).toBe(MountStat.ACCES);
  });

  it('xdrOpaqueSize pads to 4', () => {
    expect([0, 1, 4, 5].map(xdrOpaqueSize)).toEqual([4, 8, 8, 12]);
  });
});

describe('handle log', () => {
  it('replays (later lines win, null forgets, junk and escaping paths ignored)', () => {
    const text = [
      JSON.stringify(['1', '2', 'a']),
      JSON.stringify(['1', '3', 'b']),
      JSON.stringify(['1', '2', 'a2']),
      JSON.stringify(['1', '3', null]),
      JSON.stringify(['1', '4', '../etc']),
      JSON.stringify(['1', '5', '/abs']),
      '{"torn',
    ].join('\n');
    expect([...replayHandleLog(text)]).toEqual([['1:2', 'a2']]);
  });

  it('a folder rename moves its subtree', () => {
    const m = new Map([
      ['1:1', 'd'],
      ['1:2', 'd/x'],
      ['1:3', 'dd/y'],
    ]);
    renameInMap(m, 'd', 'e/d');
    expect([...m]).toEqual([
      ['1:1', 'e/d'],
      ['1:2', 'e/d/x'],
      ['1:3', 'dd/y'],
    ]);
  });
});

describe('command line', () => {
  it('parses --export (repeatable), --listen, --allow (repeatable), --insecure, --state, --verbose; ADDR:PORT forms', () => {
    expect(parseNfsServeArgs(['--export', '/a', '--export=/b', '--listen', '169.254.1.254:2049', '--allow', '169.254.1.1', '--allow=10.0.0.0/8', '--insecure', '--state', '/s', '-v'])).toEqual({
      exports: ['/a', '/b'],
      listen: { host: '169.254.1.254', port: 2049 },
      listenText: '169.254.1.254:2049',
      allow: ['169.254.1.1', '10.0.0.0/8'],
      insecure: true,
      stateDir: '/s',
      verbose: true,
    });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
  });

  it('without --allow only loopback may connect, from reserved ports (knfsd secure)', () => {
    expect(parseNfsServeArgs(['--export', '/a', '--listen', '127.0.0.1:2049'])).toMatchObject({ allow: ['127.0.0.0/8', '::1'], insecure: false });
  });

  it('--allow takes addresses and prefixes, nothing else', () => {
    expect(() => parseNfsServeArgs(['--export', '/a', '--listen', '127.0.0.1:1', '--allow', 'example.com'])).toThrow(/--allow "example.com" is not an IP address/);
    expect(() => parseNfsServeArgs(['--export', '/a', '--listen', '127.0.0.1:1', '--allow', '10.0.0.0/33'])).toThrow(/--allow "10.0.0.0\/33"/);
    expect(() => parseNfsServeArgs(['--export', '/a', '--listen', '127.0.0.1:1', '--allow', '::1/129'])).toThrow(/--allow/);
  });

  it('default state folder: /run/runcvm/nfs for root, a per-user folder otherwise', () => {
    expect(defaultStateDir(0, {}, '/tmp')).toBe('/run/runcvm/nfs');
    expect(defaultStateDir(1000, { XDG_RUNTIME_DIR: '/run/user/1000' }, '/tmp')).toBe('/run/user/1000/runcvm-nfs-1000');
    expect(defaultStateDir(1000, {}, '/tmp')).toBe('/tmp/runcvm-nfs-1000');
  });

  it('usage errors name the problem and the fix', () => {
    expect(() => parseNfsServeArgs(['--listen', '127.0.0.1:1'])).toThrow(/no --export/);
    expect(() => parseNfsServeArgs(['--export', '/a'])).toThrow(/no --listen/);
    expect(() => parseNfsServeArgs(['--export', '/a', '--listen', '127.0.0.1'])).toThrow(/ADDR:PORT/);
    expect(() => parseNfsServeArgs(['--export', '/a', '--listen', '1.2.3.4:70000'])).toThrow(/ADDR:PORT/);
    expect(() => parseNfsServeArgs(['--bogus'])).toThrow(/unknown argument/);
  });
});

describe('peers (transport.ts)', () => {
  it('matches addresses, prefixes and IPv4-mapped IPv6 peers; nothing else', () => {
    const ok = peerMatcher(['169.254.1.1', '10.0.0.0/8', 'fd00::/64']);
    expect(['169.254.1.1', '::ffff:169.254.1.1', '10.200.3.4', 'fd00::5'].map(ok)).toEqual([true, true, true, true]);
    expect(['169.254.1.2', '169.254.1.254', '11.0.0.1', 'fd01::5', '', 'junk'].map(ok)).toEqual([false, false, false, false, false, false]);
    expect(peerMatcher([])('127.0.0.1')).toBe(false);
  });

  it('admits an allowed address, from a reserved port when asked', () => {
    const policy = { allowed: peerMatcher(['169.254.1.1']), reservedPortsOnly: true };
    expect(admit(policy, '169.254.1.1', 712)).toBeUndefined();
    expect(admit(policy, '169.254.1.1', 40000)).toMatch(/source port 40000 is not a reserved port/);
    expect(admit(policy, '169.254.1.254', 712)).toMatch(/address 169.254.1.254 is not allowed/);
    expect(admit({ ...policy, reservedPortsOnly: false }, '169.254.1.1', 40000)).toBeUndefined();
  });
});
