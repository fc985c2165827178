/**
 * Volumes over NFS (issue 8 item 3): with RUNCVM_VOLUME_TRANSPORT=nfs (always so under Firecracker, which cannot run
 * here; the NFS path is the same under QEMU), the launcher serves each volume, redirected to /.runcvm/vols/<id> in
 * the container, from its in-process NFSv3 server on the identity IP 169.254.1.254:2049, and the guest mounts
 * `169.254.1.254:/.runcvm/vols/<id>` at the volume's path. Through containerd (`ctr run --runc-binary
 * bin/runcvm-runtime --with-ns network:<pod netns>`): a PVC-like bind (fake RUNCVM_KUBELET_DIR) and plain binds;
 * files written on either side are seen on the other with their owner and mode; read-only is enforced; a sidecar in
 * the pod's network namespace gets no answer from the server (issue 12 item 4); without a network the container
 * fails with a clear error; nothing is left behind.
 */
import { chmod, chown, copyFile, mkdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import type { StartedContainerd } from '../harness/services/containerd.js';
import { waitFor } from '../harness/wait.js';
import { leftovers, readDebugLogs, startRuncvmSuite, type RuntimeFixture } from './runcvm/setup.js';
import { leftoverNamespaces, podNetwork, type PodNetwork } from './network-helpers.js';

const closers = new CloserStack();
let cd: StartedContainerd;
let fx: RuntimeFixture;
let net: PodNetwork;
let busybox: string;
let tmp: string;
let kubelet: string;
let wrapper: string;
let seq = 0;

const G = '/.runcvm/guest';

/** A copy (hard links) of the built guest package with the fake Firecracker (as in firecracker-runtime.test.ts). */
async function guestWithFakeFirecracker(dir: string): Promise<string> {
  const src = process.env.RUNCVM_ASSETS ? join(process.env.RUNCVM_ASSETS, 'guest') : projectPath('var', 'assets', 'guest');
  const guest = join(dir, 'guest-fc');
  await run('cp', ['-al', `${await realpath(src)}/.`, guest]);
  await mkdir(join(guest, 'lib', 'fake-firecracker'), { recursive: true });
  await copyFile(projectPath('test', 'fixtures', 'fake-firecracker', 'fake-firecracker.mjs'), join(guest, 'lib', 'fake-firecracker', 'fake-firecracker.mjs'));
  await copyFile(projectPath('schemas', 'firecracker-api.json'), join(guest, 'lib', 'fake-firecracker', 'firecracker-api.json'));
  const script = [
    `#!${G}/bin/busybox sh`,
    `export FAKE_FC_SCHEMA=${G}/lib/fake-firecracker/firecracker-api.json FAKE_FC_NO_KVM=1 FAKE_FC_REQUIRE_ROOT=1`,
    `exec ${G}/lib/ld --library-path ${G}/lib ${G}/bin/node ${G}/lib/fake-firecracker/fake-firecracker.mjs "$@"`,
    '',
  ].join('\n');
  await writeFile(join(guest, 'bin', 'firecracker'), script);
  await chmod(join(guest, 'bin', 'firecracker'), 0o755);
  return guest;
}

function bind(src: string, dst: string, ro = false): string[] {
  return ['--mount', `type=bind,src=${src},dst=${dst},options=rbind:${ro ? 'ro' : 'rw'}`];
}

describe('runcvm volumes over NFS (RUNCVM_VOLUME_TRANSPORT=nfs, containerd, QEMU guest)', () => {
  beforeAll(async () => {
    tmp = await tempDir('runcvm-volnfs', closers);
    kubelet = join(tmp, 'kubelet');
    net = await podNetwork();
    closers.push('pod network', () => net.destroy());
    ({ fx, cd, image: busybox } = await startRuncvmSuite(closers));
    wrapper = await fx.wrapperWith('runcvm-runtime-kubelet', { RUNCVM_KUBELET_DIR: kubelet });
  }, 300_000);
  afterAll(async () => {
    await closers.close();
  });

  it('PVC and plain binds: mounted from 169.254.1.254 over NFS, shared both ways with owners and modes, ro enforced', async () => {
    const pvc = join(kubelet, 'pods', '1f0e7b1c-0000-4000-8000-000000000002', 'volumes', 'kubernetes.io~nfs', 'pv-data');
    await mkdir(pvc, { recursive: true });
    await chown(pvc, 1000, 1000);
    await writeFile(join(pvc, 'from-host.txt'), 'hello from the host\n');
    await chown(join(pvc, 'from-host.txt'), 1234, 2345);
    await chmod(join(pvc, 'from-host.txt'), 0o644);
    const plain = join(tmp, 'plain');
    await mkdir(plain);
    await chown(plain, 1000, 1000);
    const ro = join(tmp, 'ro');
    await mkdir(ro);
    await writeFile(join(ro, 'keep.txt'), 'keep\n');
    const conf = join(tmp, 'app.conf');
    await writeFile(conf, 'key=value\n');
    await chown(conf, 1000, 1000);
    // ctr has no --user: the workload (root) adds uid 1000 to the VM's /etc/passwd and runs the checks as that user
    const asUser = [
      'id -u',
      'cat /data/from-host.txt',
      'stat -c "%u %g %a" /data/from-host.txt',
      'echo from-vm > /data/from-vm.txt && chmod 640 /data/from-vm.txt',
      'echo plain > /plain/p.txt && chmod 640 /plain/p.txt',
      'cat /ro/keep.txt',
      'touch /ro/new 2>&1; echo rc=$?',
      'echo appended >> /etc/app.conf; cat /etc/app.conf',
    ].join('; ');
    const script = `mount | grep " type nfs" | cut -d" " -f1-5; echo "u1000:x:1000:1000::/tmp:/bin/sh" >> /etc/passwd; su -s /bin/sh u1000 -c '${asUser}'`;
    const flags = ['--runc-binary', wrapper, '--with-ns', `network:${net.nsPath}`, '--env', 'RUNCVM_VOLUME_TRANSPORT=nfs', '--env', 'RUNCVM_LOG_LEVEL=DEBUG'];
    const mounts = [...bind(pvc, '/data'), ...bind(plain, '/plain'), ...bind(ro, '/ro', true), ...bind(conf, '/etc/app.conf')];
    const r = await cd.ctr(['run', '--rm', ...flags, ...mounts, busybox, `volnfs${++seq}`, 'sh', '-c', script], { reject: false, timeoutMs: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    // RUNCVM_LOG_LEVEL=DEBUG (for the per-container debug log) also puts the guest's boot log on the console
    const lines = r.stdout.split('\n').filter((l) => !/^\[(runcvm-|RunCVM-)/.test(l));
    const nfsMounts = lines.filter((l) => l.includes(' type nfs'));
    expect([...nfsMounts].sort()).toEqual([
      '169.254.1.254:/.runcvm/vols/v0-pv-data on /data type nfs',
      '169.254.1.254:/.runcvm/vols/v1 on /plain type nfs',
      '169.254.1.254:/.runcvm/vols/v2 on /ro type nfs',
      // a single-file bind: its folder's export mounted hidden, the file bind-mounted onto its path
      '169.254.1.254:/.runcvm/vols/v3 on /.runcvm/vols/v3 type nfs',
      '169.254.1.254:/.runcvm/vols/v3/app.conf on /etc/app.conf type nfs',
    ].sort());
    expect(lines.slice(nfsMounts.length).join('\n')).toBe(['1000', 'hello from the host', '1234 2345 644', 'keep', 'touch: /ro/new: Read-only file system', 'rc=1', 'key=value', 'appended', ''].join('\n'));
    expect(await readFile(conf, 'utf8')).toBe('key=value\nappended\n');
    for (const [file, text] of [[join(pvc, 'from-vm.txt'), 'from-vm\n'], [join(plain, 'p.txt'), 'plain\n']] as const) {
      expect(await readFile(file, 'utf8')).toBe(text);
      const st = await stat(file);
      expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1000, 1000, 0o640]);
    }
    expect(await stat(join(ro, 'new')).catch(() => undefined)).toBeUndefined();
    const logs = await readDebugLogs(fx);
    expect(logs).toMatch(/\[RunCVM-Runtime\] QEMU: PVC Redirect: \/data -> \/\.runcvm\/vols\/v0-pv-data/);
  }, 150_000);

  it('a sidecar in the pod network namespace (any uid, even from a reserved port) is disconnected unanswered; the VM mounts', async () => {
    const host = join(tmp, 'sidecar');
    await mkdir(host);
    const id = `volnfs${++seq}`;
    const flags = ['--runc-binary', wrapper, '--with-ns', `network:${net.nsPath}`, '--env', 'RUNCVM_VOLUME_TRANSPORT=nfs'];
    await cd.ctr(['run', '-d', ...flags, ...bind(host, '/data'), busybox, id, 'sh', '-c', 'mount | grep -c " on /data type nfs" > /data/mounted; exec sleep 100000'], { timeoutMs: 120_000 });
    try {
      await waitFor('the VM to mount /data over NFS', async () => (await readFile(join(host, 'mounted'), 'utf8').catch(() => '')).trim() === '1', { timeoutMs: 120_000, intervalMs: 500 });
      // what a runc sidecar sharing the pod's namespace can do: connect to the identity IP and call NFS NULL, once
      // from an ephemeral port, once (as root) from a reserved one
      const probe = `
        const net = require('node:net');
        const call = Buffer.from('80000028' + '00000001' + '00000000' + '00000002' + '000186a3' + '00000003' + '00000000' + '0000000000000000' + '0000000000000000', 'hex');
        const once = (localPort) => new Promise((resolve) => {
          const s = net.connect({ host: '169.254.1.254', port: 2049, ...(localPort ? { localPort } : {}) }, () => s.write(call));
          s.on('data', () => { s.destroy(); resolve('answered'); });
          s.on('close', () => resolve('closed'));
          s.on('error', (e) => resolve(e.code === 'ECONNRESET' ? 'closed' : 'error ' + e.code));
        });
        (async () => console.log(await once(), await once(${700 + (process.pid % 300)})))();`;
      const r = await run('nsenter', [`--net=${net.nsPath}`, process.execPath, '-e', probe], { timeoutMs: 30_000 });
      expect(r.stdout.trim()).toBe('closed closed');
    } finally {
      await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id], { reject: false });
      await waitFor(`task ${id} to stop`, async () => (await cd.ctr(['task', 'delete', id], { reject: false })).exitCode === 0, { timeoutMs: 60_000, intervalMs: 300 });
      await cd.ctr(['container', 'delete', id], { reject: false });
    }
  }, 200_000);

  it('without a network (--network none) the container fails and says why and how to fix it', async () => {
    const host = join(tmp, 'nonet');
    await mkdir(host);
    const r = await cd.ctr(['run', '--rm', '--runc-binary', wrapper, '--env', 'RUNCVM_VOLUME_TRANSPORT=nfs', ...bind(host, '/data'), busybox, `volnfs${++seq}`, 'true'], { reject: false, timeoutMs: 120_000 });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('the identity IP 169.254.1.254 does not exist in the container (no network)');
    expect(r.stderr).toMatch(/fix: .*drop --network none/);
  }, 150_000);

  it('Firecracker (fake, set up as a node without KVM): volumes are accepted and served over NFS, the redirect log says FIRECRACKER', async () => {
    const pvc = join(kubelet, 'pods', '1f0e7b1c-0000-4000-8000-000000000003', 'volumes', 'kubernetes.io~csi', 'pv-fc');
    await mkdir(pvc, { recursive: true });
    const guest = await guestWithFakeFirecracker(fx.dir);
    // the node's KVM device is a stand-in that opens (create's check for RUNCVM_HYPERVISOR=firecracker passes on any
    // machine, with or without /dev/kvm); the fake then fails as Firecracker does on a node without KVM
    const kvmStandIn = join(fx.dir, 'kvm-stand-in');
    await writeFile(kvmStandIn, '', { mode: 0o600 });
    const fcWrapper = await fx.wrapperWith('runcvm-runtime-fc', { RUNCVM_GUEST_DIR: guest, RUNCVM_KUBELET_DIR: kubelet, RUNCVM_KVM_DEVICE: kvmStandIn });
    const flags = ['--runc-binary', fcWrapper, '--with-ns', `network:${net.nsPath}`, '--env', 'RUNCVM_HYPERVISOR=firecracker', '--env', 'RUNCVM_LOG_LEVEL=DEBUG'];
    const r = await cd.ctr(['run', '--rm', ...flags, ...bind(pvc, '/data'), busybox, `volnfs${++seq}`, 'true'], { reject: false, timeoutMs: 120_000 });
    // the fake stops at KVM (exit 125), after create accepted the volume and the launcher served it over NFS
    expect(r.exitCode, r.stderr).toBe(125);
    expect(r.stderr).not.toContain('not supported with RUNCVM_HYPERVISOR');
    expect(r.stderr).toMatch(/volume shared transport=nfs destination=\/data export=169\.254\.1\.254:\/\.runcvm\/vols\/v0-pv-fc/);
    expect(r.stderr).toContain('KVM is not available on this node');
    expect(await readDebugLogs(fx)).toMatch(/\[RunCVM-Runtime\] FIRECRACKER: PVC Redirect: \/data -> \/\.runcvm\/vols\/v0-pv-fc/);
  }, 150_000);

  it('leaves nothing behind (no QEMU, no state, no namespaces)', async () => {
    const left = await leftovers(fx);
    expect(left.qemu).toEqual([]);
    expect(left.state).toEqual([]);
    const ps = await run('ps', ['-eo', 'pid,args'], { reject: false });
    expect(ps.stdout.split('\n').filter((l) => l.includes(fx.dir) || l.includes('fake-firecracker.mjs'))).toEqual([]);
    await net.destroy();
    expect((await leftoverNamespaces()).filter((n) => n.startsWith(net.pod.replace(/-pod$/, '')))).toEqual([]);
  });
});
