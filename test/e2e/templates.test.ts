/**
 * VM templates (issue 17) on real QEMU (TCG) with the real guest kernel and initramfs.
 *
 * "template mechanics": a VM of a container's shape boots parked in its initramfs (runcvm-resume sent PARKED), is
 * saved (device state in a small stream, RAM in a sparse file), and restored: the guest takes RESUME and goes on to
 * probe its disks. A corrupted state file is refused by QEMU and reported as TEMPLATE_LOAD. Every path leaves no
 * QEMU, socket or placeholder file behind.
 *
 * "containers restored from one template": the whole runtime (`ctr run --runc-binary` with RUNCVM_TEMPLATE=on, each
 * container in a pod network namespace of its own). The first container boots cold and starts the builder; two
 * more restore the template and still get what is theirs: /dev/urandom output, MAC, IP, root disk size, and a clock
 * within 2 s of the host's. A corrupted template state, and one QEMU refuses, are cold boots with the reason logged.
 * "docker run --hostname": the hostname (ctr sets none) of VMs restored from one template under dockerd.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { cpuKhzFromCpuinfo } from '../../src/runcvm/hypervisor/accel.js';
import { readCpuinfo } from '../../src/runcvm/hypervisor/facts.js';
import { kernelCmdline } from '../../src/runcvm/hypervisor/index.js';
import { qemu } from '../../src/runcvm/hypervisor/qemu/index.js';
import type { VmPlan } from '../../src/runcvm/hypervisor/types.js';
import { bootAndSave, checkRestore } from '../../src/runcvm/template/boot-and-save.js';
import { isToolError } from '../../src/core/errors.js';
import { CloserStack } from '../../src/core/fsx/index.js';
import type { StartedContainerd } from '../harness/services/containerd.js';
import { ctrRunIn, leftovers, requireAssets, startRuncvmDockerSuite, startRuncvmSuite, type RuntimeFixture } from './runcvm/setup.js';
import type { StartedDockerd } from '../harness/services/dockerd.js';
import { podNetwork, PEER_IP, type PodNetwork } from './network-helpers.js';

const ASSETS = process.env.RUNCVM_ASSETS || projectPath('var', 'assets');

/** QEMU processes whose command line names `dir` (ours only: other suites run VMs at the same time) */
async function qemuUnder(dir: string): Promise<string[]> {
  const ps = await run('ps', ['-eo', 'pid,args'], { reject: false });
  return ps.stdout.split('\n').filter((l) => l.includes('qemu-system') && l.includes(dir));
}

describe('template mechanics (QEMU: bootAndSave, checkRestore, a refused load)', () => {
  let dir: string;
  let vm: VmPlan;
  const files = () => ({ state: join(dir, 'tmpl', 'state'), memory: join(dir, 'tmpl', 'memory') });
  const opts = (work: string) => ({ workDir: join(dir, work), guestDir: join(ASSETS, 'guest'), timeoutMs: 120_000 });

  beforeAll(async () => {
    await requireAssets();
    dir = await mkdtemp(join(tmpdir(), 'runcvm-tmpl-'));
    await run('mkdir', ['-p', join(dir, 'tmpl'), join(dir, 'build'), join(dir, 'check')]);
    const tscKhz = cpuKhzFromCpuinfo(readCpuinfo());
    // the shape planVm gives a QEMU container with a base + upper disk, the exec agent and one NIC
    vm = {
      accel: 'tcg',
      vcpus: 1,
      memoryMiB: 512,
      kernel: join(ASSETS, 'kernel', 'vmlinux'),
      initrd: join(ASSETS, 'kernel', 'initramfs.img'),
      cmdline: kernelCmdline({ rootDevice: '/dev/vda', upperDevice: '/dev/vdb', debug: false, kernelDebug: false, ...(tscKhz ? { tscKhz } : {}), tscReliable: true, modules: 'none', append: '' }),
      disks: [{ id: 'root', path: '-', readOnly: true }, { id: 'upper', path: '-', readOnly: false }],
      console: { socket: '-' },
      io: { socket: '-', portName: 'runcvm.io' },
      agent: { socket: '-', portName: 'org.runcvm.agent' },
      nics: [{ id: 'net0', tap: 'tap-eth0', mac: '52:54:00:12:34:56' }],
    };
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('boots parked and saves: a small device state, the RAM in a sparse file', async () => {
    await bootAndSave(vm, qemu, files(), opts('build'));
    const state = await stat(files().state);
    const memory = await stat(files().memory);
    expect(state.size).toBeGreaterThan(1024);
    expect(state.size).toBeLessThan(1024 * 1024); // device state only: the RAM stayed in its file
    expect(memory.size).toBe(512 * 1024 * 1024);
    expect(memory.blocks * 512).toBeLessThan(memory.size / 2); // sparse: only what the parked guest touched
    expect(await readdir(join(dir, 'build'))).toEqual([]);
    expect(await qemuUnder(dir)).toEqual([]);
  }, 180_000);

  it('restores: the guest takes RESUME and goes on to its disks', async () => {
    await checkRestore(vm, qemu, files(), opts('check'));
    expect(await readdir(join(dir, 'check'))).toEqual([]);
    expect(await qemuUnder(dir)).toEqual([]);
  }, 180_000);

  it('a corrupted state file: TEMPLATE_LOAD with QEMU\'s reason, nothing left running', async () => {
    const fh = await open(files().state, 'r+');
    const { size } = await fh.stat();
    await fh.write(randomBytes(4096), 0, 4096, Math.floor(size / 2));
    await fh.close();
    const err = await checkRestore(vm, qemu, files(), opts('check')).then(() => undefined, (e: unknown) => e);
    expect(isToolError(err) ? err.code : err).toBe('TEMPLATE_LOAD');
    expect((err as Error).message).toMatch(/could not be loaded by qemu/);
    expect(await readdir(join(dir, 'check'))).toEqual([]);
    expect(await qemuUnder(dir)).toEqual([]);
  }, 180_000);
});

describe('containers restored from one template (ctr run, RUNCVM_TEMPLATE=on)', () => {
  const closers = new CloserStack();
  let cd: StartedContainerd;
  let fx: RuntimeFixture;
  let busybox: string;
  let wrapper: string;
  let seq = 0;
  const nets: PodNetwork[] = [];

  /** a pod network whose eth0 holds `ip`/24 (the helper's namespaces all hold one address: swap it) */
  async function podAt(ip: string): Promise<PodNetwork> {
    const net = await podNetwork();
    nets.push(net);
    const cur = await net.ipJson<{ addr_info: { local: string; prefixlen: number }[] }>(net.pod, ['addr', 'show', 'eth0']);
    const old = cur[0]!.addr_info.find((a) => a.local.includes('.'))!;
    await net.ip(net.pod, ['addr', 'del', `${old.local}/${old.prefixlen}`, 'dev', 'eth0']);
    await net.ip(net.pod, ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await net.ip(net.pod, ['route', 'add', 'default', 'via', PEER_IP, 'dev', 'eth0']);
    return net;
  }

  const probe = [
    'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo',
    'cat /sys/class/net/eth0/address',
    'ip -4 -o addr show eth0 | awk \'{print $4}\'',
    'hostname',
    'df -k / | awk \'NR==2 {print $2}\'',
    'date +%s',
  ].join('; ');

  async function runIn(net: PodNetwork, name: string, env: string[]) {
    const before = Date.now();
    const r = await cd.ctr(['run', '--rm', '--runc-binary', wrapper, '--with-ns', `network:${net.nsPath}`, '--env', 'RUNCVM_LOG_LEVEL=INFO', ...env.flatMap((e) => ['--env', e]), busybox, `t${++seq}-${name}`, 'sh', '-c', probe], { reject: false, timeoutMs: 180_000 });
    const after = Date.now();
    expect(r.exitCode, r.stderr).toBe(0);
    const [random, mac, ip, hostname, diskKiB, clock] = r.stdout.trim().split('\n');
    return { random, mac, ip, hostname, diskKiB: Number(diskKiB), clock: Number(clock), before, after, stderr: r.stderr };
  }

  async function templateDirs(): Promise<string[]> {
    const names = await readdir(join(fx.cacheDir, 'templates')).catch(() => [] as string[]);
    const done: string[] = [];
    for (const n of names) if (/^[0-9a-f]{64}$/.test(n) && (await stat(join(fx.cacheDir, 'templates', n, 'manifest.json')).then(() => true, () => false))) done.push(n);
    return done;
  }

  beforeAll(async () => {
    ({ fx, cd, image: busybox } = await startRuncvmSuite(closers));
    // RUNCVM_TEMPLATE is a node setting: the runtime's own environment
    wrapper = await fx.wrapperWith('runcvm-runtime-tmpl', { RUNCVM_TEMPLATE: 'on' });
  }, 300_000);
  afterAll(async () => {
    for (const n of nets) await n.destroy();
    await closers.close();
  });

  it('the first container boots cold and starts the build; the template appears', async () => {
    const first = await runIn(await podAt('10.88.0.2'), 'first', []);
    // no template yet: create boots it cold (no restore attempted) and starts one detached builder
    expect(first.stderr).not.toContain('template: restored');
    const deadline = Date.now() + 240_000;
    while ((await templateDirs()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
    expect(await templateDirs()).toHaveLength(1);
  }, 300_000);

  // the hostname is not in this list: ctr 1.6 sets none (both show "(none)", cold or restored); it comes from the
  // container's own disk (/.runcvm/config) after the resume, as every other OCI setting does
  it('two containers restored from it differ in random bytes, MAC, IP and disk size; their clocks are the host\'s', async () => {
    const netA = await podAt('10.88.0.2');
    const netB = await podAt('10.88.0.3');
    const a = await runIn(netA, 'alpha', ['RUNCVM_ROOTFS_SIZE=300M']);
    const b = await runIn(netB, 'beta', ['RUNCVM_ROOTFS_SIZE=500M']);
    for (const r of [a, b]) {
      expect(r.stderr).toContain('template: restored');
      expect(r.stderr).not.toContain('template: cold boot');
      // within 2 s of the host's clock while the container ran (the template's own clock is minutes old)
      expect(r.clock).toBeGreaterThanOrEqual(Math.floor(r.before / 1000) - 2);
      expect(r.clock).toBeLessThanOrEqual(Math.ceil(r.after / 1000) + 2);
      expect(r.random).toMatch(/^[0-9a-f]{32}$/);
    }
    expect(a.random).not.toBe(b.random);
    expect(a.mac).toBe(netA.podMac);
    expect(b.mac).toBe(netB.podMac);
    expect(a.mac).not.toBe(b.mac);
    expect([a.ip, b.ip]).toEqual(['10.88.0.2/24', '10.88.0.3/24']);
    expect(b.diskKiB - a.diskKiB).toBeGreaterThan(150 * 1024);
  }, 400_000);

  // the RAM file is bound read-write into every launcher (QEMU 7.2 opens it O_RDWR): a write to it, as a QEMU taken
  // over by its guest could make, must never reach the next VM of the shape
  it('a byte written into the template\'s memory file: the next container boots cold with that reason, the template is rebuilt', async () => {
    const [key] = await templateDirs();
    const dir = join(fx.cacheDir, 'templates', key!);
    const before = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { created: string; memoryFile: { ino: string } };
    const fh = await open(join(dir, 'memory'), 'r+');
    await fh.write(Buffer.from([0x90]), 0, 1, 4096);
    await fh.close();
    // create's decision is in the container's debug log (removed when a --rm run ends): read it while the VM boots
    const debugLog = join(fx.logDir, `runcvm-t${seq + 1}-tampered.debug`);
    let created = '';
    let done = false;
    const running = runIn(await podAt('10.88.0.6'), 'tampered', []).finally(() => (done = true));
    while (!done && !created.includes('template: ')) {
      created = await readFile(debugLog, 'utf8').catch(() => created);
      await new Promise((res) => setTimeout(res, 100));
    }
    const r = await running;
    expect(created).toContain("template: cold boot (the template's memory file changed since it was built; removing it and building it again)");
    expect(r.stderr).not.toContain('template: restored');
    expect(r.ip).toBe('10.88.0.6/24');
    // the rebuilt template: a new memory file, a new manifest, nothing of the old one left
    const deadline = Date.now() + 240_000;
    const rebuilt = async () => {
      const text = await readFile(join(dir, 'manifest.json'), 'utf8').catch(() => '');
      return text ? (JSON.parse(text) as typeof before) : undefined;
    };
    while (!((await rebuilt())?.created ?? before.created).localeCompare(before.created) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 1000));
    const after = await rebuilt();
    expect(after?.created).not.toBe(before.created);
    expect(after?.memoryFile.ino).not.toBe(before.memoryFile.ino);
    for (let i = 0; i < 30 && (await readdir(join(fx.cacheDir, 'templates'))).some((n) => n.startsWith('.')); i++) await new Promise((res) => setTimeout(res, 500));
    expect(await readdir(join(fx.cacheDir, 'templates'))).toEqual([key]);
  }, 400_000);

  it('a corrupted template state: a cold boot with the reason logged, the container still runs', async () => {
    const [key] = await templateDirs();
    const state = join(fx.cacheDir, 'templates', key!, 'state');
    const fh = await open(state, 'r+');
    await fh.write(randomBytes(64), 0, 64, 100);
    await fh.close();
    const r = await runIn(await podAt('10.88.0.4'), 'gamma', []);
    expect(r.stderr).toMatch(/template: cold boot \([^)]*(sha256|corrupt)/);
    expect(r.ip).toBe('10.88.0.4/24');
    expect(r.mac).toBe(nets.at(-1)!.podMac);
  }, 300_000);

  it('a state QEMU refuses (its manifest rewritten to match): the restored VM is killed, a cold boot with QEMU\'s reason', async () => {
    const [key] = await templateDirs();
    const dir = join(fx.cacheDir, 'templates', key!);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { stateSha256: string };
    const state = await readFile(join(dir, 'state'));
    manifest.stateSha256 = createHash('sha256').update(state).digest('hex');
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const r = await runIn(await podAt('10.88.0.5'), 'delta', []);
    expect(r.stderr).toMatch(/template: cold boot \(the VM template .* could not be loaded by qemu: .*migration/);
    expect(r.stderr).not.toContain('template: restored');
    expect(r.ip).toBe('10.88.0.5/24');
    expect(r.mac).toBe(nets.at(-1)!.podMac);
  }, 300_000);

  it('nothing is left behind: no QEMU, state folder, template build folder or lock', async () => {
    const left = await leftovers(fx);
    expect(left.qemu).toEqual([]);
    expect(left.state).toEqual([]);
    const names = await readdir(join(fx.cacheDir, 'templates'));
    expect(names.filter((n) => n.startsWith('.tmp-') || n.startsWith('.lock-'))).toEqual([]);
    expect(await qemuUnder(fx.dir)).toEqual([]);
  }, 60_000);
});

describe('docker run --hostname on VMs restored from one template', () => {
  const closers = new CloserStack();
  let fx: RuntimeFixture;
  let dockerd: StartedDockerd;
  let image: string;

  beforeAll(async () => {
    ({ fx, dockerd, image } = await startRuncvmDockerSuite(closers));
    // the same wrapper file dockerd runs as the `runcvm` runtime, now with the node setting on
    await fx.wrapperWith('runcvm-runtime', { RUNCVM_TEMPLATE: 'on' });
  }, 300_000);
  afterAll(async () => {
    await closers.close();
  });

  const hostnameIn = async (name: string) => {
    const r = await dockerd.docker(['run', '--rm', '--runtime', 'runcvm', '--hostname', name, '-e', 'RUNCVM_LOG_LEVEL=INFO', image, 'hostname'], { reject: false, timeoutMs: 180_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    return { hostname: r.stdout.trim(), stderr: r.stderr };
  };

  it('each restored VM has the hostname docker gave its container', async () => {
    // the first of the shape boots cold and builds (Docker's default network here is none: no NIC, as create sees)
    expect((await hostnameIn('first')).hostname).toBe('first');
    const dir = join(fx.cacheDir, 'templates');
    const deadline = Date.now() + 240_000;
    const ready = async () => (await readdir(dir).catch(() => [] as string[])).some((n) => /^[0-9a-f]{64}$/.test(n));
    while (!(await ready()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
    const a = await hostnameIn('alpha');
    const b = await hostnameIn('beta');
    expect(a.stderr).toContain('template: restored');
    expect(b.stderr).toContain('template: restored');
    expect([a.hostname, b.hostname]).toEqual(['alpha', 'beta']);
  }, 400_000);
});

/**
 * "template store and CLI" (tmplstore): the node's side, as a node admin and a user see it, through the real runtime
 * and a harness containerd. With RUNCVM_TEMPLATE=on in the runtime's environment, the first container of a shape
 * boots cold and starts one detached builder, which leaves a verified template in the cache (no tmp folder or lock);
 * the next container of that shape is restored from it (its workload runs, the debug log says so, `ls` counts it as
 * in use); `rm` while it runs only unlinks (the VM goes on); a build that fails leaves no QEMU, template, tmp folder,
 * lock or work folder. `ctr run` makes a new, empty network namespace: the shape has no NIC (`--nics 0`).
 */
describe('template store and CLI (runcvm template build|ls|rm, create binds the template)', () => {
  const closers = new CloserStack();
  let cd: StartedContainerd;
  let fx: RuntimeFixture;
  let image: string;
  let wrapper: string;
  /** the runtime's environment (node settings) for the CLI */
  let env: Record<string, string>;
  const cli = (args: string[], more: Record<string, string> = {}) => run(process.execPath, [projectPath('bin', 'runcvm'), ...args], { env: { ...env, ...more }, reject: false, timeoutMs: 240_000 });
  const templatesIn = async (cacheDir: string) => (await readdir(join(cacheDir, 'templates')).catch(() => [] as string[])).sort();
  const lsJson = async () => JSON.parse((await cli(['template', 'ls', '--json'])).stdout) as { key: string; inUse: number; bytes: number; shape: string }[];

  beforeAll(async () => {
    ({ fx, cd, image } = await startRuncvmSuite(closers));
    // INFO: the launcher's `template:` lines reach the debug log (DEBUG would rule templates out)
    env = { RUNCVM_STATE_DIR: fx.stateDir, RUNCVM_CACHE_DIR: fx.cacheDir, RUNCVM_LOG_DIR: fx.logDir, RUNCVM_TEMPLATE: 'on', RUNCVM_LOG_LEVEL: 'INFO' };
    wrapper = await fx.wrapperWith('runcvm-runtime-templates', { RUNCVM_TEMPLATE: 'on', RUNCVM_LOG_LEVEL: 'INFO' });
  }, 300_000);
  afterAll(async () => {
    await closers.close();
  });

  it('first need: the container boots cold now, one detached builder leaves a verified template, nothing else', async () => {
    const r = await ctrRunIn(cd, { runtime: wrapper, image, id: 'tmpl-first', cmd: ['echo', 'cold-ok'], timeoutMs: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('cold-ok\n');
    // the builder outlives the container: wait for its template (a TCG boot + save + one restore)
    let keys: string[] = [];
    for (let i = 0; i < 240 && keys.length === 0; i++) {
      keys = (await templatesIn(fx.cacheDir)).filter((n) => /^[0-9a-f]{64}$/.test(n) && !n.startsWith('.'));
      if (keys.length === 0) await new Promise((res) => setTimeout(res, 1000));
    }
    const builderLogs = async () => (await readdir(fx.logDir)).filter((n) => n.startsWith('runcvm-template-'));
    const logText = async () => (await Promise.all((await builderLogs()).map((n) => readFile(join(fx.logDir, n), 'utf8').catch(() => '')))).join('\n');
    expect(keys, await logText()).toHaveLength(1);
    // a lock and tmp folder exist only while the builder runs: wait for it to end
    for (let i = 0; i < 30 && (await templatesIn(fx.cacheDir)).some((n) => n.startsWith('.')); i++) await new Promise((res) => setTimeout(res, 500));
    expect(await templatesIn(fx.cacheDir)).toEqual(keys);
    // a build that made its template removes its log (kept only when a build fails)
    for (let i = 0; i < 20 && (await builderLogs()).length > 0; i++) await new Promise((res) => setTimeout(res, 250));
    expect(await builderLogs(), await logText()).toEqual([]);
    const ls = await lsJson();
    expect(ls).toEqual([expect.objectContaining({ key: keys[0], inUse: 0, shape: 'qemu tcg 1 vCPU 512 MiB 0 NIC 2 disks' })]);
    // `runcvm template build` of the same shape finds it: nothing built twice
    const again = await cli(['template', 'build', '--nics', '0']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toBe(`${keys[0]} the template exists\n`);
  }, 400_000);

  it('the next container of the shape is restored from it; ls counts it; rm while it runs only unlinks', async () => {
    const [key] = (await lsJson()).map((t) => t.key);
    expect(key).toBeDefined();
    const out = join(fx.dir, 'restored.out');
    const run1 = await cd.ctr(['run', '-d', '--runc-binary', wrapper, '--log-uri', `file://${out}`, image, 'tmpl-restored', 'sh', '-c', 'echo restored-ok; sleep 120'], { reject: false, timeoutMs: 60_000 });
    expect(run1.exitCode, run1.stderr).toBe(0);
    const logFile = join(fx.logDir, 'runcvm-tmpl-restored.debug');
    let text = '';
    for (let i = 0; i < 120 && !(text.includes('restored-ok') && /template: (restored|cold boot)/.test(await readFile(logFile, 'utf8').catch(() => ''))); i++) {
      await new Promise((res) => setTimeout(res, 500));
      text = await readFile(out, 'utf8').catch(() => '');
    }
    const debug = await readFile(logFile, 'utf8').catch(() => '');
    expect(text, debug).toContain('restored-ok');
    expect(debug).toContain(`template: ${key} (restored from ${join(fx.cacheDir, 'templates', key!)})`);
    expect(debug, debug).toMatch(/template: restored/);
    expect(debug).not.toMatch(/template: cold boot/);
    expect((await lsJson())[0]).toMatchObject({ key, inUse: 1 });
    const rm1 = await cli(['template', 'rm', key!.slice(0, 12)]);
    expect(rm1.exitCode, rm1.stderr).toBe(0);
    expect(rm1.stdout).toBe(`removed ${key} (1 running container keep their private mapping of it until they stop)\n`);
    expect(await templatesIn(fx.cacheDir)).toEqual([]);
    // the VM goes on: its task is still running
    const tasks = await cd.ctr(['tasks', 'ls'], { reject: false });
    expect(tasks.stdout).toMatch(/tmpl-restored\s+\d+\s+RUNNING/);
    await cd.ctr(['tasks', 'kill', '-s', 'SIGKILL', 'tmpl-restored'], { reject: false });
    for (let i = 0; i < 60 && !/tmpl-restored\s+\d+\s+STOPPED/.test((await cd.ctr(['tasks', 'ls'], { reject: false })).stdout); i++) await new Promise((res) => setTimeout(res, 500));
    await cd.ctr(['tasks', 'rm', 'tmpl-restored'], { reject: false });
    await cd.ctr(['containers', 'rm', 'tmpl-restored'], { reject: false });
    const left = await leftovers(fx);
    expect(left.qemu).toEqual([]);
    expect(left.state).toEqual([]);
  }, 300_000);

  it('a failed build: TEMPLATE_BUILD_FAILED, and no QEMU, template, tmp folder, lock or work folder left', async () => {
    // assets whose kernel is not a kernel: QEMU refuses it at once
    const assets = join(fx.dir, 'bad-assets');
    const real = process.env.RUNCVM_ASSETS || projectPath('var', 'assets');
    await mkdir(join(assets, 'kernel'), { recursive: true });
    await writeFile(join(assets, 'kernel', 'vmlinux'), randomBytes(4096));
    await copyFile(join(real, 'kernel', 'initramfs.img'), join(assets, 'kernel', 'initramfs.img'));
    await copyFile(join(real, 'kernel', 'manifest.json'), join(assets, 'kernel', 'manifest.json'));
    await symlink(await realpath(join(real, 'guest')), join(assets, 'guest'));
    const cache = join(fx.dir, 'bad-cache');
    // a private TMPDIR: other files' builders use /tmp at the same time, so /tmp itself proves nothing
    const tmp = join(fx.dir, 'bad-tmp');
    await mkdir(tmp);
    const r = await cli(['template', 'build', '--nics', '0'], { RUNCVM_ASSETS: assets, RUNCVM_CACHE_DIR: cache, TMPDIR: tmp });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^error: the template [0-9a-f]{64} could not be made: /m);
    expect(r.stderr).toContain('fix: containers keep booting cold meanwhile.');
    expect(await templatesIn(cache)).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
    const ps = await run('ps', ['-eo', 'pid,args'], { reject: false });
    expect(ps.stdout.split('\n').filter((l) => l.includes('qemu-system') && l.includes(assets))).toEqual([]);
    // and a shape no template can cover is refused with its reason (exit 2), before anything is made
    const dbg = await cli(['template', 'build', '--memory', '64M']);
    expect(dbg.exitCode).toBe(2);
    expect(dbg.stderr).toContain('--memory "64M" is below the 128 MiB a VM needs');
  }, 300_000);
});
