/**
 * QEMU's side of VM templates (issue 17, docs/dev/notes/templates.md): a restore (`-incoming defer`, the device state
 * over fd 3, the RAM mapped privately from the template's file, `cont`), a save (`stop`, migrate the device state to
 * a pipe the builder copies into the state file, `quit`), and the backend's part of the template key.
 */
import { closeSync, createWriteStream, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { runcvmErrors } from '../../errors.js';
import { IO_PORT_NAME, TEMPLATE_CMDLINE_FLAG } from '../../guest/contract.js';
import { startProcess, type VmProcess } from '../process.js';
import type { HypervisorPlan, RunningVm, StartOptions, TemplateFiles, TemplateShape, VmPlan } from '../types.js';
import { Qmp, restoreCommands, saveCommands, waitMigration, type QmpCommand } from './qmp.js';

const { fail } = runcvmErrors;

/** bounds: QMP up after the spawn, the device state loaded (~64 KiB, ms normally), a save */
export const QMP_CONNECT_MS = 10_000;
export const LOAD_MS = 20_000;
export const SAVE_MS = 60_000;

/** The words of a cold boot's command line that a template covers (the rest make the VM boot cold). */
const SHAPE_WORDS = /^(console=|root=|panic=|reboot=|runcvm\.upper=|quiet$|loglevel=0$|tsc_early_khz=|tsc=reliable$|runcvm\.modules=|runcvm\.template=1$)/;
/** per-container words that travel in the RESUME frame instead */
const RESUME_WORDS = /^runcvm\.net\./;

/** The template command line of a VM: its shape words only (network words stripped; they go in RESUME). */
export function shapeCmdline(cmdline: string): string {
  return cmdline.split(' ').filter((w) => w && !RESUME_WORDS.test(w) && w !== TEMPLATE_CMDLINE_FLAG).join(' ');
}

/**
 * The QEMU part of the template key: what must be equal for a saved VM to fit (the machine, the device shape and
 * the template command line; QEMU's version comes with the guest package's id, which the key holds), or why this
 * VM always boots cold. Pure.
 */
export function qemuTemplateShape(vm: VmPlan): TemplateShape {
  if (vm.shares && vm.shares.length > 0) return { ok: false, reason: 'virtiofs volume (virtiofs blocks QEMU migration)' };
  const words = vm.cmdline.split(' ').filter((w) => w && !RESUME_WORDS.test(w));
  if (words.some((w) => w.startsWith('runcvm.break='))) return { ok: false, reason: 'RUNCVM_BREAK is set' };
  if (words.some((w) => w.startsWith('runcvm.debug='))) return { ok: false, reason: 'debug logging (RUNCVM_LOG_LEVEL=DEBUG)' };
  if (!words.includes('quiet')) return { ok: false, reason: 'kernel debug (RUNCVM_KERNEL_DEBUG)' };
  const other = words.filter((w) => !SHAPE_WORDS.test(w));
  if (other.length > 0) return { ok: false, reason: `kernel command line words a template cannot carry (RUNCVM_KERNEL_APPEND: ${other.join(' ')})` };
  return {
    ok: true,
    shape: {
      hypervisor: 'qemu',
      machine: 'microvm,pit=on,pic=off,rtc=on',
      accel: vm.accel,
      vcpus: vm.vcpus,
      memoryMiB: vm.memoryMiB,
      cmdline: shapeCmdline(vm.cmdline),
      disks: vm.disks.map((d) => ({ readOnly: d.readOnly, cache: d.readOnly ? null : (d.cache ?? 'unsafe') })),
      nics: (vm.nics ?? []).length,
      io: vm.io.portName || IO_PORT_NAME,
      agent: vm.agent ? vm.agent.portName : null,
    },
  };
}

async function run(q: Qmp, cmds: QmpCommand[], opts: StartOptions): Promise<void> {
  for (const c of cmds) {
    opts.onControl?.(JSON.stringify(c));
    await q.execute(c);
  }
}

function runningVm(p: VmProcess, extra: Partial<RunningVm> = {}): RunningVm {
  return { pid: p.pid, exited: p.exited, running: p.running, kill: p.kill, explainExit: () => undefined, ...extra };
}

/** start() for a plan with a control socket: a template restore (plan.restore) or a template build (save later). */
export async function qemuStart(plan: HypervisorPlan, opts: StartOptions): Promise<RunningVm> {
  if (!plan.control) throw new Error('qemu: a template plan needs its QMP socket');
  const control = plan.control;
  if (plan.restore) return restore(plan, control, plan.restore, opts);
  // build: the state is saved over a unix socket next to the QMP one (qmp.ts saveCommands)
  const p = await startProcess(plan, opts);
  const save = async (to: TemplateFiles): Promise<void> => {
    const socket = saveSocket(control);
    let q: Qmp | undefined;
    let server: Server | undefined;
    try {
      await rm(socket, { force: true });
      let written!: Promise<void>;
      const connected = new Promise<void>((resolve) => {
        server = createServer((c) => {
          written = pipeline(c, createWriteStream(to.state, { mode: 0o600 }));
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(socket, () => resolve());
      });
      q = await Qmp.connect(control, QMP_CONNECT_MS);
      await run(q, saveCommands(socket), opts);
      await waitMigration(q, SAVE_MS);
      await connected;
      opts.onControl?.('{"execute":"quit"}');
      await q.execute({ execute: 'quit' }).catch(() => undefined); // QEMU may close before it answers
      await p.exited;
      await written;
    } catch (err) {
      p.kill();
      await p.exited;
      throw err;
    } finally {
      q?.close();
      server?.close();
      await rm(socket, { force: true }).catch(() => undefined);
    }
  };
  return runningVm(p, { save });
}

async function restore(plan: HypervisorPlan, control: string, files: TemplateFiles, opts: StartOptions): Promise<RunningVm> {
  const loadError = (reason: string) => fail('TEMPLATE_LOAD', { template: files.state, name: 'qemu', reason });
  let fd: number;
  try {
    fd = openSync(files.state, 'r');
  } catch (err) {
    throw loadError(`cannot open the state file: ${(err as Error).message}`);
  }
  let p: VmProcess;
  try {
    p = await startProcess(plan, opts, [fd]);
  } finally {
    closeSync(fd); // QEMU has its own copy
  }
  let q: Qmp | undefined;
  try {
    q = await Promise.race([
      Qmp.connect(control, QMP_CONNECT_MS),
      p.exited.then((e) => Promise.reject(new Error(`QEMU exited (${e.signal ?? `code ${e.code}`}): ${lastLine(e.output)}`))),
    ]);
    await run(q, restoreCommands(), opts);
    await waitMigration(q, LOAD_MS);
    opts.onControl?.('{"execute":"cont"}');
    await q.execute({ execute: 'cont' });
    return runningVm(p);
  } catch (err) {
    p.kill();
    const e = await p.exited;
    const why = (err as Error).message;
    throw loadError(e.output.trim() && !why.includes('QEMU exited') ? `${why}; QEMU: ${lastLine(e.output)}` : why);
  } finally {
    q?.close();
  }
}

/** the template build's migration socket, next to QMP's */
export function saveSocket(control: string): string {
  const i = control.lastIndexOf('/');
  return `${i >= 0 ? control.slice(0, i) : '.'}/save.sock`;
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}
