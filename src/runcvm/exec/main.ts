/**
 * `runcvm-runtime exec` (the sh dispatcher sends `exec` here only for a VM container: a launch.json in
 * RUNCVM_STATE_DIR, or runc's record showing runcvm's mounts): parse runc's exec flags → find the container's state
 * folder (locate.ts; a VM container never falls back to a process on the host) → check it is running → the
 * original process (--process file, or runc's flag rules over the original process kept in launch.json) → rewrite
 * (rewrite.ts): request file for the guest (0600, state dir) + client process file → wait for the launcher's exec
 * socket (right after `run -d` the VM may still be starting) → `runc exec` with the rewritten process. Anything runc
 * would reject itself (bad flags, unknown container) goes to runc unchanged so the engine sees runc's own message.
 */
import { randomBytes } from 'node:crypto';
import { access, appendFile, chown, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec/index.js';
import { atomicWrite } from '../../core/fsx/index.js';
import { isToolError, type ToolError } from '../../core/errors.js';
import { splitRuncArgs } from '../runtime/args.js';
import { containerPaths, hostDirs } from '../state/index.js';
import type { OciProcess } from '../launch/oci.js';
import type { LaunchProcess } from '../launch/schema.js';
import { encodeOpenRequest, requestFileName } from '../agent/exec.js';
import { ExecArgsError, parseExecArgs, type ExecArgs } from './args.js';
import { processFromFlags, rewriteExecProcess, runcExecArgv } from './rewrite.js';
import { runcvmErrors } from '../errors.js';
import { classifyRuncRecord, runcRoot, runcStatePath } from './locate.js';

const { fail } = runcvmErrors;

/** runc runs with our stdio; its exit code is ours */
const INHERIT = { stdio: 'inherit', reject: false } as const;

function runcBinary(): string {
  return process.env.RUNCVM_RUNC || 'runc';
}

/** What to tell the user for each state runc can report (pure; unit tested). */
export function stateVerdict(id: string, status: string | undefined): ToolError | undefined {
  if (status === undefined || status === 'running') return undefined;
  const fix: Record<string, string> = {
    stopped: `start it again (e.g. \`ctr task start ${id}\` after \`ctr task delete ${id}\`, or \`docker start ${id}\`), then exec.`,
    paused: `resume it first (\`ctr task resume ${id}\` / \`docker unpause ${id}\`).`,
    created: `start it first (\`ctr task start ${id}\` / \`runc start ${id}\`): its VM boots at start.`,
    creating: 'wait until it has started, then exec.',
  };
  return fail('EXEC_WRONG_STATE', { id, state: status, fix: fix[status] ?? 'check it with `runc state`.' });
}

/** Hypervisors whose launcher runs the exec mux: QEMU (virtio-serial port), Firecracker (vsock port 1025). */
const EXEC_HYPERVISORS = new Set(['qemu', 'firecracker']);

/**
 * Exec reaches the guest agent under every hypervisor this runtime launches; a launch.json naming another one (written
 * by a different runcvm version) is refused plainly rather than left to hang (pure; unit tested).
 */
export function hypervisorVerdict(id: string, hypervisor: string | undefined): ToolError | undefined {
  if (hypervisor === undefined || EXEC_HYPERVISORS.has(hypervisor)) return undefined;
  return fail('EXEC_UNSUPPORTED_HYPERVISOR', { id, hypervisor });
}

async function containerStatus(globals: readonly string[], id: string): Promise<string | undefined> {
  const r = await run(runcBinary(), [...globals, 'state', id], { timeoutMs: 10_000, reject: false });
  if (r.exitCode !== 0) return undefined; // unknown container: runc exec will say so itself
  try {
    return (JSON.parse(r.stdout) as { status?: string }).status;
  } catch {
    return undefined;
  }
}

interface LaunchFacts {
  process: LaunchProcess;
  vm?: { hypervisor?: string };
}

async function readLaunch(a: ExecArgs, launchSpecPath: string): Promise<LaunchFacts> {
  try {
    return JSON.parse(await readFile(launchSpecPath, 'utf8')) as LaunchFacts;
  } catch (err) {
    throw fail('EXEC_NO_LAUNCH_SPEC', { id: a.id, problem: (err as Error).message });
  }
}

async function originalProcess(a: ExecArgs, launch: LaunchFacts): Promise<OciProcess> {
  if (a.process) {
    try {
      const p = JSON.parse(await readFile(a.process, 'utf8')) as OciProcess;
      if (!p || typeof p !== 'object' || !Array.isArray(p.args)) throw new Error('no "args" array');
      return p;
    } catch (err) {
      throw fail('EXEC_BAD_PROCESS', { id: a.id, path: a.process, problem: (err as Error).message });
    }
  }
  return processFromFlags(launch.process, a);
}

export async function execMain(argv: string[]): Promise<number> {
  const inv = splitRuncArgs(argv);
  let args: ExecArgs;
  try {
    args = parseExecArgs(inv.verbArgs);
  } catch (err) {
    if (err instanceof ExecArgsError) return (await run(runcBinary(), argv, INHERIT)).exitCode;
    throw err;
  }
  const requestId = randomBytes(8).toString('hex');
  let requestFile: string | undefined;
  let processFile: string | undefined;
  try {
    const where = await locateState(inv.globalValues.root, args.id);
    if (where.kind === 'plain') return (await run(runcBinary(), argv, { ...INHERIT, passFds: args.preserveFds })).exitCode;
    const paths = { state: where.stateDir, launchSpec: join(where.stateDir, 'launch.json') };
    // host descriptors cannot cross into the VM: refused plainly rather than dropped (the command would not see them)
    if (args.preserveFds > 0) throw fail('EXEC_PRESERVE_FDS', { id: args.id, n: args.preserveFds, last: 2 + args.preserveFds });
    requestFile = join(paths.state, requestFileName(requestId));
    processFile = join(paths.state, `exec-${requestId}.process.json`);
    const files = { request: requestFile, process: processFile };
    // the state check (a runc call) runs while the request is prepared: exec latency is what users feel
    const statusP = containerStatus(inv.globals, args.id);
    const prepared = (async () => {
      const launch = await readLaunch(args, paths.launchSpec);
      const unsupported = hypervisorVerdict(args.id, launch.vm?.hypervisor);
      if (unsupported) throw unsupported;
      const original = await originalProcess(args, launch);
      const { request, process: client } = rewriteExecProcess(original, requestId);
      await atomicWrite(files.request, encodeOpenRequest(request), 0o600);
      // read by the exec client in the launcher container as the launcher's user: a user namespace's root owns the
      // state folder then (bundle/transforms/launcher-root.ts), and so must it own the request
      const owner = await stat(paths.state);
      if (owner.uid !== process.geteuid?.() || owner.gid !== process.getegid?.()) await chown(files.request, owner.uid, owner.gid);
      await atomicWrite(files.process, JSON.stringify(client), 0o600);
    })();
    const [status] = await Promise.all([statusP, prepared.catch(() => undefined)]);
    const wrong = args.ignorePaused && status === 'paused' ? undefined : stateVerdict(args.id, status);
    if (wrong) throw wrong;
    await prepared;
    await waitForExecSocket(inv.globals, args.id, paths.state);
    // a VM boundary, said (guest/exec-prep.c says the same): runc moves only the exec client
    if (args.cgroup) process.stderr.write(`runcvm: warning: exec --cgroup ${args.cgroup} moves only runcvm's exec client into that host cgroup; the command runs inside the microVM, whose cgroups are its own\n`);
    const r = await run(runcBinary(), runcExecArgv(inv.globals, args, processFile), INHERIT);
    if (r.exitCode !== 0) await rm(requestFile, { force: true });
    return r.exitCode;
  } catch (err) {
    if (requestFile) await rm(requestFile, { force: true });
    if (!isToolError(err)) throw err;
    const text = err.withDetails({ debugLog: containerPaths(hostDirs(process.env), args.id).debugLog }).render();
    process.stderr.write(`runcvm: ${text}\n`);
    // containerd reads runc's --log (JSON lines) to explain a failed exec
    const logFile = inv.globalValues.log;
    if (logFile) await appendFile(logFile, JSON.stringify({ level: 'error', msg: `runcvm: ${err.message}`, time: new Date().toISOString() }) + '\n').catch(() => {});
    return err.exitCode;
  } finally {
    if (processFile) await rm(processFile, { force: true });
  }
}

/**
 * The container's state folder: RUNCVM_STATE_DIR/<id> when its launch.json is there, else the folder runc's record
 * names (the source of the /.runcvm/state mount). 'plain' only when runc's record shows no runcvm mounts, or
 * there is no record at all (runc then reports the unknown container itself). A VM container whose state cannot be
 * found is an error, never a process on the host.
 */
async function locateState(globalRoot: string | undefined, id: string): Promise<{ kind: 'vm'; stateDir: string } | { kind: 'plain' }> {
  const paths = containerPaths(hostDirs(process.env), id);
  if (await access(paths.launchSpec).then(() => true, () => false)) return { kind: 'vm', stateDir: paths.state };
  const root = runcRoot(globalRoot, process.env, process.geteuid?.());
  const record = classifyRuncRecord(await readFile(runcStatePath(root, id), 'utf8').catch(() => undefined));
  if (record.kind !== 'vm') return { kind: 'plain' };
  if (record.stateDir && (await access(join(record.stateDir, 'launch.json')).then(() => true, () => false))) return { kind: 'vm', stateDir: record.stateDir };
  throw fail('EXEC_NO_VM_STATE', { id, expected: paths.state, recorded: record.stateDir ?? 'not recorded' });
}

/** How long exec waits for a running container's launcher to open its exec socket (a TCG boot under load). */
const EXEC_SOCKET_WAIT_MS = 120_000;

/**
 * Right after `run -d` / `start` the container is "running" while its launcher is still setting up networking and
 * volumes; its exec socket appears just before the hypervisor starts (the agent's own start is then queued by the
 * launcher). Waits for the socket, and gives up with the state's message if the container stops meanwhile.
 */
async function waitForExecSocket(globals: readonly string[], id: string, stateDir: string): Promise<void> {
  const socket = join(stateDir, 'exec.sock');
  const deadline = Date.now() + EXEC_SOCKET_WAIT_MS;
  let nextStateCheck = Date.now() + 1000;
  for (;;) {
    if (await stat(socket).then((s) => s.isSocket(), () => false)) return;
    if (Date.now() >= deadline) throw fail('EXEC_NO_AGENT', { id, socket, seconds: EXEC_SOCKET_WAIT_MS / 1000 });
    if (Date.now() >= nextStateCheck) {
      nextStateCheck = Date.now() + 1000;
      const wrong = stateVerdict(id, await containerStatus(globals, id));
      if (wrong) throw wrong;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
