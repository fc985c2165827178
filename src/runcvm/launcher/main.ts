/**
 * The launcher: PID 1 of the container that runc starts (as root, from the read-only package at /.runcvm/guest,
 * through the bundled loader). LaunchSpec → accel decision → VmPlan → network and volumes (each undone on every
 * path) → the hypervisor's plan → GuestChannel (listening before the start) → Hypervisor.start → relay until the
 * VM ends → the workload's exit code (128+N for a signal). It talks only to the Hypervisor (hypervisor/) and to the
 * GuestChannel (channel.ts); a hypervisor that dies without the workload's exit report ends the container non-zero
 * with a one-line reason.
 *
 * Bundled by esbuild into /.runcvm/guest/lib/runcvm/launcher.mjs (scripts/assets/30-runtime.sh).
 */
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { Logger } from '../../core/log/index.js';
import { run } from '../../core/exec/index.js';
import { CloserStack } from '../../core/fsx/index.js';
import { isToolError, type ToolError } from '../../core/errors.js';
import { runcvmErrors } from '../errors.js';
import { CONTAINER_PATHS, parseLaunchSpec, type LaunchSpec } from '../launch/schema.js';
import { decideAccel, cpuKhzFromCpuinfo } from '../hypervisor/accel.js';
import { gatherAccelFacts, readCpuinfo } from '../hypervisor/facts.js';
import { HYPERVISORS, planVm, type Hypervisor, type HypervisorPlan, type RunningVm, type VmExit } from '../hypervisor/index.js';
import { CTRL_ALT_DEL_GRACE_MS, describeStop, signalAction, stopExitCode, VMM_EXIT_AFTER_WORKLOAD_MS } from './plan-stop.js';
import { guestAddresses } from '../network/plan.js';
import { setUpNetwork, withNetwork } from '../network/setup.js';
import { setUpVolumes, withVolumes } from '../volumes/apply.js';
import { GuestChannel, type GuestEvents } from './channel.js';
import { checkTemplate, planRestore, startRestored, type RestorePlan } from './template.js';
import { launcherLogger } from './log.js';

const { fail } = runcvmErrors;

/** forwarded to the workload; numbers from the platform's table (the guest is Linux x86-64, as the host) */
const FORWARDED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

/** how long the last output may take to arrive once the hypervisor has exited */
const DRAIN_MS = 2000;

/**
 * Start-up phases, ms since this process started (performance.now()), logged once at info with the first output:
 * where a start's time goes (docs/dev/notes/templates.md §4). `at` is the process start (epoch ms) so a caller can
 * add the time before the launcher ran (ctr, the shim, create, runc).
 */
class Phases {
  private readonly marks: Record<string, number> = {};
  private logged = false;
  mark(name: string): void {
    this.marks[name] ??= Math.round(performance.now());
  }
  logOnce(log: Logger): void {
    if (this.logged) return;
    this.logged = true;
    log.info('start-up phases', { at: Math.round(performance.timeOrigin), ...this.marks });
  }
}
const phases = new Phases();

export async function launch(): Promise<number> {
  let spec: LaunchSpec | undefined;
  let log = launcherLogger(undefined);
  try {
    try {
      spec = parseLaunchSpec(readFileSync(CONTAINER_PATHS.launchSpec, 'utf8'));
    } catch (err) {
      throw fail('LAUNCH_SPEC', { path: CONTAINER_PATHS.launchSpec, problem: (err as Error).message.split('\n')[0] ?? '' });
    }
    log = launcherLogger(spec);
    return await runVm(spec, log);
  } catch (err) {
    // error texts name the container's debug log where the node keeps it (RUNCVM_LOG_DIR), known from the launch spec
    const debugLog = spec?.log.hostPath ?? `$RUNCVM_LOG_DIR/runcvm-${spec?.containerId ?? '<id>'}.debug`;
    const te: ToolError | undefined = isToolError(err) ? err.withDetails({ debugLog }) : undefined;
    const text = te ? te.render() : `error: ${(err as Error)?.stack ?? String(err)}`;
    log.debug('launcher failed', { error: text });
    process.stderr.write(text.split('\n').map((l) => `runcvm: ${l}`).join('\n') + '\n');
    return te?.exitCode ?? 125;
  }
}

async function runVm(spec: LaunchSpec, log: Logger): Promise<number> {
  const started = Date.now();
  phases.mark('main');
  const hv = HYPERVISORS[spec.vm.hypervisor];
  if (!existsSync(hv.binary)) throw fail('HYPERVISOR_NOT_INSTALLED', { name: hv.name, path: hv.binary });
  if (!existsSync(spec.kernel.path)) throw fail('NO_KERNEL', { path: spec.kernel.path, reason: 'the kernel is not visible inside the container.' });

  const cpuinfo = readCpuinfo();
  const decision = decideAccel(spec.vm.accel, gatherAccelFacts(cpuinfo));
  if (!decision.ok) throw fail('KVM_REQUIRED', { reason: decision.reason });
  log.info(`accelerator: ${decision.accel} (${decision.reason})`);
  const tscKhz = cpuKhzFromCpuinfo(cpuinfo);
  const vmPlan = planVm(spec, decision.accel, tscKhz ? { tscKhz } : {});

  // the template's file checks run while the network and volumes are set up (they need neither)
  const checks = spec.template ? checkTemplate(spec.template.key) : undefined;
  const undo = new CloserStack();
  try {
    // networking (src/runcvm/network): the container's eth* go to the VM before it starts
    const network = await setUpNetwork(spec.network.mode, log);
    undo.push('network', () => network.undo());
    // volumes (src/runcvm/volumes): virtiofsd per shared folder, NFS exports, RUNCVM_DISKS images
    const volumes = await setUpVolumes(spec.volumes ?? [], log, undefined, guestAddresses(network.plan));
    undo.push('volumes', () => volumes.undo());
    const coldVm = withVolumes(withNetwork(vmPlan, network), volumes, spec.volumes ?? []);
    const plan = hv.plan(coldVm);
    // VM templates (issue 17): the same VM restored from the template, its network words in RESUME instead of on the
    // command line (the template's is frozen); any problem here or later is a cold boot with one info line
    const netWords = network.nics.length > 0 && network.cmdline ? network.cmdline.split(' ') : [];
    const restore = checks ? await planRestore(checks, hv, { ...coldVm, cmdline: vmPlan.cmdline }, netWords, log) : undefined;
    log.debug('hypervisor command', { argv: (restore?.plan ?? plan).argv.join(' ') });
    return await relayVm(spec, log, hv, plan, started, restore);
  } finally {
    for (const e of await undo.close()) log.warn(e.message);
  }
}

/**
 * stdin's owner: the guest console while a RUNCVM_BREAK shell may read it, then (once init reports READY) the
 * workload, with the end of stdin; without a break, the workload from the start (a /dev/null stdin ends at once:
 * the workload sees EOF, as under runc).
 */
class StdinRouter {
  private toConsole: boolean;
  private ended = false;
  private attached = false;

  constructor(
    private readonly channel: () => GuestChannel,
    breakShell: boolean,
  ) {
    this.toConsole = breakShell;
  }

  /** attach when the side that reads stdin first (console with a break, else the io channel) is connected */
  attachIf(side: 'console' | 'io'): void {
    if ((side === 'console') === this.toConsole) this.attach();
  }

  private attach(): void {
    if (this.attached) return;
    this.attached = true;
    const end = () => {
      if (this.ended) return;
      this.ended = true;
      if (!this.toConsole) this.channel().endStdin();
    };
    process.stdin.on('data', (d: Buffer) => {
      if (this.toConsole) this.channel().toConsole(d);
      else this.channel().stdin(d);
    });
    process.stdin.on('end', end);
    process.stdin.on('error', end);
  }

  /** READY: what follows, and the end of stdin, go to the workload */
  toWorkload(): void {
    if (!this.toConsole) return;
    this.toConsole = false;
    this.attach();
    if (this.ended) this.channel().endStdin();
  }
}

/** Stops a VM whose backend has an orderly shutdown, once; the outcome is logged. */
class VmStopper {
  stopping: Promise<void> | undefined;
  /** the stop signal that ended the VM (exit 128+N when the workload reported nothing) */
  signal: number | undefined;
  /** the VM, once its hypervisor has started */
  vm: RunningVm | undefined;

  constructor(private readonly log: Logger) {}

  get possible(): boolean {
    return this.vm?.shutdown !== undefined;
  }

  stop(why: string): Promise<void> {
    const shutdown = this.vm?.shutdown;
    if (!shutdown) return Promise.resolve();
    this.stopping ??= shutdown(CTRL_ALT_DEL_GRACE_MS).then((outcome) => {
      const line = describeStop(why, outcome, CTRL_ALT_DEL_GRACE_MS);
      if (outcome.graceful) this.log.info(line);
      else this.log.warn(line);
    });
    return this.stopping;
  }
}

async function relayVm(spec: LaunchSpec, log: Logger, hv: Hypervisor, plan: HypervisorPlan, started: number, restore?: RestorePlan): Promise<number> {
  let exit: { code: number; signal: number } | undefined;
  let exitWatch: NodeJS.Timeout | undefined;
  const stopper = new VmStopper(log);
  const stdin = new StdinRouter(() => channel, Boolean(spec.break));
  // a restore in progress: stdin attaches only once the guest talks (a failed restore must not have consumed any)
  let restoring = false;
  let onResumed: (() => void) | undefined;
  const events: GuestEvents = {
    output: (stream, data) => {
      (stream === 'stdout' ? process.stdout : process.stderr).write(data);
      phases.mark('output');
      phases.logOnce(log);
    },
    exit: (status) => {
      exit = status;
      log.info('workload exited', { code: status.code, signal: status.signal, ms: Date.now() - started });
      // the guest resets the VM right after the ACK; a hypervisor still running later is stopped
      if (stopper.possible && !exitWatch) {
        exitWatch = setTimeout(() => void stopper.stop(`${hv.name} still running ${VMM_EXIT_AFTER_WORKLOAD_MS} ms after the workload's exit`), VMM_EXIT_AFTER_WORKLOAD_MS);
      }
    },
    ready: () => {
      phases.mark('ready');
      log.info('guest init ready', { ms: Date.now() - started });
      stdin.toWorkload();
    },
    log: (text) => log.info(`guest: ${text}`),
    console: (data) => process.stdout.write(data),
    connected: () => {
      if (!restoring) stdin.attachIf('io');
    },
    consoleConnected: () => stdin.attachIf('console'),
    resumed: () => {
      phases.mark('resumed');
      restoring = false;
      stdin.attachIf('io');
      onResumed?.();
    },
  };
  let channel: GuestChannel = await GuestChannel.open(plan.listen, events, log);
  phases.mark('listening');

  // Signals go to the workload (PID 1 of its own PID namespace in the guest, so runc's rules apply); a stop signal
  // before the guest is connected shuts the VM down where the backend can (plan-stop.ts). Handlers are in place
  // before the hypervisor starts: a signal during its start is kept and acted on once it runs.
  let early: { name: string; signo: number } | undefined;
  const onSignal = (name: string, signo: number) => {
    if (!stopper.vm) {
      early = { name, signo };
      return;
    }
    const action = signalAction({ name, signal: signo, canStopVmm: stopper.possible, channelConnected: channel.connected, stopping: stopper.stopping !== undefined });
    if (action.kind === 'ignore') {
      log.info(`${name} while the VM is being stopped: nothing more to do`);
    } else if (action.kind === 'graceful-stop') {
      stopper.signal = action.signal;
      void stopper.stop(`${name} before the guest connected`);
    } else {
      log.info(`forwarding ${name} to the guest`);
      channel.signal(action.signal);
    }
  };
  for (const name of FORWARDED_SIGNALS) process.on(name, () => onSignal(name, constants.signals[name]));

  const startOpts = {
    onStdout: (d: Buffer) => process.stdout.write(d),
    onStderrLine: (line: string) => log.debug(`${hv.name} stderr`, { text: line }),
    onControl: (request: string) => {
      if (request.includes('"cont"')) phases.mark('cont');
      log.debug(`${hv.name} control request`, { request });
    },
  };
  phases.mark('spawn');
  let vm: RunningVm | undefined;
  if (restore) {
    restoring = true;
    const got = await startRestored(hv, restore, channel, startOpts, (cb) => (onResumed = cb));
    if (got.ok) {
      vm = got.vm;
      phases.mark('restored');
      log.info('template: restored', { ms: Date.now() - started });
    } else {
      restoring = false;
      log.info(`template: cold boot (${got.reason})`);
      // the restored VM is gone (killed, its sockets removed): a fresh channel for the cold boot's QEMU
      await channel.close();
      channel = await GuestChannel.open(plan.listen, events, log);
    }
  }
  try {
    vm ??= await hv.start(plan, startOpts);
  } catch (err) {
    await channel.close();
    throw err;
  }
  stopper.vm = vm;
  phases.mark('started');
  if (early) onSignal(early.name, early.signo);

  // Terminal: raw mode on the container's tty, window size to the guest's pty.
  if (spec.process.terminal && process.stdin.isTTY) {
    // cfmakeraw on the container's tty (Node's raw mode keeps ONLCR, which would double every \r): the guest's
    // own pty does all line discipline, exactly once, as under runc.
    await run(`${CONTAINER_PATHS.guest}/bin/busybox`, ['stty', 'raw', '-echo'], { stdio: 'inherit', reject: false });
    const sendSize = () => {
      if (process.stdout.rows && process.stdout.columns) channel.winsize(process.stdout.rows, process.stdout.columns);
    };
    sendSize();
    process.stdout.on('resize', sendSize);
  }

  const ended = await vm.exited;
  if (exitWatch) clearTimeout(exitWatch);
  await stopper.stopping;
  await channel.drain(DRAIN_MS);
  await channel.close();
  process.stdin.pause();
  log.info('hypervisor exited', { code: ended.code, signal: ended.signal, ms: Date.now() - started });
  return outcome(spec, hv, vm, ended, exit, stopper.signal);
}

/** The container's exit code, or the error that says why there is none. */
function outcome(spec: LaunchSpec, hv: Hypervisor, vm: RunningVm, ended: VmExit, exit: { code: number } | undefined, stopSignal: number | undefined): number {
  if (exit) return exit.code;
  if (stopSignal !== undefined) return stopExitCode(stopSignal);
  const explained = vm.explainExit(ended);
  if (explained) throw explained;
  const how = ended.signal ? `signal ${ended.signal}` : `exit code ${ended.code}`;
  const reason = lastMeaningfulLine(ended.output) || 'no exit status was reported by the guest';
  throw fail('HYPERVISOR_CRASHED', { name: hv.name, how, reason, id: spec.containerId });
}

export function lastMeaningfulLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}
