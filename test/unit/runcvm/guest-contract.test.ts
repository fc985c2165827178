/**
 * The guest contract (src/runcvm/guest/contract.ts) is the one definition of what the host's TypeScript and the
 * guest's C programs share. These tests hold both sides to it:
 *   - contract.h is exactly what the TypeScript renders (30-runtime.sh refuses to build from a stale header too);
 *   - no C file keeps its own copy of a frame type, a port name, a config or exec key, or the NFS mount options;
 *   - the C parsers that run in the VM (guest/config.c, guest/exec-request.c, guest/io.c frames), compiled here
 *     unchanged, read exactly what the TypeScript writes (renderGuestConfig, encodeOpenRequest, the frame codec).
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec/index.js';
import { projectPath } from '../../../src/core/paths.js';
import { encodeFrame, FrameDecoder, FrameType, MAX_PAYLOAD } from '../../../src/runcvm/agent/codec.js';
import { encodeOpenRequest } from '../../../src/runcvm/agent/exec.js';
import { capabilityNumbers } from '../../../src/runcvm/launch/capabilities.js';
import { buildLaunchSpec } from '../../../src/runcvm/launch/build.js';
import { renderEntrypoint, renderGuestConfig } from '../../../src/runcvm/launch/guest-config.js';
import { mountFlags, MS } from '../../../src/runcvm/launch/rootfs.js';
import { compileSeccomp } from '../../../src/runcvm/seccomp/index.js';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import { parseSettings } from '../../../src/runcvm/launch/settings.js';
import type { LaunchSpec } from '../../../src/runcvm/launch/schema.js';
import { AGENT_PORT_NAME, ConfigKey, ExecKey, IO_PORT_NAME, NFS_MOUNT_OPTIONS, NFS_SERVER_IP, renderContractHeader } from '../../../src/runcvm/guest/contract.js';
import { NFS_MOUNT_OPTIONS as VOLUMES_NFS_OPTIONS } from '../../../src/runcvm/volumes/plan.js';
import { IDENTITY_IP } from '../../../src/runcvm/network/plan.js';

const GUEST = projectPath('src', 'runcvm', 'guest');
const FIXTURES = projectPath('test', 'fixtures', 'guest');
const cFiles = readdirSync(GUEST).filter((f) => f.endsWith('.c') || (f.endsWith('.h') && f !== 'contract.h'));

// execFile rather than core/exec: binary stdin/stdout (frames) and an expected non-zero exit
const execFileP = promisify(execFile);

describe('guest contract: one definition', () => {
  it('contract.h is what contract.ts renders (npm run gen:guest-contract)', () => {
    expect(readFileSync(join(GUEST, 'contract.h'), 'utf8')).toBe(renderContractHeader());
  });

  it('no C file keeps its own copy of the frame types, port names, keys or mount options', () => {
    const keys = [...new Set([...Object.values(ConfigKey), ...Object.values(ExecKey)])];
    for (const f of cFiles) {
      const text = readFileSync(join(GUEST, f), 'utf8');
      expect(text, f).not.toMatch(/enum\s*\{[^}]*\bT_DATA\s*=/);
      expect(text, f).not.toMatch(/#define\s+(T_|CH_)\w+\s+\d/);
      for (const literal of [IO_PORT_NAME, AGENT_PORT_NAME, 'vers=3', NFS_SERVER_IP, '/.runcvm/config', '/.runcvm/entrypoint']) {
        expect(text, `${f} holds "${literal}"`).not.toContain(`"${literal}`);
      }
      for (const k of keys) expect(text, `${f} compares with the key "${k}" by hand`).not.toMatch(new RegExp(`str(n)?cmp\\([^;]*"${k}"`));
    }
  });

  it('the TypeScript users take their constants from the contract', () => {
    expect(VOLUMES_NFS_OPTIONS).toBe(NFS_MOUNT_OPTIONS);
    expect(NFS_SERVER_IP).toBe(IDENTITY_IP);
    expect(FrameType.OPEN).toBe(16);
  });
});

describe('guest contract: the C parsers read what the TypeScript writes', () => {
  let dir: string;
  const bin = (name: string) => join(dir, name);
  const sources = (...files: string[]) => files.map((f) => join(GUEST, f));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'guest-contract-'));
    const cc = (out: string, fixture: string, files: string[]) =>
      run('gcc', ['-O0', '-Wall', '-Wextra', '-Werror', '-I', GUEST, '-o', bin(out), join(FIXTURES, fixture), ...sources(...files)], { timeoutMs: 60_000 });
    await Promise.all([
      cc('config-dump', 'config-dump.c', ['config.c', 'util.c', 'caps.c']),
      cc('request-dump', 'request-dump.c', ['exec-request.c', 'util.c', 'caps.c']),
      cc('frame-echo', 'frame-echo.c', ['io.c', 'util.c']),
    ]);
  }, 120_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const capMask = (names: readonly string[]) => capabilityNumbers(names).reduce((m, n) => m | (1n << BigInt(n)), 0n).toString(16);

  it('/.runcvm/config and /.runcvm/entrypoint: every key, with escaping', async () => {
    const oci = JSON.parse(readFileSync(projectPath('test', 'fixtures', 'runcvm', 'config.docker.json'), 'utf8')) as OciSpec;
    const base = buildLaunchSpec(oci, { containerId: 'c1', settings: parseSettings({}), debugLog: false });
    const spec: LaunchSpec = {
      ...base,
      hostname: 'host 100%',
      break: 'prerun',
      log: { ...base.log, level: 'debug' },
      root: { readonly: true, readonlyRun: true },
      process: {
        ...base.process,
        cwd: '/work dir/100%',
        terminal: true,
        env: ['A=line1\nline2', 'B=50%=half', 'C=with space', 'EMPTY='],
        capabilities: { bounding: ['CAP_CHOWN', 'CAP_NET_ADMIN'], effective: ['CAP_CHOWN'], inheritable: [], permitted: ['CAP_CHOWN'], ambient: [] },
        oomScoreAdj: -17,
      },
      mounts: [...base.mounts, { destination: '/a dir', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'mode=1777'] }],
      rootfs: {
        ...base.rootfs!,
        mounts: [...base.rootfs!.mounts, { type: 'tmpfs', source: 'my tmp', destination: '/dev/a dir', options: ['ro', 'nosuid', 'size=1m', 'mode=1777'] }],
        devices: [...base.rootfs!.devices, { path: '/dev/fuse 2', type: 'c', major: 10, minor: 229, fileMode: 0o640, uid: 7, gid: 8 }],
        maskedPaths: ['/proc/keys', '/proc/with space'],
        readonlyPaths: ['/proc/sys', '/proc/100%'],
      },
      sysctl: { 'net.ipv4.ip_local_port_range': '1024 65000', 'kernel.shm_rmid_forced': '1', 'kernel.empty': '' },
      seccomp: { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG'], syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] },
      userns: {
        uidMappings: [{ containerID: 0, hostID: 100000, size: 1000 }, { containerID: 1000, hostID: 1000, size: 1 }],
        gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
      },
      volumes: [
        { kind: 'virtiofs', id: 'v1', tag: 'rcvm-v1', destination: '/data', containerPath: '/.runcvm/vols/v1', flags: { readOnly: true, nosuid: true, nodev: false, noexec: false }, hostSource: '/srv/data' },
        { kind: 'virtiofs', transport: 'nfs', id: 'v2', tag: 'rcvm-v2', destination: '/shared dir', containerPath: '/.runcvm/vols/v2', flags: { readOnly: false, nosuid: false, nodev: false, noexec: false }, hostSource: '/srv/shared' },
      ],
    } as LaunchSpec;
    const args = ['sh', '-c', 'echo "100%"\nsecond line', ''];
    await writeFile(join(dir, 'config'), renderGuestConfig(spec));
    await writeFile(join(dir, 'entrypoint'), renderEntrypoint(args));
    const { stdout } = await execFileP(bin('config-dump'), [join(dir, 'config'), join(dir, 'entrypoint')]);
    const got = JSON.parse(stdout) as Record<string, unknown>;
    const p = spec.process;
    expect(got).toMatchObject({
      debug: 1,
      uid: p.user.uid,
      gid: p.user.gid,
      groups: p.user.additionalGids,
      umask: p.user.umask ?? 0o022,
      terminal: 1,
      nonewprivs: 1,
      readonly: 1,
      readonlyRun: 1,
      cwd: '/work dir/100%',
      hostname: 'host 100%',
      break: 'prerun',
      env: p.env,
      args,
      rlimits: [[7, '1024', '1048576']],
      tmpfs: [...base.mounts.map((m) => [m.destination, m.options.join(',') || '-']), ['/a dir', 'size=1m,mode=1777']],
    });
    expect(got.caps).toEqual({ present: 1, bounding: capMask(['CAP_CHOWN', 'CAP_NET_ADMIN']), effective: capMask(['CAP_CHOWN']), inheritable: '0', permitted: capMask(['CAP_CHOWN']), ambient: '0' });
    // the workload's namespace: mounts with their mount(2) flags and data, in order; devices; paths; sysctls
    expect((got.mounts as unknown[][]).map((m) => m[2])).toEqual(spec.rootfs!.mounts.map((m) => m.destination));
    // a read-only tmpfs comes writable and is remounted read-only once its contents exist (runc's order)
    expect(got.mounts).toContainEqual(['tmpfs', 'my tmp', '/dev/a dir', MS.NOSUID, 'size=1m,mode=1777', 1]);
    expect(got.mounts).toContainEqual(['devpts', 'devpts', '/dev/pts', MS.NOSUID | MS.NOEXEC, 'newinstance,ptmxmode=0666,mode=0620,gid=5', 0]);
    expect(got.mounts).toContainEqual(['proc', 'proc', '/proc', mountFlags(['nosuid', 'noexec', 'nodev']).flags, null, 0]);
    expect(got.devices).toEqual(spec.rootfs!.devices.map((d) => [d.path, d.type, d.major, d.minor, d.fileMode, d.uid, d.gid]));
    expect(got.devices).toContainEqual(['/dev/fuse 2', 'c', 10, 229, 0o640, 7, 8]);
    expect(got.maskedPaths).toEqual(['/proc/keys', '/proc/with space']);
    expect(got.readonlyPaths).toEqual(['/proc/sys', '/proc/100%']);
    expect(got.sysctl).toEqual([['net.ipv4.ip_local_port_range', '1024 65000'], ['kernel.shm_rmid_forced', '1'], ['kernel.empty', '']]);
    expect(got.oomScoreAdj).toBe(-17);
    expect(got.seccomp).toBe(compileSeccomp(spec.seccomp!)!.program.toString('hex'));
    expect(got.seccompFlags).toBe(2);
    // the workload's user namespace (guest/workload.c child_userns)
    expect(got.uidmaps).toEqual([[0, 100000, 1000], [1000, 1000, 1]]);
    expect(got.gidmaps).toEqual([[0, 200000, 65536]]);
    // vol.c splits these raw values itself; the NFS one names the contract's server
    expect(got.volumes).toEqual([expect.stringMatching(/^virtiofs rcvm-v1 \/data ro,nosuid -$/), `nfs ${NFS_SERVER_IP}:/.runcvm/vols/v2 /shared%20dir rw -`]);
  });

  it('the exec OPEN payload: every key, in order', async () => {
    const request = {
      args: ['sh', '-c', 'echo a=b'],
      env: ['PATH=/bin', 'X=1=2', 'EMPTY='],
      cwd: '/tmp',
      user: { uid: 1000, gid: 2000, additionalGids: [3000, 4000] },
      terminal: true,
      rows: 40,
      cols: 120,
      capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], inheritable: [], permitted: ['CAP_KILL'], ambient: ['CAP_KILL'] },
      noNewPrivileges: true,
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }, { type: 'RLIMIT_AS', soft: 2 ** 64, hard: 2 ** 64 }],
    };
    await writeFile(join(dir, 'open'), encodeOpenRequest(request));
    const { stdout } = await execFileP(bin('request-dump'), [join(dir, 'open')]);
    const kill = capMask(['CAP_KILL']);
    expect(JSON.parse(stdout)).toEqual({
      uid: 1000,
      gid: 2000,
      groups: [3000, 4000],
      tty: 1,
      nonewprivs: 1,
      rows: 40,
      cols: 120,
      cwd: '/tmp',
      caps: { present: 1, bounding: kill, effective: kill, inheritable: '0', permitted: kill, ambient: kill },
      rlimits: [[7, '100', '200'], [9, '18446744073709551615', '18446744073709551615']],
      args: request.args,
      env: request.env,
    });
  });

  it('frames: the C reader and writer round-trip every frame type the TypeScript encodes', async () => {
    const sent = [
      ...Object.values(FrameType).map((t, i) => encodeFrame(t, i % 3, Buffer.from(`payload ${t}`), i * 257)),
      encodeFrame(FrameType.DATA, 1, Buffer.alloc(MAX_PAYLOAD, 7), 65535),
      encodeFrame(FrameType.EOF, 2),
    ];
    const out = await new Promise<Buffer>((resolve, reject) => {
      const child = execFile(bin('frame-echo'), { encoding: 'buffer', maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
      child.stdin?.end(Buffer.concat(sent));
    });
    const frames = new FrameDecoder().push(out);
    expect(frames.map((f) => encodeFrame(f.type, f.channel, f.payload, f.session))).toEqual(sent);
  });

  it('frames: a payload longer than the contract allows is refused, not read', async () => {
    const header = Buffer.from([FrameType.DATA, 1, 0, 0, 0, 0, 0, 0]);
    header.writeUInt32BE(MAX_PAYLOAD + 1, 4);
    const code = await new Promise<number | null>((resolve) => {
      const child = execFile(bin('frame-echo'), (err) => resolve(err ? (err as { code?: number }).code ?? null : 0));
      child.stdin?.end(header);
    });
    expect(code).toBe(3);
  });
});
