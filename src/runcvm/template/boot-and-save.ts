/**
 * Making and checking a VM template (issue 17, docs/dev/notes/templates.md §3.3): `bootAndSave` boots a VM parked in
 * its initramfs (VmPlan.templateBuild), waits for the guest's PARKED frame on the io port, and saves it
 * (RunningVm.save); `checkRestore` restores the saved files once and needs the guest to take the RESUME frame and go
 * on. Both run on placeholder disks and sockets in `opts.workDir` (the template's disks are never the container's:
 * constraint 2) and clean up every process, socket and placeholder file they made, on every path. `runcvm template
 * build` (template/store.ts) calls them; the store owns the folder, the manifest and the rename into place.
 *
 * The VmPlan is the container's shape as planVm makes it (the command line without network words: they travel in
 * RESUME); its paths (disks, sockets) are replaced here.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../../core/log/index.js';
import { FrameDecoder, FrameType } from '../agent/codec.js';
import { CONTAINER_PATHS } from '../launch/schema.js';
import type { Hypervisor, HypervisorPlan, RunningVm, TemplateFiles, VmPlan } from '../hypervisor/types.js';
import { encodeResume, RESUME_SEED_BYTES } from './resume.js';

export interface BootAndSaveOptions {
  /** a private, empty folder for the sockets and placeholder disks of the build (emptied again here) */
  workDir: string;
  /** the bound on boot → PARKED, and on restore → the guest's answer (default 90 s: TCG on a busy host) */
  timeoutMs?: number;
  /**
   * Where the guest package is when this runs outside a launcher container (the host's var/assets/guest or the
   * installed package): the plan's `/.runcvm/guest` paths (loader, QEMU, firmware, modules) are rewritten to it.
   */
  guestDir?: string;
  log?: Logger;
}

const DEFAULT_TIMEOUT_MS = 90_000;
/** placeholder disks: the parked guest has no block driver, a restored check only probes them */
const PLACEHOLDER_BYTES = 1024 * 1024;

export class TemplateBuildError extends Error {}

/** Boots `vm`'s shape parked (placeholder disks in workDir), waits for PARKED, saves it into `to`. */
export async function bootAndSave(vm: VmPlan, hv: Hypervisor, to: TemplateFiles, opts: BootAndSaveOptions): Promise<void> {
  if (!hv.templateShape) throw new TemplateBuildError(`${hv.name} cannot make templates`);
  const shape = hv.templateShape(vm);
  if (!shape.ok) throw new TemplateBuildError(`this VM cannot use a template: ${shape.reason}`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const session = await Session.open(vm, opts);
  try {
    const plan = session.plan(hv, { ...session.vm, templateBuild: { memory: to.memory } });
    const running = await hv.start(plan, { onStdout: (d) => session.consoleOut(d), onStderrLine: (l) => opts.log?.debug('template build: stderr', { text: l }), onControl: (r) => opts.log?.debug('template build: control request', { request: r }) });
    session.vmRunning = running;
    await session.wait(session.parked, running, timeoutMs, 'the guest did not park (no PARKED frame)');
    if (!running.save) throw new TemplateBuildError(`${hv.name} cannot save a VM`);
    await running.save(to);
    opts.log?.debug('template build: saved', { state: to.state, memory: to.memory });
  } catch (err) {
    await rm(to.state, { force: true }).catch(() => undefined);
    await rm(to.memory, { force: true }).catch(() => undefined);
    throw err;
  } finally {
    await session.close();
  }
}

/**
 * Restores `files` once with `vm`'s shape on placeholder disks, sends RESUME, and needs the guest to go on from the
 * template point: its initramfs then probes the (empty) placeholder root disk and reports it cannot mount it, which
 * is the answer this check waits for (nothing of a container exists here to reach READY).
 */
export async function checkRestore(vm: VmPlan, hv: Hypervisor, files: TemplateFiles, opts: BootAndSaveOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const session = await Session.open(vm, opts);
  try {
    const plan = session.plan(hv, { ...session.vm, template: files });
    const running = await hv.start(plan, { onStdout: (d) => session.consoleOut(d), onStderrLine: (l) => opts.log?.debug('template check: stderr', { text: l }), onControl: (r) => opts.log?.debug('template check: control request', { request: r }) });
    session.vmRunning = running;
    session.sendResume();
    await session.wait(session.wentOn, running, timeoutMs, 'the restored guest did not go on after RESUME');
  } finally {
    await session.close();
  }
}

/** The placeholder world of one build or check: disks, listening sockets, the VM; all removed by close(). */
class Session {
  private servers: Server[] = [];
  private socks: Socket[] = [];
  private paths: string[] = [];
  private consoleText = '';
  private io: Socket | undefined;
  vmRunning: RunningVm | undefined;
  vm!: VmPlan;
  parked!: Promise<void>;
  wentOn!: Promise<void>;
  private markParked!: () => void;
  private markWentOn!: () => void;

  private constructor(private readonly opts: BootAndSaveOptions) {}

  static async open(vm: VmPlan, opts: BootAndSaveOptions): Promise<Session> {
    if (!opts.guestDir && !existsSync(CONTAINER_PATHS.loader)) {
      throw new TemplateBuildError(`no guest package at ${CONTAINER_PATHS.guest} (outside a launcher container): pass guestDir, the node's guest package folder`);
    }
    const s = new Session(opts);
    s.parked = new Promise((r) => (s.markParked = r));
    s.wentOn = new Promise((r) => (s.markWentOn = r));
    try {
      const disks: VmPlan['disks'] = [];
      for (const [i, d] of vm.disks.entries()) {
        const path = join(opts.workDir, `disk${i}.img`);
        s.paths.push(path);
        await writeFile(path, '', { mode: 0o600 });
        await truncate(path, PLACEHOLDER_BYTES);
        disks.push({ ...d, path });
      }
      const sock = (name: string) => {
        const p = join(opts.workDir, name);
        s.paths.push(p);
        return p;
      };
      const io = sock('io.sock');
      const consoleSock = sock('console.sock');
      s.paths.push(join(opts.workDir, 'qmp.sock'));
      s.vm = {
        ...vm,
        disks,
        console: { socket: consoleSock },
        io: { ...vm.io, socket: io },
        // no taps: the NICs carry no traffic (and nothing is created in the caller's network namespace)
        ...(vm.nics ? { nics: vm.nics.map((n) => ({ ...n, tap: '' })) } : {}),
        ...(vm.agent ? { agent: { ...vm.agent, socket: sock('agent.sock') } } : {}),
      };
      delete s.vm.shares;
      delete s.vm.template;
      delete s.vm.templateBuild;
      await s.listen(io, (c) => s.attachIo(c));
      await s.listen(consoleSock, (c) => c.on('data', (d: Buffer) => s.consoleOut(d)));
      if (s.vm.agent) await s.listen(s.vm.agent.socket, () => undefined);
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  plan(hv: Hypervisor, vm: VmPlan): HypervisorPlan {
    const p = hv.plan(vm);
    const dir = this.opts.guestDir;
    if (!dir) return p;
    const re = (v: string) => v.split(CONTAINER_PATHS.guest).join(dir);
    return { ...p, argv: p.argv.map(re), env: Object.fromEntries(Object.entries(p.env).map(([k, v]) => [k, re(v)])) };
  }

  private async listen(path: string, use: (c: Socket) => void): Promise<void> {
    await rm(path, { force: true });
    const server = createServer((c) => {
      this.socks.push(c);
      c.on('error', () => undefined);
      use(c);
    });
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  }

  private attachIo(c: Socket): void {
    this.io = c;
    const dec = new FrameDecoder();
    c.on('data', (d: Buffer) => {
      try {
        for (const f of dec.push(d)) if (f.type === FrameType.PARKED) this.markParked();
      } catch {
        c.destroy();
      }
    });
  }

  consoleOut(d: Buffer): void {
    this.consoleText = (this.consoleText + d.toString('utf8')).slice(-4000);
    // the initramfs went on past runcvm-resume: it probed the placeholder root disk (empty, so it cannot mount it)
    if (/\[runcvm-initramfs\] error: (cannot mount root|root device)/.test(this.consoleText)) this.markWentOn();
  }

  sendResume(): void {
    const frame = encodeResume({ clockNs: BigInt(Date.now()) * 1_000_000n, seed: randomBytes(RESUME_SEED_BYTES), macs: [], net: [] });
    if (this.io) this.io.write(frame);
    else void this.waitIo().then((io) => io.write(frame));
  }

  private async waitIo(): Promise<Socket> {
    while (!this.io) await new Promise((r) => setTimeout(r, 10));
    return this.io;
  }

  async wait(what: Promise<void>, vm: RunningVm, timeoutMs: number, failure: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      what.then(() => 'ok' as const),
      vm.exited.then((e) => `${failure}: the VM exited (${e.signal ?? `code ${e.code}`}) ${lastLine(e.output)}`),
      new Promise<string>((r) => (timer = setTimeout(() => r(`${failure} within ${timeoutMs} ms`), timeoutMs))),
    ]);
    if (timer) clearTimeout(timer);
    if (outcome !== 'ok') {
      const console = lastLine(this.consoleText);
      throw new TemplateBuildError(console ? `${outcome}; console: ${console}` : outcome);
    }
  }

  async close(): Promise<void> {
    if (this.vmRunning) {
      this.vmRunning.kill();
      await this.vmRunning.exited;
    }
    for (const c of this.socks) c.destroy();
    for (const s of this.servers) s.close();
    for (const p of this.paths) await rm(p, { force: true }).catch(() => undefined);
  }
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}
