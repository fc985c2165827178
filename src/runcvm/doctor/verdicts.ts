/**
 * Pure verdicts: facts in, checks out. Each check's cause quotes the symptom the user sees (from
 * spec/runcvm-kubernetes-troubleshooting.md) when it fails, and its fix is the command that repairs it.
 */
import { join } from 'node:path';
import { formatSize } from '../../core/config.js';
import {
  CRI_PLUGIN_V3, K3S_BASE_LINE, RUNTIME_TYPE, criPluginFor, findRuntimeEntries, hasK3sBase, missingDefaultRuntime, parseTomlText,
  runtimeSection, stripGoTemplate, type RuntimeEntry,
} from '../install/runtime-config.js';
import type { Check, ConfigFileFact, ContainerFacts, NodeFacts, Status } from './facts.js';

export const IDENTITY_IP = '169.254.1.254';
export const BRIDGE = 'br-eth0';
export const KVM_MAJOR = 10;
export const KVM_MINOR = 232;
export const MIN_FREE_FAIL = 1024 ** 3;
export const MIN_FREE_WARN = 5 * 1024 ** 3;
const NO_RUNTIME = 'kubectl describe pod shows `Warning FailedCreatePodSandBox ... no runtime for "runcvm" is configured` and k3s logs `Unknown runtime handler "runcvm"`';

/** runcvm has no runcvm-vm-start: the runtime's create logs the file and what it holds (runtime/describe.ts). */
const ENTRYPOINT_LOG = 'set RUNCVM_LOG_LEVEL=DEBUG in the pod env (the log is then kept after the container ends) and read the "entrypoint:" line of /tmp/runcvm-<id>.debug on the node: the path the guest loads and how many arguments it holds';

const check = (id: string, title: string, status: Status, cause: string, fix = ''): Check => ({ id, title, status, cause, fix });

// ---------------------------------------------------------------- node: virtualization (guide 10)

export function kvmDeviceCheck(f: NodeFacts): Check {
  const k = f.kvm;
  // the device the runtime uses: RUNCVM_KVM_DEVICE (node setting), default /dev/kvm
  const dev = k.path;
  const title = `KVM device ${dev}`;
  if (!k.exists) {
    return check('kvm-device', title, 'warn',
      `${dev} is missing: hardware virtualization (KVM) is not available or not enabled on this node. Firecracker fails with "Error: RunWithoutApiError(BuildMicroVMFromJson(StartMicroVM(Kvm(Kvm(Error(19))))))"; runcvm falls back to QEMU TCG (software emulation, many times slower).`,
      `ls -l ${dev}; enable virtualization (VT-x/AMD-V) in the BIOS/firmware, or nested virtualization in the hypervisor settings if this node is a VM (Colima, UTM, cloud instance), then \`modprobe kvm_intel\` or \`modprobe kvm_amd\``);
  }
  if (!k.isCharDevice || k.rdevMajor !== KVM_MAJOR || k.rdevMinor !== KVM_MINOR) {
    return check('kvm-device', title, 'fail',
      `${dev} exists but is not the KVM device (expected character device ${KVM_MAJOR}:${KVM_MINOR}, found ${k.isCharDevice ? `${k.rdevMajor}:${k.rdevMinor}` : 'not a character device'})`,
      `sudo rm ${dev} && sudo mknod -m 660 ${dev} c ${KVM_MAJOR} ${KVM_MINOR} && sudo chgrp kvm ${dev}`);
  }
  if (!k.readWrite) {
    return check('kvm-device', title, f.uid === 0 ? 'fail' : 'warn',
      `${dev} (mode ${modeText(k.mode)}, uid ${k.uid}, gid ${k.gid}) cannot be opened read-write by uid ${f.uid}; the runtime (run by containerd/k3s) needs read/write access`,
      `sudo chmod 660 ${dev} && sudo chgrp kvm ${dev}; run containerd/k3s as root or add its user to the kvm group`);
  }
  return check('kvm-device', title, 'pass', `${dev} is a character device (${KVM_MAJOR}:${KVM_MINOR}, mode ${modeText(k.mode)}) this user can open`);
}

export function kvmUsableCheck(f: NodeFacts): Check {
  const title = 'KVM usable by a stock guest kernel';
  const dev = f.kvm.path;
  const tcg = 'microVMs run under QEMU TCG (software emulation): they work, but boot and run many times slower, and RUNCVM_HYPERVISOR=firecracker cannot run at all';
  if (!f.kvm.exists) return check('kvm-usable', title, 'warn', `no ${dev}, so ${tcg}`, 'see the kvm-device check');
  if (f.kvmModules.includes('kvm_pvm')) {
    return check('kvm-usable', title, 'warn',
      `${dev} is KVM-PVM (module kvm_pvm: this node is itself a guest without nested virtualization); a stock kernel hangs under -enable-kvm and "-cpu host" aborts with "failed to set MSR 0x10a". runcvm does not use it: ${tcg}`,
      'enable nested virtualization for this node (cloud: an instance type/flag with nested virtualization; local: the hypervisor setting), so that kvm_intel or kvm_amd loads instead of kvm_pvm');
  }
  const hw = f.cpuFlags.includes('vmx') || f.cpuFlags.includes('svm');
  if (!hw) {
    return check('kvm-usable', title, 'warn',
      `${dev} exists but the CPU flags show neither vmx nor svm${f.cpuFlags.includes('hypervisor') ? ' (this node is a VM without nested virtualization)' : ''}; KVM may refuse to create VMs, and ${tcg}`,
      'enable VT-x/AMD-V (nested virtualization if this node is a VM) and check `grep -cE "vmx|svm" /proc/cpuinfo`');
  }
  return check('kvm-usable', title, 'pass', `CPU has ${f.cpuFlags.includes('vmx') ? 'vmx (Intel VT-x)' : 'svm (AMD-V)'}; modules: ${f.kvmModules.join(', ') || 'built in'}`);
}

export function tunCheck(f: NodeFacts): Check {
  const t = f.tun;
  if (!t.exists || !t.isCharDevice) {
    return check('tun-device', 'TUN device /dev/net/tun', 'fail',
      '/dev/net/tun is missing: the runtime cannot create tap-eth0, so the VM has no network ("No ethernet interfaces found" in the guest)',
      'sudo modprobe tun (or `mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 666 /dev/net/tun`)');
  }
  return check('tun-device', 'TUN device /dev/net/tun', 'pass', '/dev/net/tun is a character device');
}

// ---------------------------------------------------------------- node: binaries and assets

export function runcCheck(f: NodeFacts): Check {
  const title = 'runc (runs the container around the VM)';
  if (!f.runc.path) {
    return check('runc', title, 'fail', 'runc is not in PATH: bin/runcvm-runtime hands every bundle to runc, so every container fails to start', 'sudo apt-get install runc (1.1 or newer)');
  }
  const m = /runc version (\d+)\.(\d+)(\.\d+)?/.exec(f.runc.version ?? '');
  if (!m) return check('runc', title, 'warn', `${f.runc.path} did not report its version (${(f.runc.version ?? '').trim() || 'no output'})`, `${f.runc.path} --version`);
  const ok = Number(m[1]) > 1 || (Number(m[1]) === 1 && Number(m[2]) >= 1);
  return ok
    ? check('runc', title, 'pass', `${f.runc.path}: runc ${m[1]}.${m[2]}${m[3] ?? ''}`)
    : check('runc', title, 'warn', `${f.runc.path} is runc ${m[1]}.${m[2]}; runcvm is tested with 1.1`, 'install runc 1.1 or newer');
}

export function qemuCheck(f: NodeFacts): Check {
  const title = 'QEMU (qemu-system-x86_64)';
  if (f.guestQemu.exists) {
    return check('qemu', title, 'pass', `the guest package brings its own ${f.guestQemu.path}${f.qemu.path ? `; host has ${f.qemu.path}` : ''}`);
  }
  if (f.qemu.path) {
    return check('qemu', title, 'warn', `${f.qemu.path} is on the host, but the guest package has no bin/qemu-system-x86_64 (the launcher runs inside the container and cannot use host binaries)`, 'bash scripts/assets/20-guest.sh');
  }
  return check('qemu', title, 'fail', 'no qemu-system-x86_64 on the host or in the guest package: no VM can start', 'sudo apt-get install qemu-system-x86 && bash scripts/assets/20-guest.sh');
}

export function guestKernelCheck(f: NodeFacts): Check {
  const missing = [f.kernel, f.initramfs].filter((x) => !x.exists).map((x) => x.path);
  return missing.length === 0
    ? check('guest-kernel', 'guest kernel assets', 'pass', `${f.kernel.path} and ${f.initramfs.path} are present`)
    : check('guest-kernel', 'guest kernel assets', 'fail', `missing ${missing.join(', ')}: the VM has no kernel to boot (the pod goes into CrashLoopBackOff)`, `bash scripts/assets/10-kernel.sh (or set RUNCVM_ASSETS to the folder holding kernel/vmlinux and kernel/initramfs.img; now ${f.assetsDir})`);
}

export function guestPackageCheck(f: NodeFacts): Check {
  const missing = [f.guestLd, f.guestQemu].filter((x) => !x.exists).map((x) => x.path);
  return missing.length === 0
    ? check('guest-package', 'guest package (/.runcvm/guest)', 'pass', `${f.guestLd.path} and ${f.guestQemu.path} are present`)
    : check('guest-package', 'guest package (/.runcvm/guest)', 'fail',
      `missing ${missing.join(', ')}: guest tools cannot run in the container ("mount: not found", "socat: relocation error", "required file not found")`,
      'bash scripts/assets/20-guest.sh');
}

// ---------------------------------------------------------------- node: engine registration (guide 9)

function entryProblems(entry: RuntimeEntry, binaries: NodeFacts['binaries']): { status: Status; cause: string; fix: string } | undefined {
  if (entry.runtimeType !== RUNTIME_TYPE) {
    return { status: 'fail', cause: `runtime_type is ${JSON.stringify(entry.runtimeType ?? null)} instead of "${RUNTIME_TYPE}" (incorrect runtime_type): ${NO_RUNTIME}`, fix: `set runtime_type = "${RUNTIME_TYPE}" (runcvm plugs in through the runc shim and options.BinaryName)` };
  }
  if (typeof entry.binaryName !== 'string' || entry.binaryName === '') {
    return { status: 'fail', cause: 'options.BinaryName is not set, so containerd would run plain runc: pods start as ordinary containers, not VMs', fix: 'runcvm install (it writes BinaryName = the absolute path of bin/runcvm-runtime)' };
  }
  const bin = binaries[entry.binaryName];
  if (!bin?.exists || !bin.executable) {
    return { status: 'fail', cause: `options.BinaryName = ${entry.binaryName} ${bin?.exists ? 'is not executable' : 'does not exist'}: every runcvm pod fails at sandbox creation`, fix: `copy the runtime there (chmod 755), or run runcvm install again from the installed copy` };
  }
  return undefined;
}

function tomlEngineCheck(id: string, title: string, fact: ConfigFileFact, opts: { template: boolean; binaries: NodeFacts['binaries']; restart: string; installFlag: string; containerdVersion?: string }): Check {
  if (fact.text === undefined) {
    if (fact.readError) return check(id, title, 'fail', `cannot read ${fact.path}: ${fact.readError}`, `sudo runcvm doctor (reading ${fact.path} needs permission)`);
    return fact.explicit
      ? check(id, title, 'fail', `${fact.path} does not exist`, `runcvm install ${opts.installFlag} --config ${fact.path}`)
      : check(id, title, 'pass', `${fact.path} not present (not used on this node)`);
  }
  const problems: string[] = [];
  if (opts.template && !hasK3sBase(fact.text)) problems.push(`it does not contain ${K3S_BASE_LINE}, so k3s drops its own settings (CNI, sandbox image, snapshotter) and pods fail to start`);
  const parsed = parseTomlText(opts.template ? stripGoTemplate(fact.text) : fact.text);
  if (!parsed.ok) {
    return check(id, title, 'fail',
      `${fact.path}:${parsed.line}:${parsed.column}: TOML syntax error (${parsed.message})${opts.template ? ' (template syntax error)' : ''}; the engine does not start or ignores the file: ${NO_RUNTIME}${problems.length ? `; also ${problems.join('; ')}` : ''}`,
      `fix line ${parsed.line} of ${fact.path} (or move it away and run \`runcvm install ${opts.installFlag}\`), then ${opts.restart}`);
  }
  const version = typeof parsed.value.version === 'number' ? parsed.value.version : opts.template ? 3 : 1;
  const plugin = opts.template ? CRI_PLUGIN_V3 : criPluginFor(version);
  const section = runtimeSection(plugin);
  const entries = findRuntimeEntries(parsed.value);
  const entry = entries.find((e) => e.plugin === plugin);
  const lostDefault = opts.template ? undefined : missingDefaultRuntime(parsed.value, plugin);
  if (lostDefault !== undefined && entries.length > 0) {
    problems.push(`it configures runtimes but has no entry for the default runtime "${lostDefault}": containerd drops its built-in runtimes map, and the CRI plugin fails to load ("invalid plugin config: no corresponding runtime configured in \`containerd.runtimes\` for \`containerd\` \`default_runtime_name = "${lostDefault}"\`"), so no pod starts at all`);
  }
  if (!opts.template && version < 2) problems.push(`config version ${version} (no "version = 2" line): runtime sections are not read from ${section}`);
  if (!entry) {
    const wrong = entries.find((e) => e.plugin !== plugin);
    problems.push(wrong
      ? `the runcvm entry is under plugins."${wrong.plugin}", but this ${opts.template ? 'k3s template (containerd 2, config version 3)' : `config version ${version}`} reads ${section} (incorrect plugin path): ${NO_RUNTIME}`
      : `there is no ${section} entry: ${NO_RUNTIME}`);
  } else {
    const p = entryProblems(entry, opts.binaries);
    if (p) problems.push(p.cause);
  }
  if (problems.length === 0) {
    return check(id, title, 'pass', `${section} with runtime_type = "${RUNTIME_TYPE}" and BinaryName = ${String(entry!.binaryName)}`);
  }
  return check(id, title, 'fail', `${fact.path}: ${problems.join('; ')}`,
    `runcvm install ${opts.installFlag} --config ${fact.path} (writes ${opts.template ? `${K3S_BASE_LINE} then ` : ''}${section} with runtime_type = "${RUNTIME_TYPE}" and options.BinaryName), then ${opts.restart}`);
}

export function containerdConfigCheck(f: NodeFacts): Check {
  return tomlEngineCheck('containerd-config', 'containerd runtime entry for runcvm', f.containerd, { template: false, binaries: f.binaries, restart: 'sudo systemctl restart containerd', installFlag: '--containerd' });
}

export function k3sTemplateCheck(f: NodeFacts): Check {
  return tomlEngineCheck('k3s-template', 'k3s containerd template (config-v3.toml.tmpl)', f.k3sTemplate, { template: true, binaries: f.binaries, restart: 'sudo systemctl restart k3s (changes to the template require a full restart)', installFlag: '--k3s' });
}

export function dockerConfigCheck(f: NodeFacts): Check {
  const id = 'docker-config';
  const title = 'Docker daemon.json runtimes.runcvm';
  const d = f.docker;
  if (d.text === undefined) {
    if (d.readError) return check(id, title, 'fail', `cannot read ${d.path}: ${d.readError}`, 'run the doctor as root');
    return d.explicit ? check(id, title, 'fail', `${d.path} does not exist`, `runcvm install --docker --config ${d.path}`) : check(id, title, 'pass', `${d.path} not present (Docker not configured on this node)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(d.text);
  } catch (err) {
    return check(id, title, 'fail', `${d.path} is not valid JSON (${(err as Error).message}): dockerd refuses to start`, `fix the file, then runcvm install --docker --config ${d.path} && sudo systemctl restart docker`);
  }
  const path = (json as { runtimes?: { runcvm?: { path?: unknown } } })?.runtimes?.runcvm?.path;
  if (typeof path !== 'string') {
    return check(id, title, 'fail', `${d.path} has no runtimes.runcvm.path: \`docker run --runtime runcvm\` fails with "unknown or invalid runtime name: runcvm"`, `runcvm install --docker --config ${d.path} && sudo systemctl restart docker`);
  }
  const bin = f.binaries[path];
  if (!bin?.exists || !bin.executable) {
    return check(id, title, 'fail', `runtimes.runcvm.path = ${path} ${bin?.exists ? 'is not executable' : 'does not exist'}`, 'copy the runtime there (chmod 755) or run runcvm install --docker again');
  }
  return check(id, title, 'pass', `runtimes.runcvm.path = ${path}`);
}

/** The node must have runcvm registered with at least one engine. */
export function runtimeRegisteredCheck(engineChecks: readonly Check[], f: NodeFacts): Check {
  const present = engineChecks.filter((c) => !/not present|not used|not configured/.test(c.cause));
  const ok = present.filter((c) => c.status === 'pass');
  if (ok.length > 0) return check('runtime-registered', 'runcvm registered with a container engine', 'pass', `registered in: ${ok.map((c) => c.id).join(', ')}`);
  const major = f.containerdVersion ? /\bv?(\d+)\.\d+\.\d+/.exec(f.containerdVersion)?.[1] : undefined;
  return check('runtime-registered', 'runcvm registered with a container engine', 'fail',
    `no engine on this node has a working runcvm entry${present.length ? ` (${present.map((c) => c.id).join(', ')} failed above)` : ''}: ${NO_RUNTIME}`,
    `runcvm install --containerd${major ? ` (containerd ${major}.x here)` : ''} | --k3s | --docker, restart the engine, and \`kubectl get runtimeclass runcvm\` (deploy/kubernetes/runtimeclass.yaml)`);
}

// ---------------------------------------------------------------- node: disk, logs, user namespaces

export function cacheDiskCheck(f: NodeFacts): Check {
  const title = 'free disk for VM root filesystems';
  const free = f.cache.freeBytes;
  if (free === undefined) return check('cache-disk', title, 'warn', `could not measure free space at ${f.cache.probedPath}`, `df -h ${f.cache.probedPath}`);
  const where = f.cache.probedPath === f.cache.path ? f.cache.path : `${f.cache.path} (measured at ${f.cache.probedPath})`;
  if (free < MIN_FREE_FAIL) {
    return check('cache-disk', title, 'fail', `only ${formatSize(free)} free at ${where}: rootfs.ext4 images (never smaller than the image content, e.g. 2.4 GB for MySQL) cannot be created`, `free space on that filesystem, or point RUNCVM_CACHE_DIR at a larger one`);
  }
  if (free < MIN_FREE_WARN) return check('cache-disk', title, 'warn', `${formatSize(free)} free at ${where}: large images (rootfs.ext4 sized to their content) may not fit`, 'free space or use a larger filesystem');
  return check('cache-disk', title, 'pass', `${formatSize(free)} free at ${where}`);
}

/** RUNCVM_ROOTFS_SIZE's default: one VM's writable root filesystem may grow to this. */
export const MIN_STATE_FREE = 256 * 1024 ** 2;

export function stateDiskCheck(f: NodeFacts): Check {
  const title = 'free space for the VMs\' writable disks (upper.ext4)';
  const s = f.state;
  if (!s) return check('state-disk', title, 'warn', 'the state folder was not probed', 'df -h /run/runcvm');
  const where = s.probedPath === s.path ? s.path : `${s.path} (measured at ${s.probedPath})`;
  const fix = `free space there, or give the runtime RUNCVM_STATE_DIR=<a folder on a large disk-backed filesystem> in the engine's environment (containerd, k3s or dockerd)`;
  if (s.freeBytes === undefined) return check('state-disk', title, 'warn', `could not measure free space at ${s.probedPath}`, `df -h ${s.probedPath}`);
  if (s.freeBytes < MIN_STATE_FREE) {
    return check('state-disk', title, 'fail',
      `only ${formatSize(s.freeBytes)} free at ${where}${s.tmpfs ? ' (tmpfs)' : ''}: each VM's writable root filesystem (<id>/upper.ext4, sparse, at least RUNCVM_ROOTFS_SIZE, default 256M) is made here, so a VM that writes fills it and gets I/O errors on a corrupt root filesystem (the guide's boot loop after a successful mke2fs)`,
      fix);
  }
  if (s.tmpfs) {
    return check('state-disk', title, 'warn',
      `${where} is on tmpfs (${formatSize(s.freeBytes)} free): what VMs write to their root filesystems is held in node RAM, and a VM that writes more than that gets I/O errors`,
      fix);
  }
  return check('state-disk', title, 'pass', `${formatSize(s.freeBytes)} free at ${where}`);
}

export function debugLogsCheck(f: NodeFacts): Check {
  const title = `per-container debug logs (${join(f.logDir ?? '/tmp', 'runcvm-<id>.debug')})`;
  const problems: string[] = [];
  if (f.sharedLog?.exists) problems.push(`${f.sharedLog.path} exists: a log shared by containers that run as different users (pause, mysql) gives "Permission denied when writing to /tmp/runcvm-runtime.log"`);
  const open = f.debugLogs.filter((l) => (l.mode & 0o002) !== 0);
  if (open.length) problems.push(`${open.map((l) => l.path).join(', ')} ${open.length === 1 ? 'is' : 'are'} world-writable`);
  const readable = f.debugLogs.filter((l) => (l.mode & 0o004) !== 0);
  if (readable.length) problems.push(`${readable.length} debug log(s) are world-readable (they hold Kubernetes metadata and env): ${readable.slice(0, 3).map((l) => l.path).join(', ')}`);
  if (problems.length) {
    const dir = f.logDir ?? '/tmp';
    return check('debug-logs', title, 'warn', problems.join('; '),
      `sudo rm -f ${join(dir, 'runcvm-runtime.log')}; sudo chmod 600 ${join(dir, 'runcvm-*.debug')}; find a container's log with \`sudo ls -l ${join(dir, 'runcvm*.debug')}\` (\`grep -l 'pod NAMESPACE/NAME' ${join(dir, 'runcvm-*.debug')}\` finds a pod's)`);
  }
  return check('debug-logs', title, 'pass', `${f.debugLogs.length} per-container debug log(s), private to their owner; no shared log file`);
}

export function userNamespacesCheck(f: NodeFacts): Check {
  const title = 'user namespaces';
  if (f.maxUserNamespaces === 0) {
    return check('user-namespaces', title, 'fail', 'user.max_user_namespaces is 0: "failed to create user namespace: operation not permitted" (rootless builds and user-namespaced pods fail)',
      'sudo sysctl -w user.max_user_namespaces=15000 && echo "user.max_user_namespaces=15000" | sudo tee -a /etc/sysctl.conf');
  }
  if (f.unprivilegedUsernsClone === 0) {
    return check('user-namespaces', title, 'warn', 'kernel.unprivileged_userns_clone is 0: unprivileged processes cannot create user namespaces', 'sudo sysctl -w kernel.unprivileged_userns_clone=1');
  }
  return check('user-namespaces', title, 'pass', f.maxUserNamespaces === undefined ? 'no limit file (user namespaces assumed available)' : `user.max_user_namespaces = ${f.maxUserNamespaces}`);
}

export function nodeChecks(f: NodeFacts): Check[] {
  const engines = [containerdConfigCheck(f), k3sTemplateCheck(f), dockerConfigCheck(f)];
  return [
    kvmDeviceCheck(f), kvmUsableCheck(f), tunCheck(f), runcCheck(f), qemuCheck(f), guestKernelCheck(f), guestPackageCheck(f),
    ...engines, runtimeRegisteredCheck(engines, f), cacheDiskCheck(f), stateDiskCheck(f), debugLogsCheck(f), userNamespacesCheck(f),
  ];
}

// ---------------------------------------------------------------- container side (guides 1, 3, 5, 6)

export function containerChecks(c: ContainerFacts): Check[] {
  const out: Check[] = [];
  out.push(c.entrypoint.exists && c.entrypoint.size === 0
    ? check('entrypoint', 'command injection file /.runcvm/entrypoint', 'fail',
      '/.runcvm/entrypoint is empty (the image has no ENTRYPOINT/CMD and the pod gives no command): the guest logs "[VM-START] No entrypoint found, sleeping" and the pod is Running but nothing happens',
      `give the container a command (Pod \`command\`/\`args\`, or CMD in the image); ${ENTRYPOINT_LOG}`)
    : c.entrypoint.exists
    ? check('entrypoint', 'command injection file /.runcvm/entrypoint', 'pass', '/.runcvm/entrypoint is present')
    : check('entrypoint', 'command injection file /.runcvm/entrypoint', 'fail',
      '/.runcvm/entrypoint is missing: the guest logs "[VM-START] No entrypoint found, sleeping" and the pod is Running but nothing happens',
      `host and guest must both use /.runcvm/entrypoint; ${ENTRYPOINT_LOG}`));
  out.push(c.procMounted && c.procSelfExe
    ? check('proc', '/proc mounted', 'pass', '/proc is mounted and /proc/self/exe resolves')
    : check('proc', '/proc mounted', 'fail',
      '/proc is not mounted: tools such as MySQL and ps fail ("error: stat /proc/self/exe: no such file or directory")',
      'the init must `mount -t proc proc /proc` before the workload; verify with `mount | grep proc`'));
  const dirs = c.path.split(':').filter(Boolean);
  const at = dirs.indexOf('/.runcvm/guest/bin');
  if (!c.guestBin.exists) {
    out.push(check('guest-path', 'guest tools in /.runcvm/guest/bin', 'fail', '/.runcvm/guest/bin is missing: "mount: not found", no ip, no networking', 'check that the runtime mounts the guest package at /.runcvm/guest (runcvm doctor on the node: guest-package)'));
  } else if (at > 0) {
    out.push(check('guest-path', 'guest tools first in PATH', 'warn', `PATH=${c.path}: /.runcvm/guest/bin is entry ${at + 1}, so image tools of another libc may run instead ("socat: relocation error")`, 'put /.runcvm/guest/bin at the front of PATH in the guest init'));
  } else {
    out.push(check('guest-path', 'guest tools in /.runcvm/guest/bin', 'pass', at === 0 ? '/.runcvm/guest/bin is first in PATH' : '/.runcvm/guest/bin is present (called by absolute path with /.runcvm/guest/lib/ld)'));
  }
  if (c.bridgeAddrs === undefined) {
    out.push(check('bridge-ip', `${BRIDGE} identity IP`, 'fail', `${BRIDGE} does not exist: the VM has no network ("ping 8.8.8.8: Network unreachable", TX counter 0)`, `ip addr show ${BRIDGE}; check the launcher's network setup in /tmp/runcvm-<id>.debug`));
  } else {
    const v4 = c.bridgeAddrs.filter((a) => a.family === 'inet');
    const identity = v4.some((a) => a.local === IDENTITY_IP && a.prefixlen === 32);
    const others = v4.filter((a) => a.local !== IDENTITY_IP);
    const podIpOnBridge = others.find((a) => a.local === c.podIp) ?? others[0];
    if (!identity || podIpOnBridge) {
      const why = [
        !identity ? `${BRIDGE} lacks ${IDENTITY_IP}/32, so NFS exports are unreachable ("✗ Failed to mount /data via NFS")` : '',
        podIpOnBridge ? `${BRIDGE} carries ${podIpOnBridge.local}/${podIpOnBridge.prefixlen}${podIpOnBridge.local === c.podIp ? " (the Pod's real IP, which belongs to the guest)" : ''}: ARP fails and NFS connections are refused` : '',
      ].filter(Boolean).join('; ');
      out.push(check('bridge-ip', `${BRIDGE} identity IP`, 'fail', why, `ip addr flush dev ${BRIDGE} && ip addr add ${IDENTITY_IP}/32 dev ${BRIDGE} (the pod IP must be on the guest's eth0 only)`));
    } else {
      out.push(check('bridge-ip', `${BRIDGE} identity IP`, 'pass', `${BRIDGE} has ${IDENTITY_IP}/32 and not the pod IP`));
    }
    const missing = ['eth0', 'tap-eth0'].filter((n) => !c.bridgeMembers.includes(n));
    out.push(missing.length
      ? check('bridge-members', `eth0 and tap-eth0 in ${BRIDGE}`, 'fail', `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not a member of ${BRIDGE}: guest traffic never reaches the pod network`, `ip link set ${missing[0]} master ${BRIDGE}; ip link show tap-eth0`)
      : check('bridge-members', `eth0 and tap-eth0 in ${BRIDGE}`, 'pass', `members: ${c.bridgeMembers.join(', ')}`));
  }
  if (c.volumeIds.length === 0) {
    out.push(check('nfs-volumes', 'NFS volume mounts', 'pass', 'no redirected volumes under /.runcvm/vols'));
  } else {
    const nfs = c.mounts.filter(([src, , type]) => type.startsWith('nfs') && src.startsWith(`${IDENTITY_IP}:/.runcvm/vols/`));
    const missing = c.volumeIds.filter((id) => !nfs.some(([src]) => src === `${IDENTITY_IP}:/.runcvm/vols/${id}`));
    out.push(missing.length
      ? check('nfs-volumes', 'NFS volume mounts', 'warn', `no NFS mount of ${missing.map((id) => `${IDENTITY_IP}:/.runcvm/vols/${id}`).join(', ')} (in the guest: "✗ Failed to mount … via NFS"; on the host side these are expected to be exports, not mounts)`, `in the guest: ip route add ${IDENTITY_IP} dev eth0; look for "PVC Redirect" in /tmp/runcvm-<id>.debug`)
      : check('nfs-volumes', 'NFS volume mounts', 'pass', `${nfs.length} volume(s) mounted from ${IDENTITY_IP}: ${nfs.map(([s, t]) => `${s} on ${t}`).join(', ')}`));
  }
  return out;
}

export function modeText(mode: number | undefined): string {
  return mode === undefined ? '?' : (mode & 0o7777).toString(8).padStart(4, '0');
}

export function exitCodeFor(checks: readonly Check[]): number {
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}

export function renderText(checks: readonly Check[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${c.status.toUpperCase().padEnd(4)}  ${c.title} [${c.id}]`);
    lines.push(`      ${c.cause}`);
    if (c.fix && c.status !== 'pass') lines.push(`      fix: ${c.fix}`);
  }
  const n = (s: Status) => checks.filter((c) => c.status === s).length;
  lines.push(`${n('pass')} passed, ${n('warn')} warning(s), ${n('fail')} failed`);
  return lines.join('\n') + '\n';
}

