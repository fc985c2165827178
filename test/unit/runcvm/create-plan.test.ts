/**
 * `runcvm plan` prints exactly what `create` does: for every bundle fixture (test/fixtures/runcvm/bundles), the
 * plan is made once (planCreate, from the request and the facts), applied in dry mode (applyCreate with effects that
 * only record each action), and the recorded effects must equal, in order, the actions `runcvm plan` prints
 * (renderCreatePlan). On a refusal by runc, the same holds for the undo (the state folder, the debug log). Then what
 * each fixture's plan decides, the way a user would check it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { applyCreate, recordingEffects } from '../../../src/runcvm/runtime/apply-create.js';
import { planCreate, RuncStyleError, type CreatePlan, type VmCreatePlan } from '../../../src/runcvm/runtime/plan-create.js';
import type { CreateFacts, CreateInput } from '../../../src/runcvm/runtime/facts.js';
import { actionLines, renderCreatePlan } from '../../../src/runcvm/plan/main.js';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import { isToolError } from '../../../src/core/errors.js';
import { LAUNCHER_SECCOMP, withAbsoluteSources } from '../../../src/runcvm/bundle/transforms/index.js';
import { renderGuestConfig } from '../../../src/runcvm/launch/guest-config.js';

const DIR = new URL('../../fixtures/runcvm/bundles/', import.meta.url);

interface Fixture {
  about: string;
  /** the engine's command line (default: `runc --root /run/runc create --bundle /bundles/c1 --pid-file /run/c1.pid c1`) */
  argv?: string[];
  config: OciSpec;
  nodeEnv?: Record<string, string>;
  facts?: Partial<CreateFacts>;
}

const NODE_ENV = { RUNCVM_STATE_DIR: '/run/runcvm', RUNCVM_CACHE_DIR: '/var/lib/runcvm/disks', RUNCVM_LOG_DIR: '/var/log/runcvm', RUNCVM_ASSETS: '/opt/runcvm/var/assets' };
const G = '/opt/runcvm/var/assets/.guest-1';

/** The facts of a node that has everything (every asset, no KVM, no firecracker); each fixture changes some. */
function facts(more: Partial<CreateFacts> = {}): CreateFacts {
  return {
    assets: {
      guestDir: G,
      kernelDir: '/opt/runcvm/var/assets/kernel',
      present: ['kernel/vmlinux', 'kernel/initramfs.img', 'guest/lib/ld', 'guest/bin/node', 'guest/bin/runcvm-init', 'guest/lib/runcvm/launcher.mjs', 'guest/bin/qemu-system-x86_64', 'guest/bin/busybox', 'guest/bin/runcvm-agent'],
    },
    rootfs: { path: '/bundles/c1/rootfs', mode: 0o40755 },
    lookPath: { ok: true },
    hypervisor: { kvm: { kvmExists: true, kvmOpenable: true, cpuFlags: [], kvmPvm: true }, firecrackerLookedFor: `${G}/bin/firecracker or on the runtime's PATH` },
    volumeSources: {},
    hostNetwork: false,
    devices: [{ path: '/dev/kvm', type: 'c', major: 10, minor: 232 }, { path: '/dev/net/tun', type: 'c', major: 10, minor: 200 }],
    engineFiles: [],
    debugLog: { kind: 'missing' },
    runtimeUid: 0,
    base: { key: 'b'.repeat(64), how: 'file tree fingerprint', extraLayers: [], from: { kind: 'dir', dir: '/bundles/c1/rootfs' }, cached: { bytes: 4 << 20, inodes: 120 } },
    ...more,
  };
}

const fixtures = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort().map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(new URL(f, DIR), 'utf8')) as Fixture] as const);

function inputFor(fx: Fixture): CreateInput {
  return {
    id: 'c1',
    bundle: '/bundles/c1',
    // as runtime/main.ts reads it: relative bind sources are the bundle's
    spec: withAbsoluteSources('/bundles/c1')(fx.config),
    runc: { file: 'runc', argv: fx.argv ?? ['--root', '/run/runc', 'create', '--bundle', '/bundles/c1', '--pid-file', '/run/c1.pid', 'c1'], passFds: 0, root: '/run/runc' },
    nodeEnv: { ...NODE_ENV, ...fx.nodeEnv },
  };
}

function plan(fx: Fixture): CreatePlan {
  return planCreate(inputFor(fx), facts(fx.facts));
}

/** The action lines under `runcvm plan`'s "create's actions" heading. */
function printedActions(p: CreatePlan): string[] {
  const lines = renderCreatePlan(p).split('\n');
  const start = lines.findIndex((l) => l.startsWith("# create's actions, in order")) + 1;
  const end = lines.indexOf('', start);
  return lines.slice(start, end);
}

describe('runcvm plan prints exactly what create does (every bundle fixture)', () => {
  it('has fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(8);
  });

  it.each(fixtures)('%s: the effects applied in dry mode equal the printed actions, in order', async (_name, fx) => {
    const p = plan(fx);
    const rec = recordingEffects();
    expect(await applyCreate(p, rec, 'c1')).toBe(0);
    expect(rec.records).toEqual(actionLines(p));
    expect(printedActions(p)).toEqual(rec.records);
    if (p.kind === 'pass-through') {
      expect(rec.records).toEqual(['run runc --root /run/runc create --bundle /bundles/c1 --pid-file /run/c1.pid c1']);
      return;
    }
    // runc gets the engine's command line pointed at runcvm's private bundle; the caller's bundle is never written
    expect(rec.records.filter((l) => l.startsWith('run '))).toEqual([fx.argv ? expect.any(String) : 'run runc --root /run/runc create --bundle /run/runcvm/c1/bundle --pid-file /run/c1.pid c1']);
    expect(rec.records.filter((l) => /^(write|mkdir|remove|chown|launcher root|copy|chmod|open debug log|writable disk) \S*\/bundles\/c1/.test(l))).toEqual([]);
  });

  it.each(fixtures)('%s: when runc refuses the bundle, create undoes what it made, as planned', async (_name, fx) => {
    const p = plan(fx);
    const rec = recordingEffects(1);
    expect(await applyCreate(p, rec, 'c1')).toBe(1);
    if (p.actions.some((a) => a.op === 'runc' && a.foreground)) {
      // a foreground run: runc has deleted the container either way; its clean-up runs instead of the undo
      expect(rec.records).toEqual(actionLines(p));
      return;
    }
    const undo = p.actions.flatMap((a) => (a.op === 'open-log' && a.removeOnFailure) || (a.op === 'mkdir' && a.removeOnFailure) ? [`remove ${a.path}`] : []).reverse();
    // runc's record is relabelled only when there is a container
    const upToRunc = actionLines(p).slice(0, p.actions.findIndex((a) => a.op === 'runc') + 1);
    expect(rec.records).toEqual([...upToRunc, ...undo]);
  });
});

describe('what each fixture\'s plan decides', () => {
  const byName = Object.fromEntries(fixtures) as Record<string, Fixture>;
  const vm = (name: string): VmCreatePlan => {
    const p = plan(byName[name]!);
    if (p.kind !== 'vm') throw new Error(`${name} is not a VM plan`);
    return p;
  };

  it('docker: the cached base disk is reused, docker\'s -init layer and the engine files go into the writable layer; no secret is printed', () => {
    const p = vm('docker');
    const lines = actionLines(p);
    expect(lines[0]).toBe('open debug log /var/log/runcvm/runcvm-c1.debug (0600, no symlink followed), kept on failure');
    expect(lines).toContain('base disk /var/lib/runcvm/disks/1f2e3d4c5b6a79881f2e3d4c5b6a7988.ext4: reuse the cached disk (12 MiB of content, 480 files), marked as just used');
    expect(lines).toContain('write /run/runcvm/c1/base-disk 0644: the cached base disk this container uses (never evicted while it exists), 59 bytes');
    // the launcher's root: runcvm's mount points, the engine's files as files, none of the image
    expect(lines).toContain('launcher root /run/runcvm/c1/bundle/root 0755: mount points /.runcvm/guest/ /.runcvm/kernel/ /.runcvm/state/ /cache/ /dev/ /proc/ /run/ /sys/ /tmp/ /var/run/virtiofsd/ /.runcvm/debug.log /.runcvm/disks/base.ext4 /etc/hosts /etc/resolv.conf');
    expect(lines.at(-2)).toBe('run runc --root /run/runc create --bundle /run/runcvm/c1/bundle --pid-file /run/c1.pid c1');
    expect(p.config.root).toEqual({ path: '/run/runcvm/c1/bundle/root', readonly: false });
    // the workload's rlimits go to the guest, not to the launcher
    expect(p.config.process?.rlimits).toBeUndefined();
    expect(p.launchSpec.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1048576 }]);
    expect(lines).toContain('stage /var/lib/docker/overlay2/abc-init/diff/. into /run/runcvm/c1/staging/upper');
    expect(lines).toContain('stage /etc/hosts 0644 into /run/runcvm/c1/staging/upper: copy of /var/lib/docker/containers/abc/hosts');
    expect(lines).toContain('write /run/runcvm/c1/keep-log 0644: marker: delete keeps the debug log, 0 bytes');
    expect(lines).toContain('writable disk /run/runcvm/c1/upper.ext4 from /run/runcvm/c1/staging: sparse ext4 of at least 1.0 GiB (RUNCVM_ROOTFS_SIZE), never smaller than the image content + 10 % + 64 MiB');
    expect(p.launchSpec.vm).toMatchObject({ hypervisor: 'qemu', vcpus: 2, memoryMiB: 512 });
    expect(p.log.map((l) => l.msg)).toContain('ignoring unknown or unavailable capabilities');
    expect(renderCreatePlan(p)).not.toContain('s3cr3t-value');
  });

  it('ctr: no cache yet, so the base disk is built; no keep-log marker; the network is handed to the VM', () => {
    const p = vm('ctr');
    const lines = actionLines(p);
    expect(lines.find((l) => l.startsWith('base disk'))).toMatch(/: build it from the overlay layers \(1 shared, 0 per-container\)/);
    expect(lines.some((l) => l.includes('keep-log'))).toBe(false);
    expect(p.launchSpec.network.mode).toBe('auto');
  });

  it('kubernetes: the pod is named in the log, volumes are relocated and shared, the disk image lives on the PVC', () => {
    const p = vm('kubernetes');
    expect(p.log.map((l) => l.msg)).toContain('kubernetes: pod db/mysql-0 container mysql (pod uid 5d3f0b0e-1111-2222-3333-444455556666, sandbox 0123456789abcdef)');
    expect(p.log.map((l) => l.msg)).toContain('[RunCVM-Runtime] QEMU: PVC Redirect: /var/lib/mysql -> /.runcvm/vols/v2-pv-data');
    expect(p.launchSpec.volumes?.map((v) => (v.kind === 'disk' ? `disk ${v.containerPath}` : `${v.destination}${v.file ? ` (${v.file})` : ''}`))).toEqual([
      '/tmp/scratch', '/etc/mysql/my.cnf (my.cnf)', '/var/lib/mysql', 'disk /.runcvm/vols/v2-pv-data/disk.img',
    ]);
    // the workload's seccomp profile is not the launcher's: virtiofsd, QEMU and Node run under runcvm's own
    expect(p.config.linux?.seccomp).toEqual(LAUNCHER_SECCOMP);
    // a file volume's mount point is a file in the launcher's root
    expect(actionLines(p).find((l) => l.startsWith('launcher root'))).toContain(' /.runcvm/vols/v1/my.cnf');
    expect(p.config.mounts?.some((m) => m.destination === '/.runcvm/vols/v2-pv-data')).toBe(true);
    expect(renderCreatePlan(p)).not.toContain('hunter2');
  });

  it('host network: the node\'s namespace is never bridged; OFF keeps no log; a read-only root', () => {
    const p = vm('host-network');
    expect(p.launchSpec.network.mode).toBe('none');
    expect(p.debugLog).toBeUndefined();
    expect(actionLines(p).some((l) => l.startsWith('open debug log'))).toBe(false);
    expect(p.launchSpec.root).toEqual({ readonly: true, readonlyRun: true });
  });

  it('custom kernel: the approved file is bound read-only, nosuid, nodev and booted', () => {
    const p = vm('custom-kernel');
    expect(p.launchSpec.kernel).toMatchObject({ path: '/.runcvm/kernel-custom/vmlinux', append: 'loglevel=7' });
    expect(p.config.mounts?.find((m) => m.destination === '/.runcvm/kernel-custom/vmlinux')).toEqual({ destination: '/.runcvm/kernel-custom/vmlinux', type: 'bind', source: '/srv/kernels/vmlinux-6.12', options: ['bind', 'ro', 'nosuid', 'nodev'] });
    expect(p.launchSpec.break).toBe('prerun');
  });

  it('firecracker: chosen by name, its node binary bound read-only, the volume over NFS', () => {
    const p = vm('firecracker');
    expect(p.hypervisor).toEqual({ name: 'firecracker', reason: 'RUNCVM_HYPERVISOR=firecracker' });
    expect(p.config.mounts?.find((m) => m.destination === '/.runcvm/firecracker')).toMatchObject({ source: '/usr/local/bin/firecracker', options: ['rbind', 'ro', 'nosuid', 'nodev'] });
    expect(p.launchSpec.volumes?.[0]).toMatchObject({ destination: '/data', transport: 'nfs', flags: { readOnly: true } });
  });

  it('a debug log path someone took: a warning, no log, the marker that keeps delete away from it', () => {
    const p = vm('log-taken');
    const lines = actionLines(p);
    expect(lines[0]).toBe('warn on stderr: runcvm: warning: no debug log for container c1: /var/log/runcvm/runcvm-c1.debug is a symbolic link; the container runs without it (fix: remove /var/log/runcvm/runcvm-c1.debug, or point RUNCVM_LOG_DIR at a folder only the runtime writes)');
    expect(p.launchSpec.log.file).toBeUndefined();
    expect(p.config.mounts?.some((m) => m.destination === '/.runcvm/debug.log')).toBe(false);
    expect(lines).toContain('write /run/runcvm/c1/keep-log 0644: marker: delete keeps the debug log, 0 bytes');
  });

  it('restricted-userns: the node\'s RUNCVM_GUEST_PRIVILEGES=userns lets the workload use user namespaces inside the VM; the user stays 1000; printed', () => {
    const p = vm('restricted-userns');
    expect(p.guestPrivileges).toBe('userns');
    expect(p.launchSpec.process).toMatchObject({ user: { uid: 1000, gid: 1000 }, noNewPrivileges: false, capabilities: { bounding: ['CAP_SETUID', 'CAP_SETGID'], effective: [], permitted: [] } });
    // on the node the launcher keeps the container's restrictions: config.json's process is the pod's
    expect(p.config.process).toMatchObject({ noNewPrivileges: true });
    expect(JSON.stringify(p.config.process?.capabilities ?? {})).not.toMatch(/CAP_SETUID|CAP_SETGID/);
    expect(p.config.linux?.seccomp).toBeDefined();
    // in the guest, no profile: containerd's default refuses unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN
    expect(p.launchSpec.seccomp).toBeUndefined();
    expect(renderCreatePlan(p)).toContain('# guest privileges: userns (inside the VM: CAP_SETUID and CAP_SETGID in the bounding set');
    expect(p.log.map((l) => l.msg).find((m) => m.startsWith('guest privileges:'))).toMatch(/^guest privileges: userns/);
    // the same container on a node that did not choose userns: the container's own RUNCVM_GUEST_PRIVILEGES is not read
    const fx = byName['restricted-userns']!;
    const podOnly = planCreate(inputFor({ ...fx, nodeEnv: {}, config: { ...fx.config, process: { ...fx.config.process!, env: [...fx.config.process!.env!.filter((e) => !e.startsWith('RUNCVM_GUEST')), 'RUNCVM_GUEST_PRIVILEGES=userns'] } } }), facts()) as VmCreatePlan;
    expect(podOnly.guestPrivileges).toBe('pod');
    expect(podOnly.launchSpec.process).toMatchObject({ noNewPrivileges: true, capabilities: { bounding: [] } });
    expect(podOnly.launchSpec.seccomp).toBeDefined();
  });

  it('runc run of a runc-spec bundle: a root of its own, the fixed launcher capabilities, no seccomp or rlimits on the launcher, the user namespace\'s root owns what the launcher writes, clean-up after the foreground run', () => {
    const p = vm('runc-run');
    const lines = actionLines(p);
    // the workload's read-only root is the guest's business; the launcher's root stays writable (virtiofsd's lock)
    expect(p.config.root).toEqual({ path: '/run/runcvm/c1/bundle/root', readonly: false });
    expect(p.launchSpec.root).toEqual({ readonly: true, readonlyRun: true });
    expect(p.config.process?.capabilities?.bounding).toContain('CAP_SYS_CHROOT');
    expect(p.config.process?.capabilities?.ambient).toEqual([]);
    expect(p.launchSpec.process.capabilities?.bounding).toEqual(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
    expect(p.config.linux?.seccomp).toEqual(LAUNCHER_SECCOMP);
    expect(p.config.process?.rlimits).toBeUndefined();
    expect(p.launchSpec.process.rlimits.map((r) => r.type)).toEqual(['RLIMIT_NOFILE', 'RLIMIT_AS']);
    // the relative bind source is the caller's bundle's
    expect(p.launchSpec.volumes?.[0]).toMatchObject({ destination: '/data', hostSource: '/bundles/c1/shared' });
    expect(p.config.mounts?.find((m) => m.destination === '/.runcvm/vols/v0')?.source).toBe('/bundles/c1/shared');
    expect(p.config.annotations?.['io.runcvm.bundle']).toBe('/bundles/c1');
    // user namespace: the log and the state folder (the launcher's root in it) belong to the mapped root
    expect(lines[0]).toBe('open debug log /var/log/runcvm/runcvm-c1.debug (0600, no symlink followed, owned by 100000:100000)');
    expect(lines).toContain("chown -R 100000:100000 /run/runcvm/c1: the user namespace's root: the launcher runs as it");
    // runc gets the private bundle (the relative console socket still names the caller's bundle's), then, as runc
    // deleted the container when it ended, the state folder and the log go
    expect(lines.slice(-3)).toEqual([
      'run runc --root /run/runc run --bundle /run/runcvm/c1/bundle --console-socket /bundles/c1/tty.sock c1 (foreground: signals passed on)',
      'remove /run/runcvm/c1',
      'remove /var/log/runcvm/runcvm-c1.debug',
    ]);
  });

  it('--preserve-fds on create/run: a warning that the descriptors reach only the launcher (podman\'s socket activation still runs)', () => {
    const fx = byName['docker']!;
    const p = planCreate({ ...inputFor(fx), runc: { ...inputFor(fx).runc, passFds: 2 } }, facts(fx.facts));
    expect(actionLines(p)).toContain("warn on stderr: runcvm: warning: --preserve-fds 2: host file descriptors 3-4 reach only runcvm's launcher; the workload runs inside a microVM and cannot receive them (pass the data through stdin or a volume, or run this container with runc)");
    expect(actionLines(plan(fx)).some((l) => l.includes('--preserve-fds'))).toBe(false);
  });

  it('runc\'s record gets the caller\'s bundle back after create and run -d (runc state, list, hooks), never after a foreground run', () => {
    const p = vm('docker');
    expect(p.actions.at(-1)).toEqual({ op: 'runc-bundle-label', stateFile: '/run/runc/c1/state.json', from: '/run/runcvm/c1/bundle', to: '/bundles/c1' });
    expect(actionLines(p).at(-2)).toMatch(/^run runc --root \/run\/runc create --bundle \/run\/runcvm\/c1\/bundle /);
    expect(vm('runc-run').actions.some((a) => a.op === 'runc-bundle-label')).toBe(false);
  });

  it('seccomp: the workload\'s profile is applied once, in the guest (launch.json), never on the launcher; RUNCVM_GUEST_SECCOMP=off applies it nowhere and says so', () => {
    const fx = byName['runc-run']!;
    const on = vm('runc-run');
    expect(on.config.linux?.seccomp).toEqual(LAUNCHER_SECCOMP);
    expect(on.launchSpec.seccomp).toMatchObject({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] });
    expect(renderGuestConfig(on.launchSpec).split('\n').filter((l) => l.startsWith('seccomp='))).toHaveLength(1);
    const off = plan({ ...fx, nodeEnv: { ...fx.nodeEnv, RUNCVM_GUEST_SECCOMP: 'off' } });
    if (off.kind !== 'vm') throw new Error('not a VM plan');
    expect(off.config.linux?.seccomp).toEqual(LAUNCHER_SECCOMP);
    expect(off.launchSpec.seccomp).toBeUndefined();
    expect(renderGuestConfig(off.launchSpec)).not.toMatch(/^seccomp=/m);
    expect(off.log.map((l) => l.msg)).toContain('the workload runs without its seccomp profile in the guest: the node set RUNCVM_GUEST_SECCOMP=off (the VM is the boundary)');
  });

  it('sandbox: plain runc, even with a setting that would be refused for a VM', () => {
    const p = plan(byName.sandbox!);
    expect(p.kind).toBe('pass-through');
    expect(actionLines(p)).toEqual(['run runc --root /run/runc create --bundle /bundles/c1 --pid-file /run/c1.pid c1']);
  });
});

describe('every refusal comes from the plan, before any action', () => {
  const base = fixtures.find(([n]) => n === 'ctr')![1];
  const refuse = (change: (fx: Fixture) => Fixture): unknown => {
    try {
      plan(change(structuredClone(base)));
    } catch (err) {
      return err;
    }
    throw new Error('expected a refusal');
  };
  it('runc\'s own words for a missing program', () => {
    const err = refuse((fx) => ({ ...fx, facts: { lookPath: { ok: false, message: 'exec: "nope": executable file not found in $PATH' } } }));
    expect(err).toBeInstanceOf(RuncStyleError);
  });
  it('a missing kernel asset, a missing guest package file', () => {
    const noKernel = refuse((fx) => ({ ...fx, facts: { assets: { ...facts().assets, present: facts().assets.present.filter((f) => f !== 'kernel/vmlinux') } } }));
    expect(isToolError(noKernel) && noKernel.code).toBe('NO_KERNEL');
    const noQemu = refuse((fx) => ({ ...fx, facts: { assets: { ...facts().assets, present: facts().assets.present.filter((f) => f !== 'guest/bin/qemu-system-x86_64') } } }));
    expect(isToolError(noQemu) && noQemu.message).toBe(`runcvm guest package not found or incomplete: ${G} (missing bin/qemu-system-x86_64)`);
  });
  it('a node value of RUNCVM_GUEST_PRIVILEGES that is not pod or userns', () => {
    const err = refuse((fx) => ({ ...fx, nodeEnv: { RUNCVM_GUEST_PRIVILEGES: 'root' } }));
    expect(err).toMatchObject({ setting: 'RUNCVM_GUEST_PRIVILEGES', value: 'root' });
  });

  it('a memory limit too small to boot: the minimum and the fix, before anything is made (issue 16 cause 7)', () => {
    const err = refuse((fx) => ({ ...fx, config: { ...fx.config, linux: { ...fx.config.linux, resources: { memory: { limit: 32 * 1024 * 1024 } } } } }));
    expect(isToolError(err) && err.code).toBe('MEMORY_TOO_SMALL');
    expect(isToolError(err) && err.render()).toMatch(/^error: memory limit of 32 MiB is below the 128 MiB a runcvm microVM needs to boot\n[\s\S]*fix: give the container at least 128 MiB \(`docker run -m 128m`, `resources.limits.memory: 128Mi`\)/);
  });
  it('firecracker asked for on a node without it', () => {
    const err = refuse((fx) => ({ ...fx, config: { ...fx.config, process: { ...fx.config.process!, env: ['RUNCVM_HYPERVISOR=firecracker'] } } }));
    expect(isToolError(err) && err.code).toBe('FIRECRACKER_NOT_INSTALLED');
  });
});
