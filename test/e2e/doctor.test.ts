/**
 * `runcvm doctor` and `runcvm install` end to end, through the real bin/runcvm (dist/), against real conditions:
 * broken k3s templates, a containerd config written by `runcvm install` and loaded by a REAL containerd 1.6 (its CRI
 * plugin must load with the runcvm runtime), /dev/kvm hidden in a private mount namespace, and the JSON shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { projectPath } from '../../src/core/paths.js';
import { startProcess, logTail, type ServiceProcess } from '../harness/proc.js';
import { waitFor } from '../harness/wait.js';

interface Check { id: string; title: string; status: 'pass' | 'warn' | 'fail'; cause: string; fix: string }
interface Report { mode: string; checks: Check[]; summary: { pass: number; warn: number; fail: number } }

const RUNCVM = projectPath('bin', 'runcvm');
const closers = new CloserStack();
let dir = '';
let fakeRuntime = '';

async function runcvm(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [RUNCVM, ...args], { reject: false, env, timeoutMs: 60_000 });
}

async function doctor(args: string[]): Promise<{ code: number; report: Report; text: string }> {
  const json = await runcvm(['doctor', '--json', ...args]);
  const text = await runcvm(['doctor', ...args]);
  expect(json.exitCode).toBe(text.exitCode);
  return { code: json.exitCode, report: JSON.parse(json.stdout) as Report, text: text.stdout };
}

const byId = (r: Report, id: string): Check => {
  const c = r.checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${r.checks.map((x) => x.id).join(', ')}`);
  return c;
};

beforeAll(async () => {
  dir = await tempDir('runcvm-doctor-e2e-', closers);
  fakeRuntime = join(dir, 'runcvm-runtime');
  await writeFile(fakeRuntime, '#!/bin/sh\nexec runc "$@"\n');
  await chmod(fakeRuntime, 0o755);
});

afterAll(async () => {
  await closers.close();
});

describe('runcvm doctor: broken k3s templates (guide 9)', () => {
  it('template without {{ template "base" . }} and with the containerd 1.x section', async () => {
    const t = join(dir, 'no-base.toml.tmpl');
    await writeFile(t, `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]\n  runtime_type = "io.containerd.runc.v2"\n  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm.options]\n    BinaryName = "${fakeRuntime}"\n`);
    const { code, report, text } = await doctor(['--k3s-template', t]);
    expect(code).toBe(1);
    const c = byId(report, 'k3s-template');
    expect(c.status).toBe('fail');
    expect(c.cause).toContain('does not contain {{ template "base" . }}');
    expect(c.cause).toContain('incorrect plugin path');
    expect(c.cause).toContain('no runtime for "runcvm" is configured');
    expect(c.cause).toContain('Unknown runtime handler "runcvm"');
    expect(c.fix).toContain(`runcvm install --k3s --config ${t}`);
    expect(c.fix).toContain('sudo systemctl restart k3s');
    expect(text).toContain('FAIL  k3s containerd template (config-v3.toml.tmpl) [k3s-template]');
    expect(text).toMatch(/\n {6}fix: runcvm install --k3s/);
  });

  it('template with runtime_type = "runcvm"', async () => {
    const t = join(dir, 'wrong-type.toml.tmpl');
    await writeFile(t, `{{ template "base" . }}\n\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm]\n  runtime_type = "runcvm"\n`);
    const c = byId((await doctor(['--k3s-template', t])).report, 'k3s-template');
    expect(c.status).toBe('fail');
    expect(c.cause).toContain('runtime_type is "runcvm" instead of "io.containerd.runc.v2" (incorrect runtime_type)');
  });

  it('template with a TOML syntax error is reported with its line', async () => {
    const t = join(dir, 'syntax.toml.tmpl');
    await writeFile(t, `{{ template "base" . }}\n\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm\n  runtime_type = "io.containerd.runc.v2"\n`);
    const c = byId((await doctor(['--k3s-template', t])).report, 'k3s-template');
    expect(c.cause).toMatch(new RegExp(`^${t.replace(/[.]/g, '\\.')}:3:\\d+: TOML syntax error`));
  });

  it('runcvm install --k3s repairs it, and the doctor then passes that check', async () => {
    const t = join(dir, 'no-base.toml.tmpl');
    const inst = await runcvm(['install', '--k3s', '--config', t, '--runtime', fakeRuntime]);
    expect(inst.exitCode).toBe(0);
    expect(inst.stdout).toContain('next: sudo systemctl restart k3s');
    expect((await readFile(t, 'utf8')).split('\n')[0]).toBe('{{ template "base" . }}');
    expect(byId((await doctor(['--k3s-template', t])).report, 'k3s-template').status).toBe('pass');
  });
});

describe('runcvm install --containerd, loaded by a real containerd 1.6', () => {
  let containerd: ServiceProcess | undefined;
  let config = '';
  let sock = '';

  afterAll(async () => {
    await containerd?.stop(5000);
  });

  it('writes a config that containerd accepts, with the CRI plugin loading the runcvm runtime', async () => {
    const root = join(dir, 'ctd');
    await mkdir(root, { recursive: true });
    config = join(root, 'config.toml');
    sock = join(root, 'containerd.sock');
    const original = `version = 2\nroot = "${root}/root"\nstate = "${root}/state"\n\n[grpc]\n  address = "${sock}"\n\n[plugins]\n  [plugins."io.containerd.internal.v1.opt"]\n    path = "${root}/opt"\n`;
    await writeFile(config, original);

    const first = await runcvm(['install', '--containerd', '--config', config, '--runtime', fakeRuntime]);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout).toContain('added [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]');
    expect(first.stdout).toContain('next: sudo systemctl restart containerd');
    const bak = await stat(`${config}.bak`);
    expect(bak.mode & 0o777).toBe(0o600);
    expect(await readFile(`${config}.bak`, 'utf8')).toBe(original);
    const written = await readFile(config, 'utf8');
    expect(written.startsWith(original)).toBe(true);

    const second = await runcvm(['install', '--containerd', '--config', config, '--runtime', fakeRuntime]);
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toContain('nothing to change');
    expect(await readFile(config, 'utf8')).toBe(written);

    const log = join(root, 'containerd.log');
    containerd = await startProcess('containerd', 'containerd', ['--config', config, '--log-level', 'debug'], { logPath: log });
    closers.push('containerd', () => containerd?.stop(5000));
    const started = containerd;
    await waitFor('containerd "serving..." on its socket', async () => {
      started.assertAlive();
      return (await readFile(log, 'utf8')).includes('containerd successfully booted');
    }, { timeoutMs: 20_000 });

    const plugins = await run('ctr', ['--address', sock, 'plugins', 'ls'], { timeoutMs: 10_000 });
    const cri = plugins.stdout.split('\n').find((l) => /io\.containerd\.grpc\.v1\s+cri\s/.test(l));
    expect(cri, `${plugins.stdout}\n${logTail(log, 30)}`).toMatch(/\sok\s*$/);
    const text = await readFile(log, 'utf8');
    expect(text).toMatch(/runcvm:\{Type:io\.containerd\.runc\.v2 /);
    expect(text).toContain(`BinaryName:${fakeRuntime}`);
    const dump = await run('containerd', ['--config', config, 'config', 'dump'], { timeoutMs: 10_000 });
    expect(dump.stdout).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]');
    expect(dump.stdout).toContain(`BinaryName = "${fakeRuntime}"`);
  });

  it('the doctor passes that config and says runcvm is registered', async () => {
    const { report } = await doctor(['--containerd-config', config]);
    expect(byId(report, 'containerd-config')).toMatchObject({ status: 'pass' });
    expect(byId(report, 'runtime-registered')).toMatchObject({ status: 'pass', cause: 'registered in: containerd-config' });
  });

  it('the doctor fails a config whose runcvm entry lost the default runtime or has runtime_type = "runcvm"', async () => {
    const bad = join(dir, 'bad-containerd.toml');
    await writeFile(bad, `version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm]\n  runtime_type = "runcvm"\n`);
    const { code, report } = await doctor(['--containerd-config', bad]);
    expect(code).toBe(1);
    const c = byId(report, 'containerd-config');
    expect(c.cause).toContain('default_runtime_name = "runc"');
    expect(c.cause).toContain('runtime_type is "runcvm"');
    expect(c.fix).toContain(`runcvm install --containerd --config ${bad}`);
  });

  it('install refuses an invalid TOML file and leaves it untouched', async () => {
    const bad = join(dir, 'invalid.toml');
    const content = 'version = 2\n[plugins."io.containerd.grpc.v1.cri"\n';
    await writeFile(bad, content);
    const r = await runcvm(['install', '--containerd', '--config', bad, '--runtime', fakeRuntime]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('not valid TOML (line 2');
    expect(await readFile(bad, 'utf8')).toBe(content);
  });
});

describe('runcvm doctor without /dev/kvm (guide 10)', () => {
  it('in a mount namespace whose /dev has no kvm, names Kvm(Error(19)) and the fix, and says TCG plainly', async () => {
    const dev = join(dir, 'dev');
    await mkdir(dev);
    // a private mount namespace: tmpfs copy of the few nodes node and the doctor need, bound over /dev
    const script = [
      'set -e',
      `mount -t tmpfs tmpfs ${dev}`,
      `cp -a /dev/null /dev/zero /dev/random /dev/urandom ${dev}/`,
      `mkdir ${dev}/net && cp -a /dev/net/tun ${dev}/net/`,
      `mount --bind ${dev} /dev`,
      'test ! -e /dev/kvm',
      `exec "${process.execPath}" "${RUNCVM}" doctor --json`,
    ].join('\n');
    const r = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { reject: false, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as Report;
    const kvm = byId(report, 'kvm-device');
    expect(kvm.status).toBe('warn');
    expect(kvm.cause).toContain('/dev/kvm is missing');
    expect(kvm.cause).toContain('Error: RunWithoutApiError(BuildMicroVMFromJson(StartMicroVM(Kvm(Kvm(Error(19))))))');
    expect(kvm.cause).toContain('falls back to QEMU TCG');
    expect(kvm.fix).toContain('ls -l /dev/kvm');
    expect(kvm.fix).toContain('nested virtualization');
    expect(byId(report, 'kvm-usable').cause).toContain('no /dev/kvm');
    expect(byId(report, 'tun-device').status).toBe('pass');
  });
});

describe('runcvm doctor: the VMs\' writable disks on a small or RAM-backed filesystem (guide 6)', () => {
  /** the node doctor with RUNCVM_STATE_DIR on a tmpfs of SIZE, mounted in a private mount namespace (gone with it) */
  async function stateDoctor(name: string, size: string): Promise<Check> {
    const state = join(dir, name);
    await mkdir(state);
    const script = ['set -e', `mount -t tmpfs -o size=${size} tmpfs ${state}`, `RUNCVM_STATE_DIR=${state} exec "${process.execPath}" "${RUNCVM}" doctor --node --json`].join('\n');
    const r = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { reject: false, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    return byId(JSON.parse(r.stdout) as Report, 'state-disk');
  }

  it('a 64 MiB tmpfs fails (a VM that writes corrupts its root filesystem); a 2 GiB one warns that writes use node RAM', async () => {
    const small = await stateDoctor('state-small', '64m');
    expect(small.status).toBe('fail');
    expect(small.cause).toContain(`only 64 MiB free at ${join(dir, 'state-small')} (tmpfs)`);
    expect(small.cause).toContain('upper.ext4');
    expect(small.fix).toContain('RUNCVM_STATE_DIR=');
    const ram = await stateDoctor('state-ram', '2g');
    expect(ram.status).toBe('warn');
    expect(ram.cause).toContain(`${join(dir, 'state-ram')} is on tmpfs (2.0 GiB free)`);
    // this machine's own state folder (RUNCVM_STATE_DIR unset) is measured too
    const own = byId((await doctor(['--node'])).report, 'state-disk');
    expect(own.cause).toMatch(/free at \/run\/runcvm|could not measure/);
  });
});

describe('runcvm doctor --inside against a real network namespace (guides 1, 3, 5, 6)', () => {
  async function insideDoctor(name: string, setup: string[], files: { entrypoint: boolean }): Promise<Report> {
    const root = join(dir, `inside-${name}`);
    await mkdir(join(root, '.runcvm', 'guest', 'bin'), { recursive: true });
    await mkdir(join(root, '.runcvm', 'vols'), { recursive: true });
    if (files.entrypoint) await writeFile(join(root, '.runcvm', 'entrypoint'), 'sleep 1\n');
    const script = [
      'set -e',
      'ip link add br-eth0 type bridge',
      'ip link add eth0 type veth peer name eth0-peer',
      'ip link set eth0 master br-eth0',
      'ip tuntap add tap-eth0 mode tap',
      ...setup,
      `PATH=/.runcvm/guest/bin:$PATH POD_IP=10.42.0.7 exec "${process.execPath}" "${RUNCVM}" doctor --inside --root ${root} --json`,
    ].join('\n');
    const r = await run('unshare', ['-n', 'sh', '-c', script], { reject: false, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as Report;
    expect(report.mode).toBe('inside');
    expect(r.exitCode).toBe(report.summary.fail > 0 ? 1 : 0);
    return report;
  }

  it('a correctly wired container passes: br-eth0 = 169.254.1.254/32, eth0 + tap-eth0 members, entrypoint present', async () => {
    const report = await insideDoctor('good', ['ip addr add 169.254.1.254/32 dev br-eth0', 'ip link set tap-eth0 master br-eth0'], { entrypoint: true });
    expect(report.checks.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(byId(report, 'bridge-members').cause).toBe('members: eth0, tap-eth0');
  });

  it('the pod IP on br-eth0, tap-eth0 outside the bridge and no entrypoint fail with the guide text', async () => {
    const report = await insideDoctor('bad', ['ip addr add 10.42.0.7/24 dev br-eth0'], { entrypoint: false });
    const ip = byId(report, 'bridge-ip');
    expect(ip.status).toBe('fail');
    expect(ip.cause).toContain('br-eth0 lacks 169.254.1.254/32');
    expect(ip.cause).toContain("10.42.0.7/24 (the Pod's real IP, which belongs to the guest)");
    expect(ip.fix).toContain('ip addr add 169.254.1.254/32 dev br-eth0');
    expect(byId(report, 'bridge-members').cause).toContain('tap-eth0 is not a member of br-eth0');
    expect(byId(report, 'entrypoint').cause).toContain('[VM-START] No entrypoint found, sleeping');
  });
});

describe('runcvm doctor output', () => {
  it('JSON: mode, checks [{id,title,status,cause,fix}], summary counts; exit code follows failures', async () => {
    const r = await runcvm(['doctor', '--json', '--node']);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.mode).toBe('node');
    expect(report.checks.length).toBeGreaterThanOrEqual(14);
    for (const c of report.checks) {
      expect(Object.keys(c).sort()).toEqual(['cause', 'fix', 'id', 'status', 'title']);
      expect(['pass', 'warn', 'fail']).toContain(c.status);
      expect(c.cause.length).toBeGreaterThan(0);
      if (c.status !== 'pass') expect(c.fix.length).toBeGreaterThan(0);
    }
    const count = (s: string) => report.checks.filter((c) => c.status === s).length;
    expect(report.summary).toEqual({ pass: count('pass'), warn: count('warn'), fail: count('fail') });
    expect(r.exitCode).toBe(count('fail') > 0 ? 1 : 0);
  });

  it('--help documents the exit codes; a bad option exits 2', async () => {
    const help = await runcvm(['doctor', '--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/exit status:\n {2}0 .*\n {2}1 .*\n {2}2 +usage error/);
    expect((await runcvm(['doctor', '--bogus'])).exitCode).toBe(2);
  });
});
