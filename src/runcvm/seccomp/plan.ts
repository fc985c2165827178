/**
 * OCI seccomp profile → SeccompPlan: what the filter decides for each architecture and syscall, with the meaning
 * runc 1.1 gives a profile (libcontainer/seccomp with libseccomp 2.5, then its -ENOSYS stub), so a workload in the
 * guest sees the same refusals as under runc on the host:
 *   - the filter holds x86_64 always, plus SCMP_ARCH_X86 and SCMP_ARCH_X32 when listed (other architectures cannot
 *     occur in an x86-64 guest); any other architecture, or an x32 call without SCMP_ARCH_X32, kills the thread
 *     (libseccomp's bad-architecture action);
 *   - a rule whose action equals the default action is skipped; a name an architecture does not have is skipped
 *     there (unknown names everywhere: ignored, as runc does);
 *   - per syscall, the first unconditional rule wins and drops the conditional ones; conditional rules are tried in
 *     libseccomp's tree order (conditions on a higher argument first, then ==/!= before </<= before >/>=, then the
 *     value; a rule that is a prefix of another first), which only matters when rules with different actions
 *     overlap. Where libseccomp 2.5 merges rules into a tree that does not mean what they say (two range
 *     comparisons on one 64-bit argument in different rules let calls through that neither rule allows; measured
 *     in test/e2e/seccomp-parity.test.ts's notes), runcvm keeps the rules' stated meaning, which is stricter;
 *   - a rule whose arguments name one index twice becomes one rule per condition (runc's "old behaviour");
 *   - on x86 (i386) the socket and SysV IPC calls also match the multiplexers socketcall(2) / ipc(2) with the call
 *     number in argument 0, as libseccomp adds them; 32-bit ABIs (x86, x32) compare the low 32 bits of arguments;
 *   - runc's -ENOSYS stub: unless the default action allows (ALLOW, LOG, TRACE) or already returns ENOSYS, a call
 *     numbered above every syscall the profile names for a listed architecture fails with ENOSYS, so a libc falls
 *     back from a syscall the profile predates (clone3 → clone) instead of failing with the default errno.
 * Pure; bpf.ts turns the plan into the program the guest loads, and `decide` is the plan's meaning written plainly.
 */
import { SYSCALLS_X32, SYSCALLS_X86, SYSCALLS_X86_64 } from './syscalls.js';
import { X32_SYSCALL_BIT } from './headers.js';
import type { SeccompProfile } from './profile.js';

export type Arch = 'x86_64' | 'x86' | 'x32';

/** AUDIT_ARCH_* as seccomp_data.arch carries it (x32 shares x86-64's, with X32_SYSCALL_BIT in the number). */
export const AUDIT_ARCH = { x86_64: 0xc000003e, x86: 0x40000003, x32: 0xc000003e } as const;

const TABLES: Record<Arch, Readonly<Record<string, number>>> = { x86_64: SYSCALLS_X86_64, x86: SYSCALLS_X86, x32: SYSCALLS_X32 };
/** bits of a syscall argument the ABI compares (libseccomp: 32-bit ABIs compare the low word only) */
const ARG_BITS: Record<Arch, 32 | 64> = { x86_64: 64, x86: 32, x32: 32 };

/** OCI architecture names runc accepts (libcontainer/seccomp/config.go); only the x86 ones reach an x86-64 guest. */
const OCI_ARCHES: Record<string, Arch | 'foreign'> = {
  SCMP_ARCH_X86: 'x86', SCMP_ARCH_X86_64: 'x86_64', SCMP_ARCH_X32: 'x32', SCMP_ARCH_ARM: 'foreign', SCMP_ARCH_AARCH64: 'foreign',
  SCMP_ARCH_MIPS: 'foreign', SCMP_ARCH_MIPS64: 'foreign', SCMP_ARCH_MIPS64N32: 'foreign', SCMP_ARCH_MIPSEL: 'foreign',
  SCMP_ARCH_MIPSEL64: 'foreign', SCMP_ARCH_MIPSEL64N32: 'foreign', SCMP_ARCH_PPC: 'foreign', SCMP_ARCH_PPC64: 'foreign',
  SCMP_ARCH_PPC64LE: 'foreign', SCMP_ARCH_S390: 'foreign', SCMP_ARCH_S390X: 'foreign', SCMP_ARCH_RISCV64: 'foreign',
};

/** seccomp(2) return values (linux/seccomp.h SECCOMP_RET_*) */
export const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;
const EPERM = 1;
export const ENOSYS = 38;

/** SECCOMP_FILTER_FLAG_* for seccomp(2) (runc 1.1 refuses every flag; the guest honours the kernel's) */
const FLAGS: Record<string, number> = { SECCOMP_FILTER_FLAG_TSYNC: 1, SECCOMP_FILTER_FLAG_LOG: 2, SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4 };

export type Op = 'EQ' | 'NE' | 'LT' | 'LE' | 'GT' | 'GE' | 'MASKED_EQ';
const OPS: Record<string, Op> = {
  SCMP_CMP_EQ: 'EQ', SCMP_CMP_NE: 'NE', SCMP_CMP_LT: 'LT', SCMP_CMP_LE: 'LE', SCMP_CMP_GT: 'GT', SCMP_CMP_GE: 'GE', SCMP_CMP_MASKED_EQ: 'MASKED_EQ',
};

/** One comparison, already cut to the ABI's width: MASKED_EQ is (arg & mask) == datum, the others arg OP datum. */
export interface Cond {
  index: number;
  op: Op;
  datum: bigint;
  /** MASKED_EQ only (datum is already masked); else all ones */
  mask: bigint;
}

/** Conditions that must all hold; then `action`. */
export interface Chain {
  conds: Cond[];
  action: number;
}

export interface SyscallRules {
  /** an unconditional rule: the syscall's action whatever its arguments */
  action?: number;
  /** tried in order when there is no unconditional rule */
  chains: Chain[];
}

export interface ArchPlan {
  arch: Arch;
  /** syscall number → rules; numbers without an entry get the default action */
  rules: Map<number, SyscallRules>;
  /** runc's -ENOSYS stub: a number above this (for x32: with X32_SYSCALL_BIT) returns ENOSYS */
  enosysAbove?: number;
  /** bits of an argument this ABI compares */
  argBits: 32 | 64;
}

export interface SeccompPlan {
  defaultAction: number;
  /** x86_64 first; x86 and x32 when the profile lists them */
  arches: ArchPlan[];
  /** seccomp(2) flags */
  flags: number;
}

export class SeccompProfileError extends Error {}

const fail = (problem: string): never => {
  throw new SeccompProfileError(`linux.seccomp: ${problem}`);
};

/** x86's multiplexed socket and SysV IPC calls: name → call number in argument 0 (libseccomp's __PNR_* % 100, % 200). */
const X86_SOCKETCALL = 102;
const X86_IPC = 117;
const SOCKET_CALLS: Record<string, number> = {
  socket: 1, bind: 2, connect: 3, listen: 4, accept: 5, getsockname: 6, getpeername: 7, socketpair: 8, send: 9, recv: 10,
  sendto: 11, recvfrom: 12, shutdown: 13, setsockopt: 14, getsockopt: 15, sendmsg: 16, recvmsg: 17, accept4: 18,
  recvmmsg: 19, sendmmsg: 20,
};
const IPC_CALLS: Record<string, number> = {
  semop: 1, semget: 2, semctl: 3, semtimedop: 4, msgsnd: 11, msgrcv: 12, msgget: 13, msgctl: 14, shmat: 21, shmdt: 22, shmget: 23, shmctl: 24,
};

function lookup(table: Readonly<Record<string, number>>, name: string): number | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined;
}

/** The number a name has on an architecture, as runc's -ENOSYS stub counts it (x86's multiplexed names: none). */
function stubNumber(arch: Arch, name: string): number | undefined {
  if (arch === 'x86' && (Object.hasOwn(SOCKET_CALLS, name) || Object.hasOwn(IPC_CALLS, name))) return undefined;
  return lookup(TABLES[arch], name);
}

export function actionValue(name: string, errnoRet: number | undefined, where: string): number {
  const data = (errnoRet ?? EPERM) & 0xffff;
  switch (name) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return RET.TRAP;
    case 'SCMP_ACT_ERRNO':
      return (RET.ERRNO | data) >>> 0;
    case 'SCMP_ACT_TRACE':
      return (RET.TRACE | data) >>> 0;
    case 'SCMP_ACT_LOG':
      return RET.LOG;
    case 'SCMP_ACT_ALLOW':
      return RET.ALLOW;
    case 'SCMP_ACT_NOTIFY':
      return fail(`${where} is SCMP_ACT_NOTIFY, which hands the call to a seccomp agent on the host: a process inside a microVM cannot reach one (use SCMP_ACT_ERRNO or SCMP_ACT_ALLOW, or run the container under runc with RUNCVM_DISABLE=1)`);
    default:
      return fail(`${where} is "${name}", not a seccomp action (SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_TRACE, SCMP_ACT_LOG)`);
  }
}

const ALL_ONES = 0xffffffffffffffffn;

function u64(n: number, where: string): bigint {
  if (!Number.isInteger(n) || n < 0) fail(`${where} is ${n}, not an unsigned integer`);
  return BigInt(n) & ALL_ONES;
}

interface RawCond {
  index: number;
  op: Op;
  value: bigint;
  valueTwo: bigint;
}

/** A condition cut to the ABI's width, or undefined when it always holds (libseccomp drops it). */
function widthCond(c: RawCond, bits: 32 | 64): Cond | undefined {
  const width = bits === 64 ? ALL_ONES : 0xffffffffn;
  if (c.op === 'MASKED_EQ') {
    const mask = c.value & width;
    if (mask === 0n) return undefined;
    // libseccomp compares each 32-bit half on its own and skips a half whose mask is zero
    return { index: c.index, op: 'MASKED_EQ', mask, datum: c.valueTwo & mask };
  }
  return { index: c.index, op: c.op, mask: width, datum: c.value & width };
}

/** Profile → plan; undefined when the profile turns seccomp off (no default action and no syscalls, as runc). */
export function planSeccomp(profile: SeccompProfile): SeccompPlan | undefined {
  const syscalls = profile.syscalls ?? [];
  if (!profile.defaultAction && syscalls.length === 0) return undefined;
  const defaultAction = actionValue(profile.defaultAction, profile.defaultErrnoRet, `defaultAction`);

  let flags = 0;
  for (const f of profile.flags ?? []) {
    const bit = FLAGS[f];
    if (bit === undefined) fail(`flag "${f}" is not one the kernel knows (${Object.keys(FLAGS).join(', ')})`);
    flags |= bit!;
  }

  const listed: Arch[] = [];
  for (const a of profile.architectures ?? []) {
    const arch = OCI_ARCHES[a];
    if (arch === undefined) fail(`architecture "${a}" is not one runc knows (${Object.keys(OCI_ARCHES).join(', ')})`);
    if (arch !== 'foreign' && !listed.includes(arch!)) listed.push(arch!);
  }
  const arches: Arch[] = ['x86_64', ...(['x86', 'x32'] as const).filter((a) => listed.includes(a))];
  const plans: ArchPlan[] = arches.map((arch) => ({ arch, rules: new Map(), argBits: ARG_BITS[arch] }));

  const add = (plan: ArchPlan, nr: number, conds: Cond[], action: number) => {
    const r = plan.rules.get(nr) ?? { chains: [] };
    plan.rules.set(nr, r);
    if (r.action !== undefined) return; // an unconditional rule is there: libseccomp keeps it
    if (conds.length === 0) {
      r.action = action;
      r.chains = [];
    } else {
      r.chains.push({ conds, action });
    }
  };

  syscalls.forEach((s, i) => {
    const where = `syscalls[${i}]`;
    const action = actionValue(s.action, s.errnoRet, `${where}.action`);
    const raw: RawCond[] = (s.args ?? []).map((a, j) => {
      const op = OPS[a.op];
      if (!op) fail(`${where}.args[${j}].op is "${a.op}", not a comparison (${Object.keys(OPS).join(', ')})`);
      if (a.index > 5) fail(`${where}.args[${j}].index is ${a.index}: a syscall has arguments 0 to 5`);
      return { index: a.index, op: op!, value: u64(a.value, `${where}.args[${j}].value`), valueTwo: u64(a.valueTwo ?? 0, `${where}.args[${j}].valueTwo`) };
    });
    // runc: one index named twice → one rule per condition (OR) instead of one rule with all of them (AND)
    const repeated = raw.some((c, j) => raw.findIndex((d) => d.index === c.index) !== j);
    const ruleSets = repeated ? raw.map((c) => [c]) : [raw];
    for (const name of s.names) {
      if (name === '') fail(`${where}.names holds an empty name`);
      if (action === defaultAction) continue;
      for (const plan of plans) {
        for (const set of ruleSets) {
          const conds = set.map((c) => widthCond(c, plan.argBits)).filter((c): c is Cond => c !== undefined);
          const mux = plan.arch === 'x86' ? (Object.hasOwn(SOCKET_CALLS, name) ? [X86_SOCKETCALL, SOCKET_CALLS[name]!] : Object.hasOwn(IPC_CALLS, name) ? [X86_IPC, IPC_CALLS[name]!] : undefined) : undefined;
          if (mux) {
            // libseccomp: the multiplexer with the call number in argument 0 (replacing a condition on argument 0)
            const call: Cond = { index: 0, op: 'EQ', mask: 0xffffffffn, datum: BigInt(mux[1]!) };
            add(plan, mux[0]!, [call, ...conds.filter((c) => c.index !== 0)], action);
          }
          const nr = lookup(TABLES[plan.arch], name);
          if (nr !== undefined) add(plan, nr, conds, action);
        }
      }
    }
  });

  for (const plan of plans) for (const r of plan.rules.values()) if (new Set(r.chains.map((c) => c.action)).size > 1) r.chains = [...r.chains].sort(libseccompOrder);

  // runc's -ENOSYS stub, for the architectures the profile lists
  const allows = defaultAction === RET.ALLOW || defaultAction === RET.LOG || (defaultAction & 0xffff0000) >>> 0 === RET.TRACE;
  const enosysDefault = profile.defaultErrnoRet === ENOSYS;
  if (!allows && !enosysDefault) {
    for (const plan of plans) {
      if (!listed.includes(plan.arch)) continue;
      let max = 0;
      for (const s of syscalls) {
        for (const name of s.names) {
          const nr = stubNumber(plan.arch, name);
          if (nr !== undefined && nr > max) max = nr;
        }
      }
      if (max > 0) plan.enosysAbove = max;
    }
  }
  return { defaultAction, arches: plans, flags };
}

/** libseccomp's priority of an operator on one tree level (==, != and masked first, then < <=, then > >=) */
const OP_PRIORITY: Record<Op, number> = { EQ: 3, NE: 3, MASKED_EQ: 3, LT: 2, LE: 2, GT: 1, GE: 1 };

/**
 * The order libseccomp's tree tries rules with different actions in: condition by condition (each rule's by
 * argument), the greater first — a higher argument, then the operator's priority, then the value (for < and <= the
 * smaller) — and a rule that ends first (a prefix of the other) before the longer one. Stable otherwise.
 */
function libseccompOrder(a: Chain, b: Chain): number {
  const ca = [...a.conds].sort((x, y) => x.index - y.index);
  const cb = [...b.conds].sort((x, y) => x.index - y.index);
  for (let i = 0; ; i++) {
    const x = ca[i];
    const y = cb[i];
    if (!x && !y) return 0;
    if (!x) return -1;
    if (!y) return 1;
    if (x.index !== y.index) return y.index - x.index;
    if (OP_PRIORITY[x.op] !== OP_PRIORITY[y.op]) return OP_PRIORITY[y.op] - OP_PRIORITY[x.op];
    if (x.datum !== y.datum) {
      const smallerFirst = x.op === 'LT' || x.op === 'LE';
      return (x.datum < y.datum) === smallerFirst ? -1 : 1;
    }
  }
}

/** What a syscall argument compares as on a `bits`-wide ABI. */
function holds(c: Cond, arg: bigint, bits: 32 | 64): boolean {
  const a = bits === 64 ? arg & ALL_ONES : arg & 0xffffffffn;
  switch (c.op) {
    case 'EQ':
      return a === c.datum;
    case 'NE':
      return a !== c.datum;
    case 'LT':
      return a < c.datum;
    case 'LE':
      return a <= c.datum;
    case 'GT':
      return a > c.datum;
    case 'GE':
      return a >= c.datum;
    case 'MASKED_EQ':
      return (a & c.mask) === c.datum;
  }
}

/** The seccomp_data a filter sees (arch as AUDIT_ARCH_*, nr with X32_SYSCALL_BIT for x32 calls). */
export interface SeccompData {
  arch: number;
  nr: number;
  args: readonly bigint[];
}

/** The plan's answer for one call, written plainly (the compiled program must agree: test/unit/runcvm/seccomp). */
export function decide(plan: SeccompPlan, data: SeccompData): number {
  let arch: Arch | undefined;
  if (data.arch === AUDIT_ARCH.x86_64) arch = data.nr >>> 0 >= X32_SYSCALL_BIT ? 'x32' : 'x86_64';
  else if (data.arch === AUDIT_ARCH.x86) arch = 'x86';
  const p = plan.arches.find((a) => a.arch === arch);
  if (!p) return RET.KILL_THREAD;
  const nr = data.nr >>> 0;
  if (p.enosysAbove !== undefined && nr > p.enosysAbove) return (RET.ERRNO | ENOSYS) >>> 0;
  const r = p.rules.get(nr);
  if (!r) return plan.defaultAction;
  if (r.action !== undefined) return r.action;
  for (const chain of r.chains) {
    if (chain.conds.every((c) => holds(c, data.args[c.index] ?? 0n, p.argBits))) return chain.action;
  }
  return plan.defaultAction;
}
