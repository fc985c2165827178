/**
 * The exec protocol: how `runcvm-runtime exec` reaches a command inside the VM.
 *
 *   exec client (container, one per exec) ──unix socket /.runcvm/state/exec.sock──▶ launcher (ExecMux)
 *   launcher ──ONE virtio-serial port `org.runcvm.agent` (QEMU chardev /.runcvm/state/agent.sock)──▶ runcvm-agent (guest, C)
 *
 * Frames are those of codec.ts (8-byte header `type u8 | channel u8 | session u16 BE | length u32 BE`, payload
 * ≤ 64 KiB), so one decoder serves both ports. On the agent port `session` is the exec's stream id (1..65535, given
 * by the launcher); between client and launcher it is always 0 (the launcher rewrites it). Types on this port:
 *   OPEN    h→g  start a command; payload = encodeOpenRequest()
 *   DATA    both ch 0 stdin (h→g), 1 stdout, 2 stderr (g→h)       (codec FrameType.DATA)
 *   EOF     both end of a stream, channel as in DATA                (codec FrameType.EOF)
 *   SIGNAL  h→g  u8 signal number                                   (codec FrameType.SIGNAL)
 *   WINSIZE h→g  u16 rows, u16 cols                                 (codec FrameType.WINSIZE)
 *   EXIT    g→h  i32 code (128+N on signal N), u8 signal; sent only after stdout and stderr reached EOF (nothing
 *                is lost at the end); the session is over            (codec FrameType.EXIT)
 *   CLOSE   h→g  the client went away: the agent SIGKILLs the command and forgets the session
 *   READY   g→h  session 0: the agent listens (the launcher queues frames until then)   (codec FrameType.READY)
 * The C side is src/runcvm/guest/agent.c (+ exec-request.c); frame types and request keys are the guest contract's
 * (src/runcvm/guest/contract.ts, contract.h for C).
 */
import { encodeFrame, FrameType, MAX_PAYLOAD } from './codec.js';
import { AGENT_PORT_NAME, ExecKey, GuestPath, RLIMIT_NUMBERS } from '../guest/contract.js';
import { CAPABILITY_NUMBERS, CAPABILITY_SETS, capabilityConfigLines, emptyCapabilitySets, type CapabilitySet, type CapabilitySets } from '../launch/capabilities.js';

export { AGENT_PORT_NAME };

/** Paths inside the launcher container (the state dir is bind-mounted there, read-write). */
export const EXEC_PATHS = {
  /** the launcher listens here for exec clients */
  clientSocket: GuestPath.execSocket,
  /** QEMU's chardev for the agent port connects here (the launcher listens before starting QEMU) */
  portSocket: '/.runcvm/state/agent.sock',
  /** request files `exec-<id>.req` (0600, the OPEN payload) written by the runtime, read and removed by the client */
  stateDir: GuestPath.execState,
  /** the exec client (static C, src/runcvm/guest/exec-client.c) in the guest package */
  client: GuestPath.execClient,
} as const;

/** request file name in the state dir */
export function requestFileName(requestId: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(requestId)) throw new ExecProtocolError(`invalid exec request id "${requestId}"`);
  return `exec-${requestId}.req`;
}

/** The agent binary in the package (host side) and in the VM (copied to the writable disk by create). */
export const AGENT_BINARY = 'runcvm-agent';

export const ExecFrameType = {
  OPEN: FrameType.OPEN,
  CLOSE: FrameType.CLOSE,
} as const;

/** What the command in the guest runs as: the exec's original process (before the rewrite). */
export interface ExecRequest {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids: number[] };
  terminal: boolean;
  /** initial terminal size (terminal only) */
  rows?: number;
  cols?: number;
  /** the exec's OCI capabilities (known names); absent: the agent leaves the command root's full set (old requests) */
  capabilities?: CapabilitySets;
  /** OCI process.noNewPrivileges (the container's, or `exec --no-new-privs`) */
  noNewPrivileges?: boolean;
  /** OCI process.rlimits (the container's, or the --process file's), set by the agent as runc sets them */
  rlimits?: { type: string; soft: number; hard: number }[];
}

export class ExecProtocolError extends Error {}

/**
 * OPEN payload: NUL-terminated `key=value` entries (trivial to parse in C; arguments and env entries are C strings
 * anyway, so they cannot hold NUL): uid, gid, groups (comma list), cwd, tty (0|1), rows, cols, then `arg=` and
 * `env=` repeated in order.
 */
const U64_MAX = (1n << 64n) - 1n;
/** an rlimit as a decimal u64: RLIM_INFINITY (2^64-1) arrives from JSON rounded up to 2^64, and is clamped back */
function rlimitValue(n: number): string {
  const v = BigInt(Math.max(0, Math.trunc(n)));
  return String(v > U64_MAX ? U64_MAX : v);
}

export function encodeOpenRequest(r: ExecRequest): Buffer {
  if (r.args.length === 0) throw new ExecProtocolError('exec needs a command (process.args is empty)');
  const K = ExecKey;
  const entries: string[] = [
    `${K.uid}=${r.user.uid}`,
    `${K.gid}=${r.user.gid}`,
    `${K.groups}=${r.user.additionalGids.join(',')}`,
    `${K.cwd}=${r.cwd || '/'}`,
    `${K.tty}=${r.terminal ? 1 : 0}`,
  ];
  if (r.terminal && r.rows && r.cols) entries.push(`${K.rows}=${r.rows}`, `${K.cols}=${r.cols}`);
  if (r.noNewPrivileges) entries.push(`${K.nonewprivs}=1`);
  // `cap=<set> <n,n,…|->`: the guest init's format, parsed by the same C code (guest/caps.c)
  if (r.capabilities) entries.push(...capabilityConfigLines(r.capabilities));
  // a type the guest does not know is left out (guest/exec-prep.c does the same); create refused it already for
  // the container's own process
  for (const l of r.rlimits ?? []) if (RLIMIT_NUMBERS[l.type] !== undefined) entries.push(`${K.rlimit}=${RLIMIT_NUMBERS[l.type]} ${rlimitValue(l.soft)} ${rlimitValue(l.hard)}`);
  for (const a of r.args) entries.push(`${K.arg}=${a}`);
  for (const e of r.env) entries.push(`${K.env}=${e}`);
  for (const e of entries) {
    if (e.includes('\0')) throw new ExecProtocolError(`exec request entry holds a NUL byte: ${JSON.stringify(e.slice(0, 60))}`);
  }
  const payload = Buffer.from(entries.map((e) => `${e}\0`).join(''), 'utf8');
  if (payload.length > MAX_PAYLOAD) {
    throw new ExecProtocolError(`exec request is ${payload.length} bytes; the limit is ${MAX_PAYLOAD} (too many or too long arguments/env entries)`);
  }
  return payload;
}

/** The inverse of encodeOpenRequest (used by tests and by the fake agent). */
export function decodeOpenRequest(payload: Buffer): ExecRequest {
  const text = payload.toString('utf8');
  const parts = text.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  const r: ExecRequest = { args: [], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, terminal: false };
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new ExecProtocolError(`bad exec request entry ${JSON.stringify(p)}`);
    const k = p.slice(0, eq);
    const v = p.slice(eq + 1);
    if (k === ExecKey.arg) r.args.push(v);
    else if (k === ExecKey.env) r.env.push(v);
    else if (k === ExecKey.uid) r.user.uid = Number(v);
    else if (k === ExecKey.gid) r.user.gid = Number(v);
    else if (k === ExecKey.groups) r.user.additionalGids = v ? v.split(',').map(Number) : [];
    else if (k === ExecKey.cwd) r.cwd = v;
    else if (k === ExecKey.tty) r.terminal = v === '1';
    else if (k === ExecKey.rows) r.rows = Number(v);
    else if (k === ExecKey.cols) r.cols = Number(v);
    else if (k === ExecKey.nonewprivs) r.noNewPrivileges = v === '1';
    else if (k === ExecKey.cap) {
      const [set, list = '-'] = v.split(' ');
      if (!(CAPABILITY_SETS as readonly string[]).includes(set ?? '')) throw new ExecProtocolError(`bad exec request entry ${JSON.stringify(p)}`);
      r.capabilities ??= emptyCapabilitySets();
      const nums = list === '-' ? [] : list.split(',').map(Number);
      r.capabilities[set as CapabilitySet] = Object.keys(CAPABILITY_NUMBERS).filter((name) => nums.includes(CAPABILITY_NUMBERS[name]!));
    }
  }
  return r;
}

export function encodeOpen(r: ExecRequest, session = 0): Buffer {
  return encodeFrame(ExecFrameType.OPEN, 0, encodeOpenRequest(r), session);
}

export function encodeClose(session: number): Buffer {
  return encodeFrame(ExecFrameType.CLOSE, 0, Buffer.alloc(0), session);
}

/** The exit code a shell would report: the code, or 128+N for death by signal N. */
export function exitCodeOf(e: { code: number; signal: number }): number {
  return e.signal ? 128 + e.signal : e.code;
}

export { FrameType };
