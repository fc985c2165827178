/**
 * `runcvm-runtime create|run` (the dispatcher sends only these verbs to Node): parse runc's command line → read
 * config.json → read the facts (facts.ts) → planCreate (plan-create.ts, pure: every refusal happens there) →
 * applyCreate (apply-create.ts: the plan's actions and nothing else, undone on failure) → runc with the unchanged
 * command line. `runcvm plan` prints the same plan.
 */
import { appendFile, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec/index.js';
import { isToolError, type ToolError } from '../../core/errors.js';
import { runcvmErrors } from '../errors.js';
import { splitRuncArgs, parseCreateArgs, ArgsError, type CreateArgs } from './args.js';
import type { OciSpec } from '../launch/oci.js';
import { withAbsoluteSources } from '../bundle/transforms/index.js';
import { SettingError } from '../launch/settings.js';
import { containerPaths, hostDirs } from '../state/index.js';
import { runcRoot } from '../exec/locate.js';
import { readCreateFacts, type CreateInput } from './facts.js';
import { planCreate, RuncStyleError } from './plan-create.js';
import { applyCreate, hostEffects } from './apply-create.js';

const { fail } = runcvmErrors;

/** runc runs with our stdio; its exit code is ours */
const INHERIT = { stdio: 'inherit', reject: false } as const;

function runcBinary(): string {
  return process.env.RUNCVM_RUNC || 'runc';
}

export async function main(argv: string[]): Promise<number> {
  const inv = splitRuncArgs(argv);
  if (inv.verb !== 'create' && inv.verb !== 'run') {
    return (await run(runcBinary(), argv, INHERIT)).exitCode;
  }
  let args: CreateArgs;
  try {
    args = parseCreateArgs(inv.verbArgs, process.cwd());
  } catch (err) {
    if (err instanceof ArgsError) {
      // runc reports these itself, with its own wording: let it.
      return (await run(runcBinary(), argv, INHERIT)).exitCode;
    }
    throw err;
  }
  const logFile = inv.globalValues.log;
  const debugLog = containerPaths(hostDirs(process.env), args.id).debugLog;
  try {
    // relative bind sources mean the caller's bundle, from wherever the launcher's config is written
    const spec = withAbsoluteSources(args.bundle)(await readSpec(args.bundle));
    // runc records its bundle as the kernel's cwd (symlinks resolved): so does runcvm, for the caller's
    const bundle = await realpath(args.bundle).catch(() => args.bundle);
    const root = runcRoot(inv.globalValues.root, process.env, process.geteuid?.());
    const input: CreateInput = { id: args.id, bundle, spec, runc: { file: runcBinary(), argv, passFds: args.preserveFds, root }, nodeEnv: process.env };
    const plan = planCreate(input, await readCreateFacts(input));
    return await applyCreate(plan, hostEffects(args.id, plan.kind === 'vm' ? plan.launchSpec.log.level : 'off'), args.id);
  } catch (err) {
    if (err instanceof RuncStyleError) {
      const msg = `runc create failed: unable to start container process: ${err.message}`;
      process.stderr.write(`${msg}\n`);
      if (logFile) await appendFile(logFile, JSON.stringify({ level: 'error', msg, time: new Date().toISOString() }) + '\n').catch(() => {});
      return 1;
    }
    const te = toToolError(err).withDetails({ debugLog, id: args.id });
    const text = te.render();
    process.stderr.write(`runcvm: ${text}\n`);
    // containerd reads runc's --log (JSON lines) to explain a failed create: put ours there too
    if (logFile) {
      const line = JSON.stringify({ level: 'error', msg: `runcvm: ${text.replace(/\n/g, '; ')}`, time: new Date().toISOString() });
      await appendFile(logFile, line + '\n').catch(() => {});
    }
    if (te.code === 'UNEXPECTED') process.stderr.write(`runcvm: ${(err as Error)?.stack ?? String(err)}\n`);
    return te.exitCode;
  }
}

function toToolError(err: unknown): ToolError {
  if (isToolError(err)) return err;
  if (err instanceof SettingError) return fail(err.code, err.details());
  // reported as what it is: no known error is guessed for it
  return fail('UNEXPECTED', { step: 'create', problem: (err as Error)?.message ?? String(err) }, err);
}

async function readSpec(bundle: string): Promise<OciSpec> {
  const path = join(bundle, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw fail('BAD_CONFIG', { bundle, problem: (err as Error).message });
  }
  try {
    return JSON.parse(text) as OciSpec;
  } catch (err) {
    throw fail('BAD_CONFIG', { bundle, problem: (err as Error).message });
  }
}
