import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { projectPath } from '../../../../src/core/paths.js';
import type { Check, ContainerFacts, FileFact, NodeFacts } from '../../../../src/runcvm/doctor/facts.js';
import {
  cacheDiskCheck, containerChecks, containerdConfigCheck, debugLogsCheck, dockerConfigCheck, exitCodeFor, guestKernelCheck,
  guestPackageCheck, k3sTemplateCheck, kvmDeviceCheck, kvmUsableCheck, nodeChecks, qemuCheck, renderText, runcCheck, stateDiskCheck, tunCheck,
  userNamespacesCheck,
} from '../../../../src/runcvm/doctor/verdicts.js';

const BIN = '/opt/runcvm/bin/runcvm-runtime';
const fx = (n: string) => readFileSync(projectPath('test', 'fixtures', 'runcvm', 'install', n), 'utf8');
const file = (path: string, more: Partial<FileFact> = {}): FileFact => ({ path, exists: true, isFile: true, executable: true, readWrite: true, mode: 0o755, uid: 0, gid: 0, ...more });
const missing = (path: string): FileFact => ({ path, exists: false });

const GOOD_CONTAINERD = `version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]\n  runtime_type = "io.containerd.runc.v2"\n  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm.options]\n    BinaryName = "${BIN}"\n`;

function node(over: Partial<NodeFacts> = {}): NodeFacts {
  return {
    uid: 0,
    kvm: file('/dev/kvm', { isCharDevice: true, isFile: false, executable: false, rdevMajor: 10, rdevMinor: 232, mode: 0o660 }),
    cpuFlags: ['vmx'],
    kvmModules: ['kvm', 'kvm_intel'],
    tun: file('/dev/net/tun', { isCharDevice: true, isFile: false }),
    runc: { path: '/usr/sbin/runc', version: 'runc version 1.1.5\ncommit: x\nspec: 1.0.2-dev' },
    qemu: { path: '/usr/bin/qemu-system-x86_64' },
    assetsDir: '/a',
    kernel: file('/a/kernel/vmlinux'),
    initramfs: file('/a/kernel/initramfs.img'),
    guestLd: file('/a/guest/lib/ld'),
    guestQemu: file('/a/guest/bin/qemu-system-x86_64'),
    containerd: { path: '/etc/containerd/config.toml', explicit: false, text: GOOD_CONTAINERD },
    containerdVersion: 'containerd github.com/containerd/containerd 1.6.20~ds1 x',
    k3sTemplate: { path: '/k3s.tmpl', explicit: false },
    docker: { path: '/etc/docker/daemon.json', explicit: false },
    binaries: { [BIN]: file(BIN) },
    cache: { path: '/var/lib/runcvm', probedPath: '/var/lib/runcvm', freeBytes: 50 * 1024 ** 3 },
    state: { path: '/run/runcvm', probedPath: '/run', freeBytes: 50 * 1024 ** 3, tmpfs: false },
    debugLogs: [{ path: '/tmp/runcvm-abc.debug', uid: 0, mode: 0o600 }],
    sharedLog: missing('/tmp/runcvm-runtime.log'),
    maxUserNamespaces: 15000,
    ...over,
  };
}

const byId = (checks: Check[], id: string) => checks.find((c) => c.id === id)!;

describe('node verdicts', () => {
  it('a healthy node passes every check and exits 0', () => {
    const checks = nodeChecks(node());
    expect(checks.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(checks.map((c) => c.id)).toEqual([
      'kvm-device', 'kvm-usable', 'tun-device', 'runc', 'qemu', 'guest-kernel', 'guest-package', 'containerd-config', 'k3s-template',
      'docker-config', 'runtime-registered', 'cache-disk', 'state-disk', 'debug-logs', 'user-namespaces',
    ]);
    expect(exitCodeFor(checks)).toBe(0);
  });

  it('guide 10: no /dev/kvm names Kvm(Error(19)), says TCG plainly and gives the BIOS/nested fix', () => {
    const c = kvmDeviceCheck(node({ kvm: missing('/dev/kvm') }));
    expect(c.status).toBe('warn');
    expect(c.cause).toContain('Kvm(Kvm(Error(19)))');
    expect(c.cause).toContain('QEMU TCG');
    expect(c.fix).toContain('ls -l /dev/kvm');
    expect(c.fix).toContain('nested virtualization');
    expect(kvmUsableCheck(node({ kvm: missing('/dev/kvm') })).status).toBe('warn');
  });

  it('guide 10: /dev/kvm that is not 10:232 or not read-write fails', () => {
    expect(kvmDeviceCheck(node({ kvm: file('/dev/kvm', { isCharDevice: true, rdevMajor: 1, rdevMinor: 3 }) })).status).toBe('fail');
    const perm = kvmDeviceCheck(node({ kvm: file('/dev/kvm', { isCharDevice: true, rdevMajor: 10, rdevMinor: 232, readWrite: false, mode: 0o600 }) }));
    expect(perm).toMatchObject({ status: 'fail' });
    expect(perm.cause).toContain('read/write access');
  });

  it('KVM-PVM and missing vmx/svm mean TCG, said plainly', () => {
    const pvm = kvmUsableCheck(node({ kvmModules: ['kvm', 'kvm_pvm'], cpuFlags: ['hypervisor'] }));
    expect(pvm.status).toBe('warn');
    expect(pvm.cause).toContain('KVM-PVM');
    expect(pvm.cause).toContain('QEMU TCG');
    const noHw = kvmUsableCheck(node({ cpuFlags: ['hypervisor'], kvmModules: ['kvm'] }));
    expect(noHw.cause).toContain('neither vmx nor svm');
  });

  it('tun, runc, qemu, kernel and guest package', () => {
    expect(tunCheck(node({ tun: missing('/dev/net/tun') })).status).toBe('fail');
    expect(runcCheck(node({ runc: {} })).status).toBe('fail');
    expect(runcCheck(node({ runc: { path: '/r', version: 'runc version 1.0.0' } })).status).toBe('warn');
    expect(runcCheck(node()).cause).toContain('runc 1.1.5');
    expect(qemuCheck(node({ guestQemu: missing('/g'), qemu: {} })).status).toBe('fail');
    expect(qemuCheck(node({ guestQemu: missing('/g') })).status).toBe('warn');
    const k = guestKernelCheck(node({ kernel: missing('/a/kernel/vmlinux') }));
    expect(k).toMatchObject({ status: 'fail' });
    expect(k.cause).toContain('/a/kernel/vmlinux');
    const g = guestPackageCheck(node({ guestLd: missing('/a/guest/lib/ld') }));
    expect(g.cause).toContain('mount: not found');
    expect(g.fix).toContain('20-guest.sh');
  });

  it('guide 9: containerd config without the runcvm entry, wrong runtime_type, bad BinaryName, syntax error', () => {
    const none = containerdConfigCheck(node({ containerd: { path: '/c.toml', explicit: true, text: fx('containerd1.toml') } }));
    expect(none.status).toBe('fail');
    expect(none.cause).toContain('no runtime for "runcvm" is configured');
    expect(none.fix).toContain('runcvm install --containerd --config /c.toml');
    const wrongType = containerdConfigCheck(node({ containerd: { path: '/c.toml', explicit: true, text: fx('wrong-runtime-type.toml') } }));
    expect(wrongType.cause).toContain('runtime_type is "runcvm" instead of "io.containerd.runc.v2"');
    const notExec = containerdConfigCheck(node({ binaries: { [BIN]: file(BIN, { executable: false }) } }));
    expect(notExec.cause).toContain('is not executable');
    const syntax = containerdConfigCheck(node({ containerd: { path: '/c.toml', explicit: true, text: fx('invalid.toml') } }));
    expect(syntax.status).toBe('fail');
    expect(syntax.cause).toMatch(/^\/c\.toml:2:\d+: TOML syntax error/);
    expect(syntax.fix).toContain('fix line 2');
  });

  it('a config that names runcvm but not the default runtime runc fails: the CRI plugin would not load', () => {
    const text = GOOD_CONTAINERD.replace(/\[plugins[^\n]*runtimes\.runc\]\n[^\n]*\n/, '');
    const c = containerdConfigCheck(node({ containerd: { path: '/c.toml', explicit: true, text } }));
    expect(c.status).toBe('fail');
    expect(c.cause).toContain('no corresponding runtime configured in `containerd.runtimes` for `containerd` `default_runtime_name = "runc"`');
  });

  it('containerd 2.x config (version = 3) needs the cri.v1.runtime section', () => {
    const text = GOOD_CONTAINERD.replace('version = 2', 'version = 3');
    const c = containerdConfigCheck(node({ containerd: { path: '/c.toml', explicit: true, text } }));
    expect(c.status).toBe('fail');
    expect(c.cause).toContain('incorrect plugin path');
    expect(c.cause).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm]');
  });

  it('guide 9: k3s template without base, with the v2 section, with runtime_type = "runcvm"', () => {
    const text = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]\n  runtime_type = "runcvm"\n`;
    const c = k3sTemplateCheck(node({ k3sTemplate: { path: '/t.tmpl', explicit: true, text } }));
    expect(c.status).toBe('fail');
    expect(c.cause).toContain('{{ template "base" . }}');
    expect(c.cause).toContain('incorrect plugin path');
    expect(c.fix).toContain('sudo systemctl restart k3s');
    const wrongType = k3sTemplateCheck(node({ k3sTemplate: { path: '/t.tmpl', explicit: true, text: '{{ template "base" . }}\n' + text.replace('grpc.v1.cri', 'cri.v1.runtime') } }));
    expect(wrongType.cause).toContain('Incorrect runtime_type'.toLowerCase());
    const good = `{{ template "base" . }}\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm]\n  runtime_type = "io.containerd.runc.v2"\n  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm.options]\n    BinaryName = "${BIN}"\n`;
    expect(k3sTemplateCheck(node({ k3sTemplate: { path: '/t.tmpl', explicit: true, text: good } })).status).toBe('pass');
    const syntax = k3sTemplateCheck(node({ k3sTemplate: { path: '/t.tmpl', explicit: true, text: '{{ template "base" . }}\n[plugins.x\n' } }));
    expect(syntax.cause).toMatch(/\/t\.tmpl:2:\d+: TOML syntax error .*template syntax error/);
  });

  it('an explicit config path that does not exist fails; a default one that does not exist is skipped', () => {
    expect(k3sTemplateCheck(node({ k3sTemplate: { path: '/t', explicit: true } })).status).toBe('fail');
    expect(k3sTemplateCheck(node()).status).toBe('pass');
  });

  it('runtime-registered fails when no engine has runcvm', () => {
    const checks = nodeChecks(node({ containerd: { path: '/c', explicit: false, text: 'version = 2\n' } }));
    const r = byId(checks, 'runtime-registered');
    expect(r.status).toBe('fail');
    expect(r.fix).toContain('runcvm install --containerd (containerd 1.x here)');
    expect(exitCodeFor(checks)).toBe(1);
  });

  it('Docker daemon.json: missing entry, invalid JSON, good entry', () => {
    expect(dockerConfigCheck(node({ docker: { path: '/d.json', explicit: true, text: '{}' } })).cause).toContain('unknown or invalid runtime name: runcvm');
    expect(dockerConfigCheck(node({ docker: { path: '/d.json', explicit: true, text: '{' } })).status).toBe('fail');
    expect(dockerConfigCheck(node({ docker: { path: '/d.json', explicit: true, text: `{"runtimes":{"runcvm":{"path":"${BIN}"}}}` } })).status).toBe('pass');
  });

  it('disk, guide 8 logs, user namespaces', () => {
    expect(cacheDiskCheck(node({ cache: { path: '/c', probedPath: '/', freeBytes: 100 * 1024 ** 2 } })).status).toBe('fail');
    expect(cacheDiskCheck(node({ cache: { path: '/c', probedPath: '/', freeBytes: 3 * 1024 ** 3 } })).status).toBe('warn');
    const shared = debugLogsCheck(node({ sharedLog: file('/tmp/runcvm-runtime.log') }));
    expect(shared.status).toBe('warn');
    expect(shared.cause).toContain('Permission denied when writing to /tmp/runcvm-runtime.log');
    expect(shared.fix).toContain('sudo ls -l /tmp/runcvm*.debug');
    // with RUNCVM_LOG_DIR the fix names the folder the runtime really writes to
    const elsewhere = debugLogsCheck(node({ logDir: '/var/log/runcvm', sharedLog: file('/var/log/runcvm/runcvm-runtime.log') }));
    expect(elsewhere.title).toBe('per-container debug logs (/var/log/runcvm/runcvm-<id>.debug)');
    expect(elsewhere.fix).toContain('sudo rm -f /var/log/runcvm/runcvm-runtime.log');
    expect(elsewhere.fix).toContain('sudo ls -l /var/log/runcvm/runcvm*.debug');
    expect(elsewhere.fix).not.toContain('/tmp');
    expect(debugLogsCheck(node({ debugLogs: [{ path: '/tmp/runcvm-x.debug', uid: 0, mode: 0o666 }] })).cause).toContain('world-writable');
    const ns = userNamespacesCheck(node({ maxUserNamespaces: 0 }));
    expect(ns.status).toBe('fail');
    expect(ns.fix).toContain('user.max_user_namespaces=15000');
  });

  it('guide 6: the VMs\' writable disks in a small or RAM-backed state folder (corrupt root filesystem once full)', () => {
    const small = stateDiskCheck(node({ state: { path: '/run/runcvm', probedPath: '/run', freeBytes: 100 * 1024 ** 2, tmpfs: true } }));
    expect(small.status).toBe('fail');
    expect(small.cause).toContain('only 100 MiB free at /run/runcvm (measured at /run) (tmpfs)');
    expect(small.cause).toContain('upper.ext4');
    expect(small.fix).toContain('RUNCVM_STATE_DIR=');
    const ram = stateDiskCheck(node({ state: { path: '/run/runcvm', probedPath: '/run/runcvm', freeBytes: 2 * 1024 ** 3, tmpfs: true } }));
    expect(ram.status).toBe('warn');
    expect(ram.cause).toContain('/run/runcvm is on tmpfs (2.0 GiB free)');
    expect(ram.cause).toContain('node RAM');
    expect(stateDiskCheck(node({ state: { path: '/s', probedPath: '/s', freeBytes: 300 * 1024 ** 2, tmpfs: false } })).status).toBe('pass');
  });

  it('renders PASS/WARN/FAIL lines with cause and fix indented', () => {
    const text = renderText([kvmDeviceCheck(node({ kvm: missing('/dev/kvm') }))]);
    expect(text).toMatch(/^WARN {2}KVM device \/dev\/kvm \[kvm-device\]\n {6}\/dev\/kvm is missing.*\n {6}fix: ls -l \/dev\/kvm/);
  });
});

function inside(over: Partial<ContainerFacts> = {}): ContainerFacts {
  return {
    entrypoint: file('/.runcvm/entrypoint'),
    procMounted: true,
    procSelfExe: true,
    path: '/.runcvm/guest/bin:/usr/bin:/bin',
    guestBin: file('/.runcvm/guest/bin'),
    bridgeAddrs: [{ family: 'inet', local: '169.254.1.254', prefixlen: 32 }],
    bridgeMembers: ['eth0', 'tap-eth0'],
    podIp: '10.42.0.7',
    volumeIds: ['v1'],
    mounts: [['169.254.1.254:/.runcvm/vols/v1', '/data', 'nfs']],
    ...over,
  };
}

describe('container-side verdicts', () => {
  it('a healthy container passes', () => {
    expect(containerChecks(inside()).filter((c) => c.status !== 'pass')).toEqual([]);
  });

  it('guide 1: no /.runcvm/entrypoint → "[VM-START] No entrypoint found, sleeping"', () => {
    const c = byId(containerChecks(inside({ entrypoint: missing('/.runcvm/entrypoint') })), 'entrypoint');
    expect(c.status).toBe('fail');
    expect(c.cause).toContain('[VM-START] No entrypoint found, sleeping');
    expect(c.fix).toContain('RUNCVM_LOG_LEVEL=DEBUG');
    // the fix points at what runcvm really logs (the runtime's "entrypoint:" line), not the reference's runcvm-vm-start
    expect(c.fix).toContain('"entrypoint:" line of /tmp/runcvm-<id>.debug');
    expect(c.fix).not.toContain('runcvm-vm-start');
  });

  it('guide 1: an empty /.runcvm/entrypoint (image without ENTRYPOINT/CMD) fails with the same guest line', () => {
    const c = byId(containerChecks(inside({ entrypoint: file('/.runcvm/entrypoint', { size: 0 }) })), 'entrypoint');
    expect(c.status).toBe('fail');
    expect(c.cause).toContain('is empty');
    expect(c.cause).toContain('[VM-START] No entrypoint found, sleeping');
    expect(c.fix).toContain('command');
    expect(byId(containerChecks(inside({ entrypoint: file('/.runcvm/entrypoint', { size: 9 }) })), 'entrypoint').status).toBe('pass');
  });

  it('guide 6: /proc not mounted and guest bin not first in PATH', () => {
    expect(byId(containerChecks(inside({ procMounted: false })), 'proc').cause).toContain('stat /proc/self/exe: no such file or directory');
    const p = byId(containerChecks(inside({ path: '/usr/bin:/.runcvm/guest/bin' })), 'guest-path');
    expect(p.status).toBe('warn');
    expect(byId(containerChecks(inside({ guestBin: missing('/.runcvm/guest/bin') })), 'guest-path').cause).toContain('mount: not found');
  });

  it('guides 3 and 5: br-eth0 must have 169.254.1.254/32 and not the pod IP; eth0 and tap-eth0 are members', () => {
    const podIp = byId(containerChecks(inside({ bridgeAddrs: [{ family: 'inet', local: '169.254.1.254', prefixlen: 32 }, { family: 'inet', local: '10.42.0.7', prefixlen: 24 }] })), 'bridge-ip');
    expect(podIp.status).toBe('fail');
    expect(podIp.cause).toContain("the Pod's real IP");
    const noId = byId(containerChecks(inside({ bridgeAddrs: [] })), 'bridge-ip');
    expect(noId.cause).toContain('Failed to mount /data via NFS');
    expect(byId(containerChecks(inside({ bridgeAddrs: undefined })), 'bridge-ip').cause).toContain('Network unreachable');
    const members = byId(containerChecks(inside({ bridgeMembers: ['eth0'] })), 'bridge-members');
    expect(members).toMatchObject({ status: 'fail' });
    expect(members.cause).toContain('tap-eth0 is not a member of br-eth0');
  });

  it('guide 3: a redirected volume without its NFS mount from 169.254.1.254', () => {
    const c = byId(containerChecks(inside({ mounts: [] })), 'nfs-volumes');
    expect(c.status).toBe('warn');
    expect(c.cause).toContain('169.254.1.254:/.runcvm/vols/v1');
    expect(c.fix).toContain('ip route add 169.254.1.254 dev eth0');
  });
});
