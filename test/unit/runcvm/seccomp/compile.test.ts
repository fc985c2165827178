/**
 * The seccomp compiler (src/runcvm/seccomp): the plan gives a profile runc's meaning (libseccomp 2.5 + runc 1.1's
 * -ENOSYS stub), and the BPF program the guest loads must answer every call exactly as the plan does. The program
 * runs here in a BPF interpreter (bpf-vm.ts) on many calls chosen around each rule's boundaries; the behaviour
 * against runc itself, on the real kernel, is test/e2e/seccomp-parity.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { compileSeccomp, SeccompProfileError, type SeccompProfile } from '../../../../src/runcvm/seccomp/index.js';
import { encodeProgram, generateBpf, type Instruction } from '../../../../src/runcvm/seccomp/bpf.js';
import { AUDIT_ARCH, decide, ENOSYS, planSeccomp, RET, type SeccompData, type SeccompPlan } from '../../../../src/runcvm/seccomp/plan.js';
import { SYSCALLS_X32, SYSCALLS_X86, SYSCALLS_X86_64 } from '../../../../src/runcvm/seccomp/syscalls.js';
import { X32_SYSCALL_BIT } from '../../../../src/runcvm/seccomp/headers.js';
import { runBpf } from './bpf-vm.js';

const ERRNO = (e: number) => (RET.ERRNO | e) >>> 0;
const X86_64 = AUDIT_ARCH.x86_64;
const I386 = AUDIT_ARCH.x86;
const call = (arch: number, nr: number, ...args: (number | bigint)[]): SeccompData => ({ arch, nr, args: args.map((a) => BigInt(a)) });
const nr64 = (name: string) => SYSCALLS_X86_64[name]!;

/** a small deterministic generator (xorshift32) */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Calls around every number and datum the plan mentions, plus random ones: the program must agree on each. */
function probes(plan: SeccompPlan, seed: number): SeccompData[] {
  const r = rng(seed);
  const out: SeccompData[] = [];
  const datums = new Set<bigint>([0n, 1n, 0xffffffffn, 0x100000000n, 0xffffffffffffffffn]);
  const nrs = new Set<number>([0, 1, 500, 1000, 0xffffffff]);
  for (const p of plan.arches) {
    const bit = p.arch === 'x32' ? X32_SYSCALL_BIT : 0;
    for (const nr of p.rules.keys()) for (const d of [-1, 0, 1]) nrs.add((nr + d) >>> 0);
    if (p.enosysAbove !== undefined) for (const d of [-1, 0, 1]) nrs.add(p.enosysAbove + d);
    nrs.add(bit);
    for (const rules of p.rules.values()) {
      for (const chain of rules.chains) {
        for (const c of chain.conds) {
          for (const d of [-1n, 0n, 1n]) datums.add((c.datum + d) & 0xffffffffffffffffn);
          datums.add(c.datum | (1n << 32n));
          datums.add(c.datum | c.mask);
          datums.add(c.mask ^ 0xffffffffffffffffn);
        }
      }
    }
  }
  const ds = [...datums];
  const pick = () => ds[r() % ds.length]!;
  for (const arch of [X86_64, I386, 0x12345678]) {
    for (const nr of nrs) {
      for (const n of [nr, (nr | X32_SYSCALL_BIT) >>> 0]) {
        out.push(call(arch, n));
        for (let k = 0; k < 6; k++) out.push({ arch, nr: n, args: [pick(), pick(), pick(), pick(), pick(), pick()] });
      }
    }
  }
  for (let k = 0; k < 2000; k++) {
    const arch = [X86_64, I386][r() % 2]!;
    const n = (r() % 3 === 0 ? (r() % 600) | X32_SYSCALL_BIT : r() % 600) >>> 0;
    out.push({ arch, nr: n, args: [pick(), pick(), BigInt(r()), pick(), BigInt(r()) << 32n, pick()] });
  }
  return out;
}

function expectProgramAgrees(profile: SeccompProfile, seed = 1): { plan: SeccompPlan; program: Instruction[] } {
  const plan = planSeccomp(profile)!;
  const program = generateBpf(plan);
  for (const d of probes(plan, seed)) {
    const want = decide(plan, d);
    const got = runBpf(program, d);
    if (got !== want) throw new Error(`program returns 0x${got.toString(16)}, plan 0x${want.toString(16)} for ${JSON.stringify({ ...d, args: d.args.map(String) })}`);
  }
  return { plan, program };
}

/** the shape of a container engine's default profile: errno by default, a long allow list, arguments on a few */
const ALLOWED = [
  'read', 'write', 'openat', 'close', 'fstat', 'mmap', 'mprotect', 'munmap', 'brk', 'rt_sigaction', 'rt_sigprocmask',
  'ioctl', 'pread64', 'access', 'pipe', 'select', 'sched_yield', 'dup', 'dup2', 'nanosleep', 'getpid', 'socket',
  'connect', 'accept', 'sendto', 'recvfrom', 'send', 'recv', 'sendmsg', 'recvmsg', 'bind', 'listen', 'socketcall',
  'execve', 'exit', 'wait4', 'kill', 'uname', 'semget', 'semop', 'shmat', 'shmdt', 'ipc', 'fcntl', 'getdents64',
  'getcwd', 'chdir', 'rename', 'mkdir', 'rmdir', 'unlink', 'readlink', 'chmod', 'getuid', 'getgid', 'setuid',
  'setgid', 'arch_prctl', 'exit_group', 'set_tid_address', 'futex', 'openat2', 'faccessat2', 'process_mrelease',
  'epoll_pwait2', 'rseq', 'prlimit64', 'getrandom', 'statx', 'clock_gettime', 'clock_gettime64', 'waitid',
];
const ENGINE_LIKE: SeccompProfile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1,
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [
    { names: ALLOWED, action: 'SCMP_ACT_ALLOW' },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 4294967295, op: 'SCMP_CMP_EQ' }] },
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    { names: ['lseek'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 0x1_0000_0005, op: 'SCMP_CMP_GT' }, { index: 2, value: 2, op: 'SCMP_CMP_LE' }] },
    { names: ['lseek'], action: 'SCMP_ACT_TRAP', args: [{ index: 1, value: 7, op: 'SCMP_CMP_LT' }] },
    { names: ['pwrite64'], action: 'SCMP_ACT_ALLOW', args: [{ index: 3, value: 0x2_0000_0000, op: 'SCMP_CMP_GE' }, { index: 0, value: 3, op: 'SCMP_CMP_NE' }] },
    { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 97, args: [{ index: 0, value: 40, op: 'SCMP_CMP_EQ' }] },
    // one index twice: runc makes one rule per condition (either holds)
    { names: ['setsockopt'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 6, op: 'SCMP_CMP_EQ' }] },
    { names: ['no_such_syscall', 'arm_fadvise64_64'], action: 'SCMP_ACT_ALLOW' },
    { names: ['reboot'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
    { names: ['ptrace'], action: 'SCMP_ACT_KILL_PROCESS' },
    { names: ['syslog'], action: 'SCMP_ACT_LOG' },
    { names: ['acct'], action: 'SCMP_ACT_TRACE', errnoRet: 5 },
  ],
};

describe('seccomp: the compiled program answers as the plan does', () => {
  it('an engine-like default profile (errno default, three x86 ABIs, argument rules)', () => {
    const { program } = expectProgramAgrees(ENGINE_LIKE, 7);
    expect(program.length).toBeLessThan(1500);
  });

  it('allow by default with a few refusals (the conformance test\'s profile)', () => {
    expectProgramAgrees({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }, 3);
  });

  it('every x86-64 syscall with conditions: jumps past 255 instructions go through ja, the program stays under 4096', () => {
    const names = Object.keys(SYSCALLS_X86_64);
    const profile: SeccompProfile = {
      defaultAction: 'SCMP_ACT_KILL_PROCESS',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      syscalls: names.map((n, i) => ({ names: [n], action: i % 3 ? 'SCMP_ACT_ALLOW' : 'SCMP_ACT_ERRNO', errnoRet: i % 250, args: i % 2 ? [{ index: i % 6, value: i * 0x1_0000_0001, op: ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_GT', 'SCMP_CMP_LE', 'SCMP_CMP_MASKED_EQ'][i % 5]!, valueTwo: i }] : [] })),
    };
    const { program } = expectProgramAgrees(profile, 11);
    expect(program.some((ins) => ins.code === 0x05 && ins.k > 255)).toBe(true);
    expect(program.length).toBeLessThanOrEqual(4096);
  });

  it('encodes struct sock_filter little-endian, 8 bytes per instruction', () => {
    const buf = encodeProgram([{ code: 0x15, jt: 1, jf: 2, k: 0xc000003e }, { code: 0x06, jt: 0, jf: 0, k: RET.ALLOW }]);
    expect(buf.toString('hex')).toBe('150001023e0000c0' + '060000000000ff7f');
    const compiled = compileSeccomp(ENGINE_LIKE)!;
    expect(compiled.program.length % 8).toBe(0);
    expect(compiled.flags).toBe(0);
  });
});

describe('seccomp: the meaning runc gives a profile', () => {
  const plan = planSeccomp(ENGINE_LIKE)!;
  const d = (data: SeccompData) => decide(plan, data);

  it('listed calls are allowed, others get the default errno', () => {
    expect(d(call(X86_64, nr64('getpid')))).toBe(RET.ALLOW);
    expect(d(call(X86_64, nr64('mount')))).toBe(ERRNO(1));
    expect(d(call(I386, SYSCALLS_X86.getpid!))).toBe(RET.ALLOW);
    expect(d(call(X86_64, SYSCALLS_X32.getpid!))).toBe(RET.ALLOW);
  });

  it('a call numbered above every name in the profile fails with ENOSYS (runc\'s stub: libc falls back), per ABI', () => {
    const top = Math.max(...ENGINE_LIKE.syscalls!.flatMap((s) => s.names).map((n) => SYSCALLS_X86_64[n] ?? 0));
    expect(d(call(X86_64, top + 1))).toBe(ERRNO(ENOSYS));
    expect(d(call(X86_64, 1000))).toBe(ERRNO(ENOSYS));
    expect(d(call(X86_64, top - 1))).not.toBe(ERRNO(ENOSYS));
    expect(d(call(I386, 1000))).toBe(ERRNO(ENOSYS));
    expect(d(call(X86_64, (1000 | X32_SYSCALL_BIT) >>> 0))).toBe(ERRNO(ENOSYS));
    // no stub when the default allows, or when no architecture is listed (runc builds it from the list)
    expect(decide(planSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] })!, call(X86_64, 1000))).toBe(RET.ALLOW);
    expect(decide(planSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] })!, call(X86_64, 1000))).toBe(ERRNO(1));
  });

  it('an ABI the profile does not list kills the thread (libseccomp\'s bad-architecture action)', () => {
    const only64 = planSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW' }] })!;
    expect(decide(only64, call(X86_64, nr64('getpid')))).toBe(RET.ALLOW);
    expect(decide(only64, call(I386, SYSCALLS_X86.getpid!))).toBe(RET.KILL_THREAD);
    expect(decide(only64, call(X86_64, SYSCALLS_X32.getpid!))).toBe(RET.KILL_THREAD);
    expect(decide(only64, call(0xc00000b7, 1))).toBe(RET.KILL_THREAD);
  });

  it('arguments: 64-bit comparisons on x86-64, the low 32 bits on i386', () => {
    const lseek = nr64('lseek');
    expect(d(call(X86_64, lseek, 0, 0x1_0000_0006, 2))).toBe(RET.ALLOW);
    expect(d(call(X86_64, lseek, 0, 0x1_0000_0005, 2))).toBe(ERRNO(1));
    expect(d(call(X86_64, lseek, 0, 0x1_0000_0006, 3))).toBe(ERRNO(1));
    expect(d(call(X86_64, lseek, 0, 6, 0))).toBe(RET.TRAP);
    expect(d(call(X86_64, lseek, 0, 0x1_0000_0000, 0))).toBe(ERRNO(1));
    // i386: the low words only (GT 0x1_0000_0005 is > 5 there); both rules hold at 6, and `<` is tried before `>`
    expect(d(call(I386, SYSCALLS_X86.lseek!, 0, 8, 2))).toBe(RET.ALLOW);
    expect(d(call(I386, SYSCALLS_X86.lseek!, 0, 6, 2))).toBe(RET.TRAP);
    const clone = nr64('clone');
    expect(d(call(X86_64, clone, 0x11))).toBe(RET.ALLOW);
    expect(d(call(X86_64, clone, 0x10000000))).toBe(ERRNO(1));
    expect(d(call(X86_64, nr64('personality'), 0xffffffff))).toBe(RET.ALLOW);
    expect(d(call(X86_64, nr64('personality'), 0x1_ffffffff))).toBe(ERRNO(1));
    expect(d(call(X86_64, nr64('setsockopt'), 0, 6))).toBe(RET.ALLOW);
    expect(d(call(X86_64, nr64('setsockopt'), 0, 1))).toBe(RET.ALLOW);
    expect(d(call(X86_64, nr64('setsockopt'), 0, 2))).toBe(ERRNO(1));
  });

  it('i386 socket and IPC calls match socketcall(2) / ipc(2) too, with the call number in argument 0', () => {
    expect(d(call(I386, 102, 1))).toBe(RET.ALLOW); // socketcall(SYS_SOCKET): socketcall itself is allowed anyway
    const noMux = planSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86'], syscalls: [{ names: ['connect', 'shmat'], action: 'SCMP_ACT_ALLOW' }] })!;
    expect(decide(noMux, call(I386, 102, 3))).toBe(RET.ALLOW);
    expect(decide(noMux, call(I386, 102, 1))).toBe(ERRNO(1));
    expect(decide(noMux, call(I386, SYSCALLS_X86.connect!))).toBe(RET.ALLOW);
    expect(decide(noMux, call(I386, 117, 21))).toBe(RET.ALLOW);
    expect(decide(noMux, call(I386, 117, 22))).toBe(ERRNO(1));
    // the stub's bound ignores the multiplexed names (libseccomp resolves them to pseudo numbers): nothing else named
    expect(noMux.arches.find((a) => a.arch === 'x86')!.enosysAbove).toBeUndefined();
  });

  it('rule order: the first unconditional rule wins; a later unconditional rule replaces conditional ones', () => {
    const p = planSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 3 },
        { names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 4 },
        { names: ['getuid'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] },
        { names: ['getuid'], action: 'SCMP_ACT_ERRNO', errnoRet: 6 },
        // the same action as the default: skipped
        { names: ['getgid'], action: 'SCMP_ACT_ALLOW' },
        // a mask of zero always holds: unconditional
        { names: ['getppid'], action: 'SCMP_ACT_ERRNO', errnoRet: 7, args: [{ index: 0, value: 0, valueTwo: 5, op: 'SCMP_CMP_MASKED_EQ' }] },
      ],
    })!;
    expect(decide(p, call(X86_64, nr64('getpid')))).toBe(ERRNO(3));
    expect(decide(p, call(X86_64, nr64('getuid'), 1))).toBe(ERRNO(6));
    expect(decide(p, call(X86_64, nr64('getuid'), 0))).toBe(ERRNO(6));
    expect(p.arches[0]!.rules.has(nr64('getgid'))).toBe(false);
    expect(decide(p, call(X86_64, nr64('getppid'), 123))).toBe(ERRNO(7));
  });

  it('rules with different actions whose conditions overlap: libseccomp\'s order (measured with runc 1.1.5)', () => {
    const socket = nr64('socket');
    const order = (rules: { errno: number; args: [number, number][] }[]) =>
      planSeccomp({
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: rules.map((r) => ({ names: ['socket'], action: r.errno ? 'SCMP_ACT_ERRNO' : 'SCMP_ACT_ALLOW', errnoRet: r.errno || undefined, args: r.args.map(([index, value]) => ({ index, value, op: 'SCMP_CMP_EQ' })) })),
      })!;
    const at = (p: SeccompPlan, ...args: number[]) => decide(p, call(X86_64, socket, ...args));
    // a condition on a higher argument is tried first, whatever the profile's order
    for (const rules of [[{ errno: 71, args: [[0, 40]] as [number, number][] }, { errno: 0, args: [[1, 1]] as [number, number][] }], [{ errno: 0, args: [[1, 1]] as [number, number][] }, { errno: 71, args: [[0, 40]] as [number, number][] }]]) {
      const p = order(rules);
      expect(at(p, 40, 1)).toBe(RET.ALLOW);
      expect(at(p, 40, 2)).toBe(ERRNO(71));
      expect(at(p, 0, 2)).toBe(ERRNO(1));
    }
    // a rule that fails further down gives way to the next one
    const g1 = order([{ errno: 71, args: [[1, 1], [2, 0]] }, { errno: 72, args: [[0, 40]] }]);
    expect([at(g1, 40, 1, 5), at(g1, 40, 1, 0), at(g1, 40, 2, 0), at(g1, 0, 1, 0), at(g1, 0, 1, 5)]).toEqual([ERRNO(72), ERRNO(71), ERRNO(72), ERRNO(71), ERRNO(1)]);
    // the same first condition: the next condition's argument decides; a shorter rule comes first
    const g4 = order([{ errno: 72, args: [[0, 40], [1, 1]] }, { errno: 71, args: [[0, 40], [2, 0]] }]);
    expect([at(g4, 40, 1, 5), at(g4, 40, 1, 0), at(g4, 40, 2, 0), at(g4, 0, 1, 0)]).toEqual([ERRNO(72), ERRNO(71), ERRNO(71), ERRNO(1)]);
    const f7 = order([{ errno: 72, args: [[0, 40]] }, { errno: 71, args: [[0, 40], [1, 1]] }]);
    expect([at(f7, 40, 1), at(f7, 40, 2)]).toEqual([ERRNO(72), ERRNO(72)]);
  });

  it('actions: errno (EPERM unless errnoRet), kill, kill_process, trap, log, trace', () => {
    expect(d(call(X86_64, nr64('reboot')))).toBe(ERRNO(1));
    expect(d(call(X86_64, nr64('ptrace')))).toBe(RET.KILL_PROCESS);
    expect(d(call(X86_64, nr64('syslog')))).toBe(RET.LOG);
    expect(d(call(X86_64, nr64('acct')))).toBe((RET.TRACE | 5) >>> 0);
    expect(decide(planSeccomp({ defaultAction: 'SCMP_ACT_KILL', syscalls: [] })!, call(X86_64, 0))).toBe(RET.KILL_THREAD);
  });

  it('no default action and no syscalls: seccomp off, as runc reads it', () => {
    expect(planSeccomp({ defaultAction: '' })).toBeUndefined();
    expect(compileSeccomp({ defaultAction: '', syscalls: [] })).toBeUndefined();
  });

  it('flags: the kernel\'s SECCOMP_FILTER_FLAG_* become seccomp(2) flags', () => {
    expect(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] })!.flags).toBe(6);
  });

  it('refuses what runc refuses, naming the entry, and SCMP_ACT_NOTIFY (no seccomp agent reaches a microVM)', () => {
    const bad = (p: Partial<SeccompProfile>, text: RegExp) => {
      expect(() => planSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', ...p })).toThrow(SeccompProfileError);
      expect(() => planSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', ...p })).toThrow(text);
    };
    bad({ defaultAction: 'SCMP_ACT_MAYBE' }, /defaultAction is "SCMP_ACT_MAYBE", not a seccomp action/);
    bad({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, /syscalls\[0\]\.action is SCMP_ACT_NOTIFY.*cannot reach one/);
    bad({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_SIMILAR' }] }] }, /syscalls\[0\]\.args\[0\]\.op is "SCMP_CMP_SIMILAR"/);
    bad({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }, /index is 6/);
    bad({ syscalls: [{ names: [''], action: 'SCMP_ACT_ALLOW' }] }, /empty name/);
    bad({ architectures: ['SCMP_ARCH_Z80'] }, /architecture "SCMP_ARCH_Z80"/);
    bad({ flags: ['SECCOMP_FILTER_FLAG_EVERYTHING'] }, /flag "SECCOMP_FILTER_FLAG_EVERYTHING"/);
  });

  it('names that do not resolve are ignored (as runc does); the prototype\'s names are not syscalls', () => {
    const p = planSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_call', 'constructor', 'toString'], action: 'SCMP_ACT_ERRNO' }] })!;
    expect(p.arches[0]!.rules.size).toBe(0);
  });
});
