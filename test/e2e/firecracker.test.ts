/**
 * The Firecracker backend (hypervisor/firecracker: plan → start → RunningVm) against the fake Firecracker
 * (test/fixtures/fake-firecracker), over real Unix sockets. The fake checks every request and the --config-file
 * against schemas/firecracker-api.json with its own interpreter and enforces Firecracker's ordering rules; it cannot
 * boot a guest. What this proves and what it does not: docs/firecracker.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { firecracker } from '../../src/runcvm/hypervisor/firecracker/index.js';
import { FirecrackerClient } from '../../src/runcvm/hypervisor/firecracker/client.js';
import { exitError } from '../../src/runcvm/hypervisor/firecracker/errors.js';
import { fromVmPlan, planFirecracker } from '../../src/runcvm/hypervisor/firecracker/plan.js';
import { requestViolations, violations, type HttpMethod } from '../../src/runcvm/hypervisor/firecracker/schema.js';
import { type HypervisorPlan, type VmPlan } from '../../src/runcvm/hypervisor/index.js';
import { waitFor } from '../harness/wait.js';
import { FAKE_FIRECRACKER, fakeVmPlan, firecrackerStarter, rawApi as raw, readFakeLog as readLog } from '../harness/fake-firecracker.js';

const FAKE = FAKE_FIRECRACKER;
const GUIDE_ERROR = 'Error: RunWithoutApiError(BuildMicroVMFromJson(StartMicroVM(Kvm(Kvm(Error(19))))))';


const closers = new CloserStack();
const { start, startFails } = firecrackerStarter(closers);
let dir: string;
/** the node's KVM state is set by each test, never taken from the machine: a stand-in device the fake opens, a missing one */
let kvmStandIn: string;
let kvmMissing: string;
let n = 0;

beforeAll(async () => {
  dir = await tempDir('runcvm-fc', closers);
  for (const f of ['vmlinux', 'initramfs.img', 'base.ext4', 'upper.ext4', 'kvm-stand-in']) writeFileSync(join(dir, f), '');
  kvmStandIn = join(dir, 'kvm-stand-in');
  kvmMissing = join(dir, 'no-kvm-here');
});
afterAll(async () => {
  await closers.close();
});

/** A fresh work dir (the container's state dir: Firecracker's sockets must not exist beforehand) and VmPlan. */
async function setup(env: Record<string, string> = {}): Promise<{ vm: VmPlan; plan: HypervisorPlan; log: string; work: string }> {
  const work = await tempDir(`vm${n++}`, undefined, dir);
  const log = join(work, 'requests.jsonl');
  const vm = fakeVmPlan(dir, work, `ctr-${n}`, { vcpus: 2, memoryMiB: 256 });
  // the backend's own plan, with the fake in place of /.runcvm/firecracker
  const planned = firecracker.plan(vm);
  const plan: HypervisorPlan = { ...planned, argv: [FAKE, ...planned.argv.slice(1)], env: { ...process.env, FAKE_FC_LOG: log, FAKE_FC_REQUIRE_ROOT: '1', FAKE_FC_KVM_DEVICE: kvmStandIn, ...env } as Record<string, string> };
  return { vm, plan, log, work };
}




describe('the Firecracker backend against the schema-checking fake', () => {
  it('boots from its --config-file (schema-valid, 0600), its API answers, and shutdown ends it gracefully', async () => {
    const { vm, plan, log, work } = await setup();
    const running = await start(plan);
    const file = join(work, 'firecracker.json');
    const doc: unknown = JSON.parse(readFileSync(file, 'utf8'));
    expect(violations('VmmConfigFile', doc)).toEqual([]);
    expect(doc).toEqual(planFirecracker(fromVmPlan(vm)).configFile);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readLog(log)[0]).toMatchObject({ method: 'CONFIG' });
    expect(await new FirecrackerClient(plan.control!).get('/', 'InstanceInfo')).toMatchObject({ state: 'Running', id: vm.containerId });
    expect(running.shutdown).toBeDefined();
    expect(await running.shutdown!(30_000)).toEqual({ sent: true, graceful: true, alreadyExited: false });
    expect(await running.exited).toMatchObject({ code: 0 });
    expect(readLog(log).at(-1)).toMatchObject({ method: 'PUT', path: '/actions', body: { action_type: 'SendCtrlAltDel' }, status: 204 });
    // the sockets Firecracker leaves behind are gone once its exit is seen
    for (const p of plan.cleanup) expect(existsSync(p), p).toBe(false);
  });

  it('the same configuration as API calls (what `runcvm plan` prints) is accepted by the API, in order, each schema-valid', async () => {
    const { vm, plan, log, work } = await setup();
    const sock = join(work, 'api-only.sock');
    const { spawnChild } = await import('../../src/core/exec/index.js');
    const child = await spawnChild(FAKE, ['--api-sock', sock], { env: plan.env });
    closers.push('kill api-mode fake', () => child.kill('SIGKILL'));
    const client = new FirecrackerClient(sock);
    await client.waitReady({ timeoutMs: 30_000 });
    for (const call of planFirecracker(fromVmPlan(vm)).calls) await client.call(call);
    const entries = readLog(log);
    expect(entries.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual([
      'GET / 200',
      'PUT /machine-config 204',
      'PUT /boot-source 204',
      'PUT /drives/base 204',
      'PUT /drives/upper 204',
      'PUT /network-interfaces/net0 204',
      'PUT /vsock 204',
      'PUT /actions 204',
    ]);
    for (const e of entries) expect(requestViolations(e.method as HttpMethod, e.path, e.body)).toEqual([]);
    expect(entries.find((e) => e.path === '/network-interfaces/net0')?.body).toEqual({ iface_id: 'net0', host_dev_name: 'tap-eth0', guest_mac: '02:42:ac:11:00:02' });
    expect(entries.find((e) => e.path === '/machine-config')?.body).toEqual({ vcpu_count: 2, mem_size_mib: 256, smt: false });
    expect(entries.at(-1)?.body).toEqual({ action_type: 'InstanceStart' });
  });

  it('the guest agent channel: a guest connection to vsock port 1024 reaches the plan\'s io listen path', async () => {
    const { plan } = await setup({ FAKE_FC_GUEST_CONNECT: '1' });
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(plan.listen.io, r));
    closers.push('close agent listener', () => new Promise((r) => server.close(() => r(undefined))));
    const hello = new Promise<string>((resolve) => server.once('connection', (s) => s.once('data', (d: Buffer) => resolve(d.toString('utf8')))));
    const running = await start(plan);
    expect(await hello).toBe('READY\n');
    await running.shutdown!(30_000);
  });

  it('a guest that ignores Ctrl-Alt-Del is killed after the bounded wait', async () => {
    const { plan, log } = await setup({ FAKE_FC_IGNORE_CAD: '1' });
    const running = await start(plan);
    expect(await running.shutdown!(300)).toEqual({ sent: true, graceful: false, alreadyExited: false });
    expect(await running.exited).toMatchObject({ signal: 'SIGKILL' });
    expect(readLog(log).at(-1)?.body).toEqual({ action_type: 'SendCtrlAltDel' });
  });

  it('missing KVM: Firecracker exits 1 with Kvm(Error(19)) and start reports cause and fix', async () => {
    const { plan } = await setup({ FAKE_FC_NO_KVM: '1' });
    const err = await startFails(plan);
    expect(err.code).toBe('KVM_UNAVAILABLE');
    expect(err.exitCode).toBe(125);
    expect(err.causeText).toMatch(/^KVM is not available on this node \(no \/dev\/kvm\)/);
    expect(err.causeText).toContain('Kvm(Error(19))');
    expect(err.fix).toContain('ls -l /dev/kvm');
  });

  it('missing KVM with --no-api: exactly the guide\'s error text and exit 1, mapped to cause and fix', async () => {
    const { vm, work } = await setup({ FAKE_FC_NO_KVM: '1' });
    const cfg = join(work, 'vm.json');
    writeFileSync(cfg, JSON.stringify(planFirecracker(fromVmPlan(vm)).configFile));
    const r = await run(FAKE, ['--no-api', '--config-file', cfg], { reject: false, env: { FAKE_FC_NO_KVM: '1' } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(GUIDE_ERROR);
    const mapped = exitError({ exitCode: r.exitCode, signal: null, output: r.stderr });
    expect(mapped.render()).toMatch(/^error: firecracker cannot start the microVM: KVM is not available on this node \(no \/dev\/kvm\)\ncause: KVM is not available on this node \(no \/dev\/kvm\)/);
  });

  it('no KVM device at all (the fake opens a missing path): Kvm(Error(2)) is KVM_UNAVAILABLE, naming ENOENT', async () => {
    const { plan, log } = await setup({ FAKE_FC_KVM_DEVICE: kvmMissing });
    const err = await startFails(plan);
    expect(err.code).toBe('KVM_UNAVAILABLE');
    expect(err.exitCode).toBe(125);
    expect(err.causeText).toContain('Firecracker reported Kvm(Error(2)) (ENOENT, /dev/kvm does not exist)');
    // the configuration itself was accepted; the start failed on KVM
    expect(readLog(log).at(-1)).toMatchObject({ method: 'CONFIG' });
  });

  it('a KVM device that cannot be opened read/write (a folder): its errno is reported, the start fails', async () => {
    const { plan } = await setup({ FAKE_FC_KVM_DEVICE: dir });
    const err = await startFails(plan);
    expect(err.code).toBe('KVM_UNAVAILABLE');
    expect(err.causeText).toContain('Firecracker reported Kvm(Error(21)) (errno 21)');
  });

  it('KVM permission problems are told apart from missing KVM', async () => {
    const { plan } = await setup({ FAKE_FC_KVM_ERRNO: '13' });
    expect((await startFails(plan)).code).toBe('KVM_NO_ACCESS');
  });

  it('a missing disk file: Firecracker\'s own words, kept', async () => {
    const { vm, plan } = await setup();
    const bad = firecracker.plan({ ...vm, disks: [{ id: 'base', path: join(dir, 'nope.ext4'), readOnly: true }] });
    const err = await startFails({ ...plan, files: bad.files });
    expect(err.code).toBe('FIRECRACKER_EXITED');
    expect(err.message).toMatch(/^firecracker exited \(exit code 1\) before the microVM started: .*Unable to create the virtio block device: No such file or directory \(os error 2\)/);
  });

  it('a binary that exits at once is reported with its output', async () => {
    const { plan, work } = await setup();
    const broken = join(work, 'broken-firecracker');
    writeFileSync(broken, '#!/bin/sh\necho "firecracker: cannot do that" >&2\nexit 3\n', { mode: 0o755 });
    const err = await startFails({ ...plan, argv: [broken, ...plan.argv.slice(1)] });
    expect(err.code).toBe('FIRECRACKER_EXITED');
    expect(err.message).toBe('firecracker exited (exit code 3) before the microVM started: firecracker: cannot do that');
  });
});

describe('the fake enforces Firecracker\'s schema and rules (so passing tests mean something)', () => {
  let sock: string;
  beforeAll(async () => {
    const { plan, work } = await setup();
    sock = join(work, 'manual.sock');
    const { spawnChild } = await import('../../src/core/exec/index.js');
    const child = await spawnChild(FAKE, ['--api-sock', sock], { env: plan.env });
    closers.push('kill manual fake', () => child.kill('SIGKILL'));
    // The socket file appears at bind(), before listen(): only an answered request proves the fake is ready.
    await waitFor('fake Firecracker API on ' + sock, async () => (await raw(sock, 'GET', '/')).status === 200, { timeoutMs: 20_000 });
  });

  it('400 with {fault_message} for unknown fields, wrong types, missing fields, mismatched ids', async () => {
    const unknown = await raw(sock, 'PUT', '/boot-source', { kernel_image_path: join(dir, 'vmlinux'), bootargs: 'x' });
    expect(unknown.status).toBe(400);
    expect(unknown.body?.fault_message).toMatch(/unknown field `bootargs`/);
    expect((await raw(sock, 'PUT', '/machine-config', { vcpu_count: '1', mem_size_mib: 128 })).body?.fault_message).toMatch(/invalid type/);
    expect((await raw(sock, 'PUT', '/vsock', { uds_path: '/x' })).body?.fault_message).toMatch(/missing field `guest_cid`/);
    expect((await raw(sock, 'PUT', '/drives/a', { drive_id: 'b', is_root_device: false, is_read_only: true, path_on_host: join(dir, 'base.ext4') })).body?.fault_message).toBe(
      'The id from the path does not match the id from the body!',
    );
  });

  it('ordering: SendCtrlAltDel before boot, InstanceStart without a kernel, pre-boot resources after boot', async () => {
    expect((await raw(sock, 'PUT', '/actions', { action_type: 'SendCtrlAltDel' })).body?.fault_message).toBe('The requested operation is not supported before starting the microVM.');
    expect((await raw(sock, 'PUT', '/actions', { action_type: 'InstanceStart' })).body?.fault_message).toBe('Start microvm error: Cannot start microvm without kernel configuration.');
    expect((await raw(sock, 'PUT', '/boot-source', { kernel_image_path: join(dir, 'vmlinux') })).status).toBe(204);
    expect((await raw(sock, 'PUT', '/actions', { action_type: 'InstanceStart' })).body?.fault_message).toMatch(/runcvm contract.*root drive/);
    expect((await raw(sock, 'PUT', '/drives/root', { drive_id: 'root', is_root_device: true, is_read_only: true, path_on_host: join(dir, 'base.ext4') })).status).toBe(204);
    expect((await raw(sock, 'PUT', '/drives/r2', { drive_id: 'r2', is_root_device: true, is_read_only: true, path_on_host: join(dir, 'base.ext4') })).body?.fault_message).toBe('A root block device already exists!');
    expect((await raw(sock, 'PUT', '/actions', { action_type: 'InstanceStart' })).status).toBe(204);
    expect((await raw(sock, 'PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128 })).body?.fault_message).toBe('The requested operation is not supported after starting the microVM.');
    expect((await raw(sock, 'PUT', '/actions', { action_type: 'InstanceStart' })).status).toBe(400);
  });
});
