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
 * more restore the template and still get what is theirs: /dev/urandom output, MAC, IP, hostname, root disk size,
 * and a clock within 2 s of the host's. A corrupted template state is a cold boot with the reason logged.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
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
import { leftovers, requireAssets, startRuncvmSuite, type RuntimeFixture } from './runcvm/setup.js';
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

  it('nothing is left behind: no QEMU, state folder, template build folder or lock', async () => {
    const left = await leftovers(fx);
    expect(left.qemu).toEqual([]);
    expect(left.state).toEqual([]);
    const names = await readdir(join(fx.cacheDir, 'templates'));
    expect(names.filter((n) => n.startsWith('.tmp-') || n.startsWith('.lock-'))).toEqual([]);
    expect(await qemuUnder(fx.dir)).toEqual([]);
  }, 60_000);
});
