/**
 * The launcher: PID 1 of the container that runc starts (as root, from the read-only package at /.runcvm/guest,
 * through the bundled loader). LaunchSpec → accel decision → VmPlan → QEMU; relays the guest's framed stdout,
 * stderr and exit status to the container's own stdio, forwards stdin, signals and the terminal size, and exits
 * with the workload's exit code (128+N for a signal). A hypervisor that dies without an exit report ends the
 * container non-zero with a one-line reason.
 *
 * Bundled by esbuild into /.runcvm/guest/lib/runcvm/launcher.mjs (scripts/assets/30-runtime.sh).
 */
import { appendFileSync, readFileSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { Logger, type Level, type Sink } from '../../core/log/index.js';
import { runInherit, spawnPiped } from '../../core/exec/index.js';
import { atomicWrite } from '../../core/fsx/index.js';
import { isToolError, type ToolError } from '../../core/errors.js';
import { runcvmErrors } from '../errors.js';
import { CONTAINER_PATHS, parseLaunchSpec, type LaunchSpec } from '../launch/schema.js';
import { decideAccel, cpuKhzFromCpuinfo } from '../hypervisor/accel.js';
import { gatherAccelFacts } from '../hypervisor/facts.js';
import { execPortSocket, HYPERVISORS, planVm, type Hypervisor, type VmPlan } from '../hypervisor/index.js';
import { FirecrackerClient } from '../hypervisor/firecracker/client.js';
import { stopGracefully } from '../hypervisor/firecracker/stop.js';
import { CTRL_ALT_DEL_GRACE_MS, describeStop, signalAction, stopExitCode, VMM_EXIT_AFTER_WORKLOAD_MS } from './plan-stop.js';
import { guestAddresses } from '../network/plan.js';
import { setUpNetwork, withNetwork } from '../network/setup.js';
import { setUpVolumes, withVolumes } from '../volumes/apply.js';
import { startExecMux } from '../agent/mux.js';
import { EXEC_PATHS } from '../agent/exec.js';
import { Channel, decodeExit, encodeData, encodeFrame, encodeSignal, encodeWinsize, FrameDecoder, FrameType } from '../agent/codec.js';

const { fail } = runcvmErrors;

const FORWARDED_SIGNALS: Record<string, number> = { SIGTERM: 15, SIGINT: 2, SIGHUP: 1, SIGQUIT: 3, SIGUSR1: 10, SIGUSR2: 12 };

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export { gatherAccelFacts };

function makeLogger(spec: LaunchSpec | undefined): Logger {
  const sinks: Sink[] = [];
  const level = spec?.log.level ?? 'error';
  const file = spec?.log.file;
  const fileLevel: Level = level === 'off' ? 'off' : level === 'debug' ? 'debug' : 'info';
  const stderrRank: Record<string, number> = { debug: 10, info: 20, warn: 30, error: 40, off: 100 };
  const lineRank = (line: string): number => {
    const m = /\b(DEBUG|INFO|WARN|ERROR)\b/.exec(line);
    return m ? (stderrRank[m[1]!.toLowerCase()] ?? 40) : 40;
  };
  if (file && fileLevel !== 'off') {
    sinks.push((line) => {
      try {
        appendFileSync(file, line + '\n');
      } catch {
        /* never fail on logging */
      }
    });
  }
  sinks.push((line) => {
    if (level !== 'off' && lineRank(line) >= (stderrRank[level] ?? 40)) process.stderr.write(`runcvm: ${line}\n`);
  });
  return new Logger({ level: fileLevel === 'off' ? (level === 'off' ? 'off' : 'error') : fileLevel, namespace: `launcher ${spec?.containerId ?? ''}`.trim(), timestamps: true, sinks });
}

async function listen(path: string): Promise<Server> {
  await rm(path, { force: true });
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

function firstConnection(server: Server): Promise<Socket> {
  return new Promise((resolve) => server.once('connection', resolve));
}

export async function launch(): Promise<number> {
  let spec: LaunchSpec | undefined;
  let log = makeLogger(undefined);
  try {
    try {
      spec = parseLaunchSpec(readFileSync(CONTAINER_PATHS.launchSpec, 'utf8'));
    } catch (err) {
      throw fail('LAUNCH_SPEC', { path: CONTAINER_PATHS.launchSpec, problem: (err as Error).message.split('\n')[0] ?? '' });
    }
    log = makeLogger(spec);
    return await runVm(spec, log);
  } catch (err) {
    const te: ToolError | undefined = isToolError(err) ? err : undefined;
    const text = te ? te.render() : `error: ${(err as Error)?.stack ?? String(err)}`;
    log.debug('launcher failed', { error: text });
    process.stderr.write(text.split('\n').map((l) => `runcvm: ${l}`).join('\n') + '\n');
    return te?.exitCode ?? 125;
  }
}

async function runVm(spec: LaunchSpec, log: Logger): Promise<number> {
  const started = Date.now();
  const hv = HYPERVISORS[spec.vm.hypervisor];
  if (!existsSync(hv.binary)) throw fail('HYPERVISOR_NOT_INSTALLED', { name: hv.name, path: hv.binary });
  if (!existsSync(spec.kernel.path)) throw fail('NO_KERNEL', { path: spec.kernel.path, reason: 'the kernel is not visible inside the container.' });

  const facts = gatherAccelFacts();
  const decision = decideAccel(spec.vm.accel, facts);
  if (!decision.ok) throw fail('KVM_REQUIRED', { reason: decision.reason });
  log.info(`accelerator: ${decision.accel} (${decision.reason})`);

  const cpuinfo = readText('/proc/cpuinfo');
  const tscKhz = cpuKhzFromCpuinfo(cpuinfo);
  const vmPlan = planVm(spec, decision.accel, tscKhz ? { tscKhz } : {});
  // networking (src/runcvm/network): the container's eth* go to the VM before QEMU starts; undone on every path
  const network = await setUpNetwork(spec.network.mode, log);
  try {
    // volumes (src/runcvm/volumes): virtiofsd per shared folder + RUNCVM_DISKS images; undone on every path
    const volumes = await setUpVolumes(spec.volumes ?? [], log, undefined, guestAddresses(network.plan));
    try {
      return await bootVm(spec, log, hv, withVolumes(withNetwork(vmPlan, network), volumes, spec.volumes ?? []), started);
    } finally {
      await volumes.undo();
    }
  } finally {
    await network.undo();
  }
}

async function bootVm(spec: LaunchSpec, log: Logger, hv: Hypervisor, plan: VmPlan, started: number): Promise<number> {
  const inv = hv.toInvocation(plan);
  for (const path of inv.removeFirst ?? []) await rm(path, { force: true });
  for (const f of inv.files ?? []) await atomicWrite(f.path, f.content);
  const file = inv.direct ? inv.file : CONTAINER_PATHS.loader;
  const args = inv.direct ? inv.args : ['--library-path', `${CONTAINER_PATHS.guest}/lib`, inv.file, ...inv.args];
  log.debug('hypervisor command', { argv: [file, ...args].join(' ') });

  const ioServer = await listen(inv.ioSocket ?? plan.io.socket);
  const conServer = await listen(plan.console.socket);
  const ioConn = firstConnection(ioServer);
  const conConn = firstConnection(conServer);
  // exec (owner: exec, agent/mux.ts): the agent port's chardev socket (QEMU connects at start) + the exec clients'.
  // Under Firecracker the agent connects over vsock port 1025, which Firecracker forwards to <uds_path>_1025.
  const execPort = execPortSocket(inv, plan);
  const execMux = execPort ? await startExecMux({ portSocket: execPort, clientSocket: EXEC_PATHS.clientSocket, log }) : undefined;

  const qemu = await spawnPiped(file, args, { env: { PATH: '/.runcvm/guest/bin:/usr/bin:/bin', QEMU_MODULE_DIR: `${CONTAINER_PATHS.guest}/lib/x86_64-linux-gnu/qemu` } });
  let qemuStderr = '';
  let qemuRunning = true;
  qemu.stdout?.on('data', (d: Buffer) => {
    process.stdout.write(d);
  });
  qemu.stderr?.on('data', (d: Buffer) => {
    qemuStderr = (qemuStderr + d.toString('utf8')).slice(-4000);
    log.debug('qemu stderr', { text: d.toString('utf8').trimEnd() });
  });
  const qemuExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    qemu.on('exit', (code, signal) => {
      qemuRunning = false;
      resolve({ code, signal });
    });
    qemu.on('error', (err) => {
      qemuRunning = false;
      qemuStderr += `\n${err.message}`;
      resolve({ code: 127, signal: null });
    });
  });

  let exit: { code: number; signal: number } | undefined;
  let exitWatch: NodeJS.Timeout | undefined;
  let io: Socket | undefined;
  const pending: Buffer[] = [];
  const send = (buf: Buffer) => {
    if (io && !io.destroyed) io.write(buf);
    else pending.push(buf);
  };

  // Graceful VM stop through the hypervisor's API (Firecracker: SendCtrlAltDel, bounded wait, SIGKILL; see
  // plan-stop.ts for when). QEMU has no apiSocket: its path is unchanged.
  let stopSignal: number | undefined;
  let stopping: Promise<void> | undefined;
  const apiSocket = inv.apiSocket;
  const stopVmm = (why: string): Promise<void> => {
    if (!apiSocket) return Promise.resolve();
    stopping ??= stopGracefully(
      {
        client: new FirecrackerClient(apiSocket, CTRL_ALT_DEL_GRACE_MS),
        exited: qemuExit,
        isRunning: () => qemuRunning,
        kill: () => {
          if (qemuRunning) qemu.kill('SIGKILL');
        },
        onCall: (c) => log.debug('firecracker API call', { method: c.method, path: c.path, body: c.body }),
      },
      CTRL_ALT_DEL_GRACE_MS,
    ).then((outcome) => {
      const line = describeStop(why, outcome, CTRL_ALT_DEL_GRACE_MS);
      if (outcome.graceful) log.info(line);
      else log.warn(line);
    });
    return stopping;
  };

  // Signals: forwarded to the workload (PID 1 of its own PID namespace in the guest, so runc's rules apply).
  for (const [name, num] of Object.entries(FORWARDED_SIGNALS)) {
    process.on(name as NodeJS.Signals, () => {
      const action = signalAction({ name, signal: num, canStopVmm: apiSocket !== undefined, channelConnected: io !== undefined, stopping: stopping !== undefined });
      if (action.kind === 'ignore') {
        log.info(`${name} while the VM is being stopped: nothing more to do`);
      } else if (action.kind === 'graceful-stop') {
        stopSignal = action.signal;
        void stopVmm(`${name} before the guest connected`);
      } else {
        log.info(`forwarding ${name} to the guest`);
        send(encodeSignal(action.signal));
      }
    });
  }

  // Terminal: raw mode on the container's tty, window size to the guest's pty.
  const tty = spec.process.terminal && process.stdin.isTTY;
  if (tty) {
    // cfmakeraw on the container's tty (Node's raw mode keeps ONLCR, which would double every \r): the guest's
    // own pty does all line discipline, exactly once, as under runc.
    await runInherit(`${CONTAINER_PATHS.guest}/bin/busybox`, ['stty', 'raw', '-echo']); // no execa in the bundle
    const sendSize = () => {
      if (process.stdout.rows && process.stdout.columns) send(encodeWinsize(process.stdout.rows, process.stdout.columns));
    };
    sendSize();
    process.stdout.on('resize', sendSize);
  }

  // stdin → guest. Without RUNCVM_BREAK it is the workload's (a /dev/null stdin ends at once: the workload sees EOF,
  // as under runc). With one it first feeds the guest console, where the break shell reads, until init reports READY
  // (sent once every break shell has exited): what follows, and the end of stdin, then reach the workload, which would
  // otherwise wait for input forever.
  let stdinToConsole = Boolean(spec.break);
  let stdinEnded = false;
  let stdinAttached = false;
  let consoleSock: Socket | undefined;
  const attachStdin = () => {
    if (stdinAttached) return;
    stdinAttached = true;
    const end = () => {
      if (stdinEnded) return;
      stdinEnded = true;
      if (!stdinToConsole) send(encodeFrame(FrameType.EOF, Channel.stdin));
    };
    process.stdin.on('data', (d: Buffer) => {
      if (stdinToConsole) consoleSock?.write(d);
      else for (const fr of encodeData(Channel.stdin, d)) send(fr);
    });
    process.stdin.on('end', end);
    process.stdin.on('error', end);
  };
  const stdinToWorkload = () => {
    if (!stdinToConsole) return;
    stdinToConsole = false;
    attachStdin();
    if (stdinEnded) send(encodeFrame(FrameType.EOF, Channel.stdin));
  };

  const ioDone = ioConn.then(
    (sock) =>
      new Promise<void>((resolve) => {
        io = sock;
        for (const b of pending.splice(0)) sock.write(b);
        const dec = new FrameDecoder();
        sock.on('data', (chunk: Buffer) => {
          for (const f of dec.push(chunk)) {
            if (f.type === FrameType.DATA) {
              if (f.channel === Channel.stdout) process.stdout.write(f.payload);
              else if (f.channel === Channel.stderr) process.stderr.write(f.payload);
            } else if (f.type === FrameType.EXIT) {
              exit = decodeExit(f.payload);
              log.info('workload exited', { code: exit.code, signal: exit.signal, ms: Date.now() - started });
              sock.write(encodeFrame(FrameType.ACK, 0));
              // the guest resets the VM right after the ACK; a Firecracker still running later is stopped
              if (apiSocket && !exitWatch) {
                exitWatch = setTimeout(() => void stopVmm(`firecracker still running ${VMM_EXIT_AFTER_WORKLOAD_MS} ms after the workload's exit`), VMM_EXIT_AFTER_WORKLOAD_MS);
              }
            } else if (f.type === FrameType.READY) {
              log.info('guest init ready', { ms: Date.now() - started });
              stdinToWorkload();
            } else if (f.type === FrameType.LOG) {
              log.info(`guest: ${f.payload.toString('utf8')}`);
            }
          }
        });
        sock.on('close', () => resolve());
        sock.on('error', () => resolve());
        if (!stdinToConsole) attachStdin();
      }),
  );
  const conDone = conConn.then(
    (sock) =>
      new Promise<void>((resolve) => {
        sock.on('data', (d: Buffer) => process.stdout.write(d));
        consoleSock = sock;
        if (stdinToConsole) attachStdin();
        sock.on('close', () => resolve());
        sock.on('error', () => resolve());
      }),
  );

  const ended = await qemuExit;
  if (exitWatch) clearTimeout(exitWatch);
  await stopping;
  // QEMU closed its sockets when it exited: wait (briefly) for the last bytes to be relayed.
  await Promise.race([Promise.all([ioDone, inv.consoleOnStdout ? undefined : conDone]), new Promise((r) => setTimeout(r, 2000))]);
  ioServer.close();
  conServer.close();
  await execMux?.close();
  // Firecracker leaves its API socket and vsock socket behind when it is killed
  for (const path of inv.removeFirst ?? []) await rm(path, { force: true });
  process.stdin.pause();
  log.info('hypervisor exited', { code: ended.code, signal: ended.signal, ms: Date.now() - started });
  if (exit) return exit.code;
  if (stopSignal !== undefined) return stopExitCode(stopSignal);
  const how = ended.signal ? `signal ${ended.signal}` : `exit code ${ended.code}`;
  const explained = hv.explainExit?.({ code: ended.code, signal: ended.signal, output: qemuStderr });
  if (explained) throw explained;
  const reason = lastMeaningfulLine(qemuStderr) || 'no exit status was reported by the guest';
  throw fail('HYPERVISOR_CRASHED', { name: hv.name, how, reason, id: spec.containerId });
}

export function lastMeaningfulLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

