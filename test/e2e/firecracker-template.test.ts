/**
 * VM templates under Firecracker (issue 17) against the fake Firecracker (test/fixtures/fake-firecracker), over real
 * Unix sockets, driven as the builder and the launcher drive the backend: plan → start → (PARKED on the io channel)
 * → save; then a restore plan → start (load, drives checked, resume) → RESUME on the io channel → READY. The fake
 * checks every request against schemas/firecracker-api.json with its own interpreter, enforces Firecracker's snapshot
 * rules and writes/reads the files. What this proves and what it does not: docs/dev/notes/templates.md §3.7.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnChild } from '../../src/core/exec/index.js';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { isToolError, type ToolError } from '../../src/core/errors.js';
import { encodeFrame, FrameDecoder, type Frame } from '../../src/runcvm/agent/codec.js';
import { FrameType, ResumeKey, TEMPLATE_CMDLINE_FLAG } from '../../src/runcvm/guest/contract.js';
import { firecracker } from '../../src/runcvm/hypervisor/firecracker/index.js';
import { requestViolations, type HttpMethod } from '../../src/runcvm/hypervisor/firecracker/schema.js';
import { restoreStepsOf } from '../../src/runcvm/hypervisor/firecracker/start.js';
import { readFirecrackerVersion } from '../../src/runcvm/hypervisor/firecracker/version.js';
import { type HypervisorPlan, type TemplateFiles, type VmPlan } from '../../src/runcvm/hypervisor/index.js';
import { waitFor } from '../harness/wait.js';
import { FAKE_FIRECRACKER, fakeVmPlan, firecrackerStarter, rawApi as raw, readFakeLog as readLog } from '../harness/fake-firecracker.js';

const FAKE = FAKE_FIRECRACKER;


const closers = new CloserStack();
const { start, startFails } = firecrackerStarter(closers);
let dir: string;
let n = 0;

beforeAll(async () => {
  dir = await tempDir('runcvm-fc-tmpl', closers);
  for (const f of ['vmlinux', 'initramfs.img', 'base.ext4', 'upper.ext4', 'other-upper.ext4', 'kvm-stand-in']) writeFileSync(join(dir, f), '');
});
afterAll(async () => {
  await closers.close();
});

/** One container's VmPlan in its own state dir (its own io/vsock/API sockets); the disks are the shared test files. */
async function vmIn(over: Partial<VmPlan> = {}): Promise<{ vm: VmPlan; work: string; log: string }> {
  const work = await tempDir(`vm${n++}`, undefined, dir);
  const vm = fakeVmPlan(dir, work, `ctr-${n}`, { nics: [{ id: 'net0', tap: `tap-eth0-${n}`, mac: '02:42:ac:11:00:02' }], ...over });
  return { vm, work, log: join(work, 'requests.jsonl') };
}

/** the backend's own plan, with the fake in place of /.runcvm/firecracker */
function withFake(planned: HypervisorPlan, log: string, env: Record<string, string> = {}): HypervisorPlan {
  return {
    ...planned,
    argv: [FAKE, ...planned.argv.slice(1)],
    env: { ...process.env, FAKE_FC_LOG: log, FAKE_FC_REQUIRE_ROOT: '1', FAKE_FC_KVM_DEVICE: join(dir, 'kvm-stand-in'), FAKE_FC_GUEST_PARK: '1', ...env } as Record<string, string>,
  };
}


/** The launcher's side of the io channel: listens on plan.listen.io, hands out each connection's frames. */
async function ioListener(path: string): Promise<{ next(): Promise<{ socket: Socket; frames: AsyncIterator<Frame> }> }> {
  const server: Server = createServer();
  const pending: Socket[] = [];
  const waiting: ((s: Socket) => void)[] = [];
  server.on('connection', (s) => {
    const w = waiting.shift();
    if (w) w(s);
    else pending.push(s);
  });
  await new Promise<void>((r) => server.listen(path, r));
  closers.push(`close io listener ${path}`, () => new Promise((r) => server.close(() => r(undefined))));
  return {
    async next() {
      const socket = pending.shift() ?? (await new Promise<Socket>((r) => waiting.push(r)));
      closers.push('destroy io connection', () => socket.destroy());
      const decoder = new FrameDecoder();
      const queue: Frame[] = [];
      const wake: ((f: IteratorResult<Frame>) => void)[] = [];
      let ended = false;
      socket.on('data', (d: Buffer) => {
        for (const f of decoder.push(d)) {
          const w = wake.shift();
          if (w) w({ value: f, done: false });
          else queue.push(f);
        }
      });
      socket.on('close', () => {
        ended = true;
        for (const w of wake.splice(0)) w({ value: undefined, done: true });
      });
      const frames: AsyncIterator<Frame> = {
        next: () => {
          const f = queue.shift();
          if (f) return Promise.resolve({ value: f, done: false });
          if (ended) return Promise.resolve({ value: undefined, done: true });
          return new Promise((r) => wake.push(r));
        },
      };
      return { socket, frames };
    },
  };
}



function resumePayload(macs: string[]): Buffer {
  const entries = [`${ResumeKey.clockNs}=${process.hrtime.bigint()}`, `${ResumeKey.seed}=${'ab'.repeat(64)}`, ...macs.map((m) => `${ResumeKey.mac}=${m}`), `${ResumeKey.net}=runcvm.net.if=eth0,${macs[0]},1500,172.17.0.2/16`];
  return Buffer.from(entries.map((e) => `${e}\0`).join(''), 'utf8');
}

/** Builds a template the way the builder does: boot parked, wait for PARKED, save. */
async function buildTemplate(): Promise<{ files: TemplateFiles; vm: VmPlan; log: string }> {
  const { vm, work, log } = await vmIn();
  const files = { state: join(work, 'state'), memory: join(work, 'memory') };
  const plan = withFake(firecracker.plan({ ...vm, templateBuild: { memory: files.memory } }), log);
  const io = await ioListener(plan.listen.io);
  const running = await start(plan);
  const { frames } = await io.next();
  const first = await frames.next();
  expect(first.value?.type).toBe(FrameType.PARKED);
  await running.save!(files);
  expect(running.running()).toBe(false);
  return { files, vm, log };
}

describe('a Firecracker template: build → save → load → resume, as the builder and the launcher drive it', () => {
  let built: Awaited<ReturnType<typeof buildTemplate>>;
  beforeAll(async () => {
    built = await buildTemplate();
  });

  it('the build boots parked (runcvm.template=1), and save pauses, creates a Full snapshot and ends Firecracker', () => {
    const entries = readLog(built.log);
    const config = entries.find((e) => e.method === 'CONFIG')?.body as { 'boot-source': { boot_args: string } };
    expect(config['boot-source'].boot_args.split(' ')).toContain(TEMPLATE_CMDLINE_FLAG);
    expect(entries.filter((e) => e.method === 'PATCH' || e.path.startsWith('/snapshot')).map((e) => [e.method, e.path, e.status, e.body])).toEqual([
      ['PATCH', '/vm', 204, { state: 'Paused' }],
      ['PUT', '/snapshot/create', 204, { snapshot_type: 'Full', snapshot_path: built.files.state, mem_file_path: built.files.memory }],
    ]);
    for (const e of entries.filter((x) => x.method === 'PATCH' || x.method === 'PUT')) expect(requestViolations(e.method as HttpMethod, e.path, e.body)).toEqual([]);
    // the memory file holds the guest's RAM size (sparse in the fake), the state file is there
    expect(statSync(built.files.memory).size).toBe(64 * 1024 * 1024);
    expect(statSync(built.files.state).size).toBeGreaterThan(0);
  });

  it('a restore in another container (own state dir, tap and vsock socket): load, drives checked, resume, RESUME → READY, graceful stop', async () => {
    const { vm, log } = await vmIn();
    // the same shape as the template: the key matches
    expect(firecracker.templateShape!(vm)).toEqual(firecracker.templateShape!(built.vm));
    const plan = withFake(firecracker.plan({ ...vm, template: built.files }), log);
    const io = await ioListener(plan.listen.io);
    const running = await start(plan);
    expect(running.running()).toBe(true);

    // Firecracker reset the vsock connections: the guest connects again and waits for RESUME
    const resume = await io.next();
    resume.socket.write(encodeFrame(FrameType.RESUME, 0, resumePayload([vm.nics![0]!.mac])));
    // the resumed guest then runs its init, which opens the channel as on a cold boot
    const init = await io.next();
    expect((await init.frames.next()).value?.type).toBe(FrameType.READY);

    const entries = readLog(log);
    expect(entries.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual([
      'GET / 200',
      'PUT /snapshot/load 204',
      'GET /vm/config 200',
      'PATCH /vm 204',
      'GET / 200',
      'RESUME vsock:1024 0',
    ]);
    for (const e of entries.filter((x) => x.method === 'PATCH' || x.method === 'PUT')) expect(requestViolations(e.method as HttpMethod, e.path, e.body)).toEqual([]);
    // exactly the plan's load request, with this container's vsock socket and tap
    const load = entries[1]!.body as { vsock_override: { uds_path: string }; network_overrides: { host_dev_name: string }[]; resume_vm: boolean };
    expect(load).toEqual(restoreStepsOf(plan).load);
    expect(load.vsock_override.uds_path).toBe(plan.cleanup[1]);
    expect(load.network_overrides).toEqual([{ iface_id: 'net0', host_dev_name: vm.nics![0]!.tap }]);
    expect(entries[3]!.body).toEqual({ state: 'Resumed' });
    // the guest got what the launcher sent
    expect(entries[5]!.body).toMatchObject({ [ResumeKey.mac]: [vm.nics![0]!.mac], [ResumeKey.seed]: ['ab'.repeat(64)] });

    expect(await running.shutdown!(30_000)).toEqual({ sent: true, graceful: true, alreadyExited: false });
    for (const p of plan.cleanup) expect(existsSync(p), p).toBe(false);
  });

  it('two restores of one template at once: each its own process, sockets and guest channel; the template files unchanged', async () => {
    const before = readFileSync(built.files.state);
    const vms = await Promise.all([vmIn(), vmIn()]);
    const runs = await Promise.all(
      vms.map(async ({ vm, log }) => {
        const plan = withFake(firecracker.plan({ ...vm, template: built.files }), log);
        const io = await ioListener(plan.listen.io);
        const running = await start(plan);
        const resume = await io.next();
        resume.socket.write(encodeFrame(FrameType.RESUME, 0, resumePayload([vm.nics![0]!.mac])));
        expect(((await (await io.next()).frames.next()).value as Frame).type).toBe(FrameType.READY);
        return running;
      }),
    );
    expect(new Set(runs.map((r) => r.pid)).size).toBe(2);
    for (const r of runs) await r.shutdown!(30_000);
    expect(readFileSync(built.files.state)).toEqual(before);
  });

  it('a corrupt state file: TEMPLATE_LOAD naming Firecracker\'s refusal; Firecracker ended, sockets gone', async () => {
    const { vm, work, log } = await vmIn();
    const bad = { state: join(work, 'bad-state'), memory: built.files.memory };
    writeFileSync(bad.state, readFileSync(built.files.state, 'utf8').replace('"guest"', '"gvest"'));
    const plan = withFake(firecracker.plan({ ...vm, template: bad }), log);
    const err = await startFails(plan);
    expect(err.code).toBe('TEMPLATE_LOAD');
    expect(err.exitCode).toBe(125);
    expect(err.message).toMatch(/^the VM template .*bad-state could not be loaded by firecracker: firecracker rejected PUT \/snapshot\/load: Load snapshot error: Failed to restore from snapshot: .*CRC64 validation failed/);
    expect(readLog(log).map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual(['GET / 200', 'PUT /snapshot/load 400']);
    for (const p of plan.cleanup) expect(existsSync(p), p).toBe(false);
  });

  it('a memory file shorter than the guest: TEMPLATE_LOAD', async () => {
    const { vm, work, log } = await vmIn();
    const short = { state: built.files.state, memory: join(work, 'short-memory') };
    writeFileSync(short.memory, 'fake guest memory of x\n');
    const err = await startFails(withFake(firecracker.plan({ ...vm, template: short }), log));
    expect(err.code).toBe('TEMPLATE_LOAD');
    expect(err.message).toMatch(/Total sum of memory regions exceeds largest possible file offset/);
  });

  it('a container whose disks are elsewhere than the template\'s: refused before the guest runs (never on the builder\'s disks)', async () => {
    const { vm, log } = await vmIn();
    const other = { ...vm, disks: [vm.disks[0]!, { ...vm.disks[1]!, path: join(dir, 'other-upper.ext4') }] };
    const err = await startFails(withFake(firecracker.plan({ ...other, template: built.files }), log));
    expect(err.code).toBe('TEMPLATE_LOAD');
    expect(err.message).toContain(`the template's drives are base=${join(dir, 'base.ext4')} (ro), upper=${join(dir, 'upper.ext4')}; this container's are base=${join(dir, 'base.ext4')} (ro), upper=${join(dir, 'other-upper.ext4')}`);
    // loaded paused and never resumed
    expect(readLog(log).map((e) => `${e.method} ${e.path}`)).toEqual(['GET /', 'PUT /snapshot/load', 'GET /vm/config']);
    // and the key would not have matched in the first place
    expect(firecracker.templateShape!(other)).not.toEqual(firecracker.templateShape!(built.vm));
  });

  it('a save Firecracker refuses (its folder is gone): FIRECRACKER_API with Firecracker\'s words, and the process is ended anyway', async () => {
    const { vm, work, log } = await vmIn();
    const plan = withFake(firecracker.plan({ ...vm, templateBuild: { memory: join(work, 'memory') } }), log);
    const io = await ioListener(plan.listen.io);
    const running = await start(plan);
    expect((await (await io.next()).frames.next()).value?.type).toBe(FrameType.PARKED);
    const err = await running.save!({ state: join(work, 'gone', 'state'), memory: join(work, 'memory') }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isToolError(err) && err.code).toBe('FIRECRACKER_API');
    expect((err as ToolError).message).toBe(
      'firecracker rejected PUT /snapshot/create: Create snapshot error: Cannot perform open on the snapshot backing file: No such file or directory (os error 2)',
    );
    expect(running.running()).toBe(false);
    expect(existsSync(join(work, 'memory'))).toBe(false);
    for (const p of plan.cleanup) expect(existsSync(p), p).toBe(false);
  });

  it('the version for the key: `firecracker --version` of the binary', async () => {
    expect(await readFirecrackerVersion(FAKE)).toBe('1.16.1');
  });
});

describe("the fake enforces Firecracker's snapshot rules (so passing tests mean something)", () => {
  async function apiFake(): Promise<{ sock: string; exited: Promise<number | null> }> {
    const work = await tempDir(`raw${n++}`, undefined, dir);
    const sock = join(work, 'api.sock');
    const child = await spawnChild(FAKE, ['--api-sock', sock], { env: { ...process.env, FAKE_FC_KVM_DEVICE: join(dir, 'kvm-stand-in') } });
    closers.push('kill raw fake', () => child.kill('SIGKILL'));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('fake Firecracker API on ' + sock, async () => (await raw(sock, 'GET', '/').catch(() => ({ status: 0 }))).status === 200, { timeoutMs: 20_000 });
    return { sock, exited };
  }
  const PRE = 'The requested operation is not supported before starting the microVM.';
  const POST = 'The requested operation is not supported after starting the microVM.';

  it('pause and create are post-boot only; create needs the VM Paused; load is pre-boot only', async () => {
    const { sock } = await apiFake();
    const files = { snapshot_path: join(dir, 'x-state'), mem_file_path: join(dir, 'x-mem') };
    expect((await raw(sock, 'PATCH', '/vm', { state: 'Paused' })).body?.fault_message).toBe(PRE);
    expect((await raw(sock, 'PUT', '/snapshot/create', files)).body?.fault_message).toBe(PRE);
    expect((await raw(sock, 'PUT', '/logger', { level: 'Warning' })).status).toBe(204);
    expect((await raw(sock, 'PUT', '/boot-source', { kernel_image_path: join(dir, 'vmlinux') })).status).toBe(204);
    expect((await raw(sock, 'PUT', '/actions', { action_type: 'InstanceStart' })).status).toBe(204);
    expect((await raw(sock, 'PUT', '/snapshot/create', files)).body?.fault_message).toBe(
      'Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running',
    );
    expect((await raw(sock, 'PATCH', '/vm', { state: 'Paused' })).status).toBe(204);
    expect((await raw(sock, 'GET', '/')).body?.state).toBe('Paused');
    expect((await raw(sock, 'PUT', '/snapshot/create', files)).status).toBe(204);
    expect((await raw(sock, 'PUT', '/snapshot/load', { snapshot_path: files.snapshot_path, mem_backend: { backend_type: 'File', backend_path: files.mem_file_path } })).body?.fault_message).toBe(POST);
    expect((await raw(sock, 'PATCH', '/vm', { state: 'Resumed' })).status).toBe(204);
    expect((await raw(sock, 'GET', '/')).body?.state).toBe('Running');
  });

  it('load only before any resource but the logger and metrics; bodies checked against the schema', async () => {
    const { sock } = await apiFake();
    const body = { snapshot_path: join(dir, 'none'), mem_backend: { backend_type: 'File', backend_path: join(dir, 'none') } };
    expect((await raw(sock, 'PUT', '/snapshot/load', { ...body, mem_file_path: 'x' })).body?.fault_message).toMatch(/unknown field `mem_file_path`/);
    expect((await raw(sock, 'PUT', '/snapshot/create', { snapshot_path: 'x' })).body?.fault_message).toMatch(/missing field `mem_file_path`/);
    expect((await raw(sock, 'PATCH', '/vm', { state: 'Running' })).body?.fault_message).toMatch(/unknown variant `Running`/);
    expect((await raw(sock, 'PUT', '/metrics', { metrics_path: join(dir, 'metrics') })).status).toBe(204);
    expect((await raw(sock, 'PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 64 })).status).toBe(204);
    expect((await raw(sock, 'PUT', '/snapshot/load', body)).body?.fault_message).toBe('Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources.');
  });

  it('a failed load answers, then ends the process (Firecracker: "too dirty to recover")', async () => {
    const { sock, exited } = await apiFake();
    const r = await raw(sock, 'PUT', '/snapshot/load', { snapshot_path: join(dir, 'none'), mem_backend: { backend_type: 'File', backend_path: join(dir, 'none') } });
    expect(r.status).toBe(400);
    expect(r.body?.fault_message).toBe('Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: Failed to open snapshot file: No such file or directory (os error 2)');
    expect(await exited).toBe(1);
  });
});
