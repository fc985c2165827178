/**
 * Issue 16, causes 4 and 11: what runc applies to the workload's own process and mount namespace (masked and
 * read-only paths, extra device nodes, sysctls, oom_score_adj, the spec's /dev and cgroup mounts, the terminal's
 * owner, the seccomp profile) the guest init applies to the workload inside the VM. Same bundle under runc (the
 * oracle) and runcvm; the workload prints the facts, the outputs must be equal.
 *
 * Applied by the guest's workload set-up (src/runcvm/guest/rootfs.c, workload.c, agent.c) from the LaunchSpec
 * (src/runcvm/launch/rootfs.ts; the seccomp profile compiled by src/runcvm/seccomp).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/core/exec/index.js';
import { CloserStack } from '../../src/core/fsx/index.js';
import type { OciSpec } from '../../src/runcvm/launch/oci.js';
import { conformanceFixture, expectOracle, type ConformanceFixture, type Outcome, type RuntimeName } from './conformance/bundles.js';

const closers = new CloserStack();
let cf: ConformanceFixture;

/** one line per fact; the spec below sets each of them away from the kernel's default */
const FACTS = [
  'stat -c "masked /proc/keys: %F" /proc/keys',
  'echo "read-only /proc/sys: $(awk \'$2 == "/proc/sys" {split($4, o, ","); print o[1]}\' /proc/mounts)"',
  'stat -c "device /dev/zero2: %t,%T %a %u:%g" /dev/zero2',
  'echo "sysctl kernel.shm_rmid_forced: $(cat /proc/sys/kernel/shm_rmid_forced)"',
  'echo "oom_score_adj: $(cat /proc/self/oom_score_adj)"',
  'echo "/dev mount: $(awk \'$2 == "/dev" {split($4, o, ","); print o[1]}\' /proc/mounts)"',
  'awk \'($3 == "cgroup" || $3 == "cgroup2") && $2 ~ "^/sys/fs/cgroup" {o[$2]=$4} END {n=0; rw=0; for (m in o) {n++; if (o[m] !~ /^ro/) rw++}; print "cgroup mounts: " (n > 0 ? "present" : "none") (rw ? ", writable" : ", read-only")}\' /proc/mounts',
  'echo "/sys mount: $(awk \'$2 == "/sys" {split($4, o, ","); print o[1]}\' /proc/mounts)"',
  // the VM's own disks (vda, vdb …) are not the workload's devices: /dev is the spec's tmpfs with runc's nodes only
  'echo "block devices in /dev: $(find /dev -type b | wc -l)"',
  // the spec's mounts, in the spec's order (runtime-tools checks the order)
  'echo "spec mounts: $(awk \'{print $5}\' /proc/self/mountinfo | grep -E "^/(proc|dev|dev/pts|dev/shm|dev/mqueue|sys|sys/fs/cgroup|scratch)$" | tr "\\n" " ")"',
].join('\n');

function withFacts(s: OciSpec): void {
  s.process!.args = ['sh', '-c', FACTS];
  // runc spec's defaults already mask /proc/keys and make /proc/sys read-only, and mount cgroups read-only
  s.linux!.devices = [{ path: '/dev/zero2', type: 'c', major: 1, minor: 5, fileMode: 0o640, uid: 0, gid: 0 }];
  s.linux!.sysctl = { 'kernel.shm_rmid_forced': '1' };
  s.process!.oomScoreAdj = 123;
  s.mounts = (s.mounts ?? []).map((m) => (m.destination === '/dev' ? { ...m, options: [...(m.options ?? []), 'ro'] } : m));
  // a tmpfs of the spec's own, after the system mounts: it keeps its place in the order too
  s.mounts.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'size=1m'] });
}

describe('conformance: the workload\'s process and mounts in the guest (issue 16 causes 4 and 11)', { timeout: 480_000 }, () => {
  beforeAll(async () => {
    cf = await conformanceFixture(closers);
  });
  afterAll(async () => {
    await closers.close();
  });

  // cause 4: the guest init replays the spec's mounts for the workload in the spec's order with their options, then
  // applies maskedPaths, readonlyPaths, linux.devices, linux.sysctl and oomScoreAdj
  it('cause 4: masked and read-only paths, devices, sysctls, oom_score_adj, the spec\'s mounts in order, as runc gives them', async () => {
    const out = await cf.both(withFacts);
    expectOracle(out.runc, {
      stdout: [
        'masked /proc/keys: character special file',
        'read-only /proc/sys: ro',
        'device /dev/zero2: 1,5 640 0:0',
        'sysctl kernel.shm_rmid_forced: 1',
        'oom_score_adj: 123',
        '/dev mount: ro',
        'cgroup mounts: present, read-only',
        '/sys mount: ro',
        'block devices in /dev: 0',
        'spec mounts: /proc /dev /dev/pts /dev/shm /dev/mqueue /sys /sys/fs/cgroup /scratch ',
        '',
      ].join('\n'),
    });
    expect(out.runcvm).toEqual(out.runc);
  });

  // cause 4: the workload's pty comes from its own devpts (gid=5, mode 620) and is chowned to its uid, as runc does
  it('cause 4: a non-root user\'s terminal is owned by that user (runc: uid:5, mode 620)', async () => {
    const out = {} as Record<RuntimeName, Outcome>;
    for (const rt of ['runc', 'runcvm'] as const) {
      const b = await cf.bundle((s) => {
        s.process!.terminal = true;
        s.process!.user = { uid: 1000, gid: 1000 };
        s.process!.args = ['sh', '-c', 'stat -c "%u:%g %a" "$(tty)"'];
      });
      const bin = rt === 'runc' ? 'runc' : cf.fx.wrapper;
      // a terminal container in the foreground needs a terminal of its own: script(1) gives it one
      const r = await run('script', ['-qec', `${bin} --root ${cf.root} run --bundle ${b} ${cf.newId(`tty-${rt}`)}`, '/dev/null'], { reject: false, input: '', timeoutMs: 240_000 });
      // the terminal's own noise: the echoed NUL (^@) of the empty stdin, CRs of the line discipline
      out[rt] = { exit: r.exitCode, stdout: r.stdout.replace(/\^@|[\0\r]/g, ''), stderr: r.stderr };
    }
    expectOracle(out.runc, { stdout: '1000:5 620\n' });
    expect(out.runcvm).toEqual(out.runc);
  });

  // cause 4, found while running runc's cwd.bats: runc changes into the cwd while still root, and again as the user
  // only when root was refused; the guest init used to change directory only after setuid
  it('cause 4: a cwd only root may enter (/root 0700) works for a non-root user, as under runc', async () => {
    const out = await cf.both((s) => {
      s.process!.cwd = '/root';
      s.process!.user = { uid: 42, gid: 42 };
      s.process!.args = ['sh', '-c', 'pwd; id -u'];
    });
    expectOracle(out.runc, { stdout: '/root\n42\n' });
    expect(out.runcvm).toEqual(out.runc);
  });

  // cause 11: the guest init loads the workload's seccomp filter (compiled on the host), at runc's point
  it('cause 11: the workload\'s seccomp profile is applied in the guest (a denied syscall fails as under runc)', async () => {
    const out = await cf.both((s) => {
      s.root!.readonly = false;
      s.process!.args = ['sh', '-c', 'grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; echo "mkdir exit $?"'];
      s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
    });
    expectOracle(out.runc, { stdout: "Seccomp:\t2\nmkdir: can't create directory '/tmp/x': Operation not permitted\nmkdir exit 1\n" });
    expect(out.runcvm).toEqual(out.runc);
  });

  // cause 11, the node-level opt-out (Kata's disable_guest_seccomp): only the runtime's own environment can relax it,
  // never the container's (a pod author must not switch off their own sandbox)
  it('cause 11: RUNCVM_GUEST_SECCOMP=off in the runtime\'s environment (not the container\'s) leaves the guest workload unfiltered', async () => {
    const profile = (s: OciSpec) => {
      s.process!.args = ['grep', 'Seccomp:', '/proc/self/status'];
      s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
    };
    const fromPod = await cf.run('runcvm', await cf.bundle((s) => {
      profile(s);
      s.process!.env = [...(s.process!.env ?? []), 'RUNCVM_GUEST_SECCOMP=off'];
    }), cf.newId('seccomp-pod'));
    expect(fromPod).toEqual({ exit: 0, stdout: 'Seccomp:\t2\n', stderr: '' });
    const node = await cf.fx.wrapperWith('guest-seccomp-off', { RUNCVM_GUEST_SECCOMP: 'off' });
    const fromNode = await cf.run('runcvm', await cf.bundle(profile), cf.newId('seccomp-node'), { binary: node });
    expect(fromNode).toEqual({ exit: 0, stdout: 'Seccomp:\t0\n', stderr: '' });
  });
});
