/**
 * Issue 16 cause 11: the seccomp program runcvm compiles on the host (src/runcvm/seccomp) refuses exactly what runc
 * refuses with the same profile, on the real kernel. Each profile runs twice under plain runc, in the same bundle:
 * once with the profile in config.json (runc + libseccomp + runc's -ENOSYS stub: the oracle), once without it,
 * the container's process being the guest's loader (src/runcvm/guest/seccomp.c, compiled in unchanged) with the
 * compiled program. Both run the same prober, which makes raw system calls on the three x86 ABIs (x86-64, i386
 * through int $0x80, x32) with arguments around each rule's values, and prints every result; the outputs must be
 * equal, line for line, including a call the filter kills (the prober dies there in both).
 * No VM boots here (the guest's loading is checked in conformance-guest.test.ts and conformance-exec.test.ts).
 *
 * Not compared, on purpose: profiles where libseccomp 2.5's rule tree does not mean what the rules say. Measured here
 * with runc 1.1.5: two rules for lseek, `offset > 0x100000005 && whence <= 1 → allow` and `offset < 5 → errno`,
 * under an errno default, let lseek through for every offset and whence probed (5, 4, 0x100000005 …), which
 * neither rule allows; runcvm applies the rules as written (stricter). Rules with different actions whose
 * conditions start on the same argument node and differ later make runc refuse the profile ("file exists");
 * runcvm tries them in libseccomp's order instead.
 */
import { chmod, copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/core/exec/index.js';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { projectPath } from '../../src/core/paths.js';
import type { OciSpec } from '../../src/runcvm/launch/oci.js';
import { compileSeccomp, type SeccompProfile } from '../../src/runcvm/seccomp/index.js';
import { SYSCALLS_X86_64 } from '../../src/runcvm/seccomp/syscalls.js';
import { busyboxRootfs } from '../harness/images.js';

const closers = new CloserStack();
let dir: string;
let seq = 0;

const FIX = projectPath('test', 'fixtures', 'seccomp');
const GUEST = projectPath('src', 'runcvm', 'guest');

/** calls whose real effect, when the filter lets them through, is only an error (bad descriptor, bad pointer) */
const NEG = '0xffffffffffffffff';
const X86_64_PROBES = [
  '64:0:-1:0:0', // read(-1)
  ...['0', '5', '0x100000000', '0x100000005', '0x100000006', '0x200000000', NEG].flatMap((off) => ['0', '1', '2', '3'].map((wh) => `64:8:-1:${off}:${wh}`)), // lseek(-1, off, whence)
  ...['1', '2', '3', '0x10', '0x11', '0x20', '0x110'].map((cmd) => `64:72:-1:${cmd}`), // fcntl(-1, cmd)
  '64:72:0x7fffffff:1', // fcntl(a large fd): EBADF when allowed
  ...['0xffffffff', '0x1ffffffff'].map((p) => `64:135:${p}`), // personality: query only
  ...['-1', '9999', '40'].flatMap((fam) => ['1:0', '1:5', '2:0', '2:5'].map((rest) => `64:41:${fam}:${rest}`)), // socket(family, type, proto): AF_VSOCK (40) may be created
  '64:258:-1:0:0', // mkdirat(-1, NULL)
  '64:435:0:0', // clone3(NULL, 0): EINVAL when allowed
  '64:449:0:0:0', // futex_waitv(NULL, 0): EINVAL
  '64:500',
  '64:1000',
];
const X32_PROBES = ['x32:0:-1:0:0', 'x32:8:-1:0x100000006:0', 'x32:1000'];
const I386_PROBES = [
  '32:3:-1:0:0', // read(-1)
  ...['0', '5', '6', '0x7fffffff'].map((off) => `32:19:-1:${off}:0`), // lseek(-1, off, 0)
  ...['1', '3', '9', '12'].map((call) => `32:102:${call}:0`), // socketcall(call, NULL): EFAULT when allowed
  ...['1', '22'].map((call) => `32:117:${call}:-1:0:0:0`), // ipc(semop / shmdt, bad ids)
  '32:359:-1:1:0', // socket(-1, …) direct
  '32:136:0xffffffff', // personality query
  '32:1000',
];

/** every x86-64 syscall numbered below `below` except the probed ones: an engine-style allow list */
function allowAllBelow(below: number, except: string[]): string[] {
  return Object.entries(SYSCALLS_X86_64).filter(([n, nr]) => nr < below && !except.includes(n)).map(([n]) => n);
}

const PROFILES: { name: string; profile: SeccompProfile; probes: string[] }[] = [
  {
    // the shape of Docker's and containerd's default: errno by default, three ABIs, a long allow list that
    // predates clone3, arguments on a few calls
    name: 'engine-like: errno default, three ABIs, -ENOSYS above the newest listed call',
    profile: {
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: allowAllBelow(435, ['lseek', 'fcntl', 'personality', 'socket', 'mkdirat', 'send']), action: 'SCMP_ACT_ALLOW' },
        { names: ['lseek'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 0x100000005, op: 'SCMP_CMP_GT' }, { index: 2, value: 1, op: 'SCMP_CMP_LE' }] },
        { names: ['lseek'], action: 'SCMP_ACT_ERRNO', errnoRet: 61, args: [{ index: 2, value: 3, op: 'SCMP_CMP_EQ' }] },
        { names: ['fcntl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0xffffffff, op: 'SCMP_CMP_NE' }] },
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0xffffffff, op: 'SCMP_CMP_EQ' }] },
        // different actions on overlapping conditions: libseccomp's tree tries the higher argument first
        { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 71, args: [{ index: 0, value: 40, op: 'SCMP_CMP_EQ' }] },
        { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 1, op: 'SCMP_CMP_EQ' }, { index: 2, value: 0, op: 'SCMP_CMP_EQ' }] },
        { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 72, args: [{ index: 0, value: 40, op: 'SCMP_CMP_EQ' }, { index: 2, value: 5, op: 'SCMP_CMP_EQ' }] },
        { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      ],
    },
    probes: [...X86_64_PROBES, ...X32_PROBES, ...I386_PROBES],
  },
  {
    name: 'allow by default: errno rules with 64-bit, masked and repeated-index conditions; an unlisted ABI is killed',
    profile: {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      syscalls: [
        { names: ['lseek'], action: 'SCMP_ACT_ERRNO', errnoRet: 77, args: [{ index: 1, value: 0x100000000, op: 'SCMP_CMP_GT' }, { index: 2, value: 1, op: 'SCMP_CMP_LE' }] },
        { names: ['fcntl'], action: 'SCMP_ACT_ERRNO', errnoRet: 78, args: [{ index: 1, value: 0xf0, valueTwo: 0x10, op: 'SCMP_CMP_MASKED_EQ' }] },
        { names: ['fcntl'], action: 'SCMP_ACT_ERRNO', errnoRet: 79, args: [{ index: 1, value: 2, op: 'SCMP_CMP_EQ' }, { index: 1, value: 3, op: 'SCMP_CMP_EQ' }] },
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 80, args: [{ index: 0, value: 0x1ffffffff, op: 'SCMP_CMP_EQ' }] },
        { names: ['socket', 'connect'], action: 'SCMP_ACT_ERRNO', errnoRet: 81 },
        { names: ['semop'], action: 'SCMP_ACT_ERRNO', errnoRet: 82 },
        { names: ['mkdirat'], action: 'SCMP_ACT_KILL' },
      ],
    },
    // ends with a call the filter kills: an x32 call (SCMP_ARCH_X32 not listed), after which nothing more prints
    probes: [...X86_64_PROBES.filter((p) => !p.startsWith('64:258:')), ...I386_PROBES, 'x32:0:-1:0:0', '64:0:-1:0:0'],
  },
  {
    name: 'only x86-64 listed, errno 13 by default: -ENOSYS above the list, i386 killed',
    profile: {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 13,
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: allowAllBelow(300, ['lseek', 'mkdirat']), action: 'SCMP_ACT_ALLOW' }, { names: ['prlimit64', 'getrandom', 'rseq', 'execveat'], action: 'SCMP_ACT_ALLOW' }],
    },
    probes: [...X86_64_PROBES, '32:3:-1:0:0', '64:0:-1:0:0'],
  },
];

interface Outcome {
  exit: number;
  stdout: string;
  stderr: string;
}

async function bundle(process: (spec: OciSpec) => void): Promise<string> {
  const b = join(dir, `bundle-${++seq}`);
  await busyboxRootfs(join(b, 'rootfs'));
  for (const bin of ['probe', 'load']) {
    await copyFile(join(dir, bin), join(b, 'rootfs', bin));
    await chmod(join(b, 'rootfs', bin), 0o755);
  }
  await run('runc', ['spec', '--bundle', b]);
  const spec = JSON.parse(await readFile(join(b, 'config.json'), 'utf8')) as OciSpec;
  spec.process!.terminal = false;
  process(spec);
  await writeFile(join(b, 'config.json'), JSON.stringify(spec));
  return b;
}

async function runc(b: string): Promise<Outcome> {
  const r = await run('runc', ['--root', join(dir, 'runc-root'), 'run', '--bundle', b, `sp-${process.pid}-${++seq}`], { reject: false, input: '', timeoutMs: 60_000 });
  return { exit: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

describe('seccomp: the compiled program refuses what runc refuses (same profile, same kernel)', { timeout: 240_000 }, () => {
  beforeAll(async () => {
    dir = await tempDir('seccomp-parity', closers);
    await run('gcc', ['-static', '-O1', '-Wall', '-Wextra', '-Werror', '-o', join(dir, 'probe'), join(FIX, 'probe.c')], { timeoutMs: 120_000 });
    await run('gcc', ['-static', '-Os', '-Wall', '-Wextra', '-Werror', '-I', GUEST, '-o', join(dir, 'load'), join(FIX, 'load.c'), join(GUEST, 'seccomp.c')], { timeoutMs: 120_000 });
  }, 240_000);
  afterAll(async () => {
    await closers.close();
  });

  for (const { name, profile, probes } of PROFILES) {
    it(name, async () => {
      const oracle = await runc(await bundle((s) => {
        s.process!.args = ['/probe', ...probes];
        s.linux!.seccomp = profile;
      }));
      const compiled = compileSeccomp(profile)!;
      const ours = await runc(await bundle((s) => {
        s.process!.args = ['/load', compiled.program.toString('hex'), String(compiled.flags), '/probe', ...probes];
      }));
      // runc showed something: at least the first call's line (a dead container is never a pass)
      expect(oracle.stdout.split('\n')[0], oracle.stderr).toMatch(/^\S+ -?\d+ \d+$/);
      expect(ours.stdout).toBe(oracle.stdout);
      expect(ours.exit).toBe(oracle.exit);
    });
  }

  it('the prober itself: without a filter every call returns the kernel\'s own answer (no EPERM from nowhere)', async () => {
    const r = await runc(await bundle((s) => {
      s.process!.args = ['/probe', '64:8:-1:0:0', '32:19:-1:0:0', '64:1000'];
    }));
    expect(r).toMatchObject({ exit: 0, stdout: '64:8:-1:0:0 -1 9\n32:19:-1:0:0 -1 9\n64:1000 -1 38\n' });
  });
});
