/**
 * Network effects, inside the container's network namespace: read the facts with `ip -json`, apply a NetworkPlan's
 * `ip` steps in order, and hand back the undo list. Any failure undoes what was done so far before it is reported,
 * so a failed start leaves eth0 exactly as the engine or CNI configured it (a restarted container finds it intact).
 *
 * In the container the launcher runs the guest package's iproute2 (`/.runcvm/guest/bin/ip`); tests and the bench run
 * the host's `ip` with `-n <netns>` in front of every command (IpCommand.prefix).
 */
import { readFile } from 'node:fs/promises';
import { run, type RunResult } from '../../core/exec/index.js';
import { CONTAINER_PATHS } from '../launch/schema.js';
import { runcvmErrors } from '../errors.js';
import type { IpLink, IpRoute, IpStep, NetworkFacts, NetworkPlan } from './plan.js';

const { fail } = runcvmErrors;

export interface IpCommand {
  file: string;
  /** arguments put before every command, e.g. ['-n', 'mypod'] */
  prefix: readonly string[];
}

/** The launcher's `ip`: iproute2 from the guest package (works in any image, also one with no tools at all). */
export const CONTAINER_IP: IpCommand = { file: `${CONTAINER_PATHS.guest}/bin/ip`, prefix: [] };

export interface NetLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export async function ip(cmd: IpCommand, args: readonly string[]): Promise<RunResult> {
  return run(cmd.file, [...cmd.prefix, ...args], { timeoutMs: 10_000, reject: false });
}

function describe(cmd: IpCommand, args: readonly string[]): string {
  return ['ip', ...cmd.prefix, ...args].join(' ');
}

async function ipJson<T>(cmd: IpCommand, args: readonly string[], optional = false): Promise<T[] | undefined> {
  const r = await ip(cmd, ['-json', ...args]);
  if (r.exitCode !== 0) {
    if (optional) return undefined;
    throw fail('NETWORK_FACTS', { command: describe(cmd, ['-json', ...args]), problem: firstLine(r.stderr) || `exit code ${r.exitCode}` });
  }
  const text = r.stdout.trim();
  if (!text) return [];
  try {
    return JSON.parse(text) as T[];
  } catch (err) {
    throw fail('NETWORK_FACTS', { command: describe(cmd, ['-json', ...args]), problem: `unreadable output (${(err as Error).message})` });
  }
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

/** `ip -json addr`, `ip -json route`, `ip -json -6 route` (optional: a kernel without IPv6) and resolv.conf. */
export async function readNetworkFacts(cmd: IpCommand, resolvConfPath = '/etc/resolv.conf'): Promise<NetworkFacts> {
  const [addrs, routes, routes6, resolvConf] = await Promise.all([
    // -d: also each link's alias, where runcvm keeps the original config (crash recovery)
    ipJson<IpLink>(cmd, ['-d', 'addr', 'show']),
    ipJson<IpRoute>(cmd, ['route', 'show']),
    ipJson<IpRoute>(cmd, ['-6', 'route', 'show'], true),
    readFile(resolvConfPath, 'utf8').catch(() => undefined),
  ]);
  const facts: NetworkFacts = { addrs: addrs ?? [], routes: routes ?? [] };
  if (routes6) facts.routes6 = routes6;
  if (resolvConf !== undefined) facts.resolvConf = resolvConf;
  return facts;
}

export interface NetworkUndo {
  /** the commands undo will run, in order */
  readonly commands: readonly string[][];
  /** run them (best effort: every command runs even if one fails); returns the failures */
  undo(): Promise<string[]>;
}

export const NOTHING_TO_UNDO: NetworkUndo = { commands: [], undo: async () => [] };

async function runUndo(cmd: IpCommand, commands: readonly string[][], log?: NetLog): Promise<string[]> {
  const failures: string[] = [];
  for (const args of commands) {
    const r = await ip(cmd, args);
    if (r.exitCode !== 0) {
      const msg = `${describe(cmd, args)}: ${firstLine(r.stderr) || `exit code ${r.exitCode}`}`;
      failures.push(msg);
      log?.warn('network undo step failed', { step: msg });
    } else log?.debug('network undo', { step: describe(cmd, args) });
  }
  return failures;
}

/**
 * Run the plan's steps in order. Returns the undo list (reverse order of what ran). On a failing step, undoes what
 * was done and throws NETWORK_SETUP naming the step, the `ip` error and the fix.
 */
export async function applyNetwork(plan: NetworkPlan, cmd: IpCommand, log?: NetLog): Promise<NetworkUndo> {
  if (plan.mode === 'none') return NOTHING_TO_UNDO;
  const done: IpStep[] = [];
  const undoCommands = () => [...done].reverse().flatMap((s) => s.undo);
  for (const step of plan.steps) {
    const r = await ip(cmd, step.args);
    if (r.exitCode === 0) {
      log?.debug('network', { step: step.why, command: describe(cmd, step.args) });
      done.push(step);
      continue;
    }
    const problem = firstLine(r.stderr) || `exit code ${r.exitCode}`;
    if (step.optional) {
      log?.debug('optional network step skipped', { step: step.why, problem });
      continue;
    }
    const failures = await runUndo(cmd, undoCommands(), log);
    throw fail('NETWORK_SETUP', {
      step: step.why,
      command: describe(cmd, step.args),
      problem,
      undo: failures.length ? `undo left ${failures.length} problem(s): ${failures.join('; ')}` : 'the namespace was restored',
    });
  }
  const commands = undoCommands();
  let ran = false;
  return {
    commands,
    undo: async () => {
      if (ran) return [];
      ran = true;
      return runUndo(cmd, commands, log);
    },
  };
}
