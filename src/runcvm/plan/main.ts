/**
 * `runcvm plan [BUNDLE] [--id ID] [--json]`: what `runcvm-runtime create` would do with this bundle on this node,
 * without changing anything: the same facts (runtime/facts.ts, reads only) and the same plan (planCreate) create
 * uses, printed: the hypervisor choice, the LaunchSpec, every action create performs in order (the ones applyCreate
 * performs, nothing else), the config.json rewrite, and what the launcher will start (the accelerator decision on
 * this host and the backend's command). Environment values whose names look secret are masked; file contents are
 * given by size only. Exit 0: printed; 1: create would refuse the bundle (the error is printed); 2: usage.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isToolError } from '../../core/errors.js';
import { looksSecretName } from '../../core/redact.js';
import { runcvmErrors } from '../errors.js';
import type { OciSpec } from '../launch/oci.js';
import { withAbsoluteSources } from '../bundle/transforms/index.js';
import { SettingError } from '../launch/settings.js';
import { renderGuestConfig } from '../launch/guest-config.js';
import { describeGuestPrivileges } from '../launch/guest-privileges.js';
import { describeTemplate } from '../template/plan.js';
import type { LaunchSpec } from '../launch/schema.js';
import { containerPaths, hostDirs } from '../state/index.js';
import { decideAccel } from '../hypervisor/accel.js';
import { gatherAccelFacts, kvmDevicePath, tscKhz } from '../hypervisor/facts.js';
import { HYPERVISORS, planVm } from '../hypervisor/index.js';
import { readCreateFacts, type CreateInput } from '../runtime/facts.js';
import { planCreate, RuncStyleError, type CreatePlan } from '../runtime/plan-create.js';
import { describeAction } from '../runtime/actions.js';
import { hypervisorView, renderHypervisorView } from './plan-hypervisor.js';

const USAGE = 'usage: runcvm plan [BUNDLE] [--id ID] [--json]   (BUNDLE defaults to the current folder)';

export function maskEnv(env: readonly string[]): string[] {
  return env.map((e) => {
    const i = e.indexOf('=');
    return i > 0 && looksSecretName(e.slice(0, i)) ? `${e.slice(0, i)}=***` : e;
  });
}

export function maskLaunchSpec(l: LaunchSpec): LaunchSpec {
  return { ...l, process: { ...l.process, env: maskEnv(l.process.env) } };
}

/** Shell-quote one argv for display. */
export function shellQuote(args: readonly string[]): string {
  return args.map((a) => (/^[A-Za-z0-9_./:=,@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The lines `runcvm plan` prints for create's actions, in order: exactly what applyCreate performs. */
export function actionLines(plan: CreatePlan): string[] {
  return plan.actions.map(describeAction);
}

/** The human-readable plan (pure). */
export function renderCreatePlan(plan: CreatePlan): string {
  if (plan.kind === 'pass-through') return [`pass-through to runc: ${plan.reason}`, '', '# create\'s actions, in order', ...actionLines(plan), ''].join('\n');
  const masked = maskLaunchSpec(plan.launchSpec);
  const out: string[] = [];
  out.push(`# hypervisor: ${plan.hypervisor.name} (${plan.hypervisor.reason})`, `# guest privileges: ${describeGuestPrivileges(plan.guestPrivileges)}`, `# ${describeTemplate(plan.template)}`, '');
  out.push(`# create's actions, in order${plan.debugLog ? ` (logged to ${plan.debugLog})` : ''}`, ...actionLines(plan), '');
  out.push('# LaunchSpec (/.runcvm/state/launch.json)', JSON.stringify(masked, null, 2), '');
  out.push('# guest init config (/.runcvm/config in the writable disk)', renderGuestConfig(masked).trimEnd(), '');
  out.push("# the launcher's config.json (runcvm's private bundle): process", JSON.stringify(plan.config.process, null, 2), '');
  out.push("# the launcher's config.json: root and runcvm's mounts", `root ${plan.config.root?.path ?? ''} (${plan.config.root?.readonly ? 'read-only' : 'writable'})`, ...(plan.config.mounts ?? []).filter((m) => m.destination.startsWith('/.runcvm')).map((m) => `${m.destination} <- ${m.source} (${(m.options ?? []).join(',')})`), '');
  return out.join('\n');
}

/** What the launcher will start, as decided on this host (the accelerator is the launcher's decision). */
function launcherView(plan: Extract<CreatePlan, { kind: 'vm' }>) {
  // the node's KVM device (RUNCVM_KVM_DEVICE) is what the launcher will see as /dev/kvm
  const decision = decideAccel(plan.launchSpec.vm.accel, gatherAccelFacts(undefined, kvmDevicePath(process.env)));
  const khz = tscKhz();
  const vmPlan = planVm(plan.launchSpec, decision.ok ? decision.accel : 'kvm', khz ? { tscKhz: khz } : {});
  return { decision, view: hypervisorView(HYPERVISORS[plan.hypervisor.name], vmPlan) };
}

export async function planMain(argv: string[]): Promise<number> {
  let bundle = process.cwd();
  let id = 'plan';
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if (a === '--id') id = argv[++i] ?? id;
    else if (a.startsWith('--id=')) id = a.slice(5);
    else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    } else if (a.startsWith('-')) {
      process.stderr.write(`runcvm plan: unknown flag ${a}\n${USAGE}\n`);
      return 2;
    } else bundle = resolve(a);
  }
  let spec: OciSpec;
  try {
    spec = withAbsoluteSources(bundle)(JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as OciSpec);
  } catch (err) {
    process.stderr.write(`runcvm plan: cannot read ${join(bundle, 'config.json')}: ${(err as Error).message}\n`);
    return 2;
  }
  // the engine's own command line is not known here: this is the one create gets from `runc create`
  const input: CreateInput = { id, bundle, spec, runc: { file: process.env.RUNCVM_RUNC || 'runc', argv: ['create', '--bundle', bundle, id], passFds: 0 }, nodeEnv: process.env };
  let plan: CreatePlan;
  try {
    plan = planCreate(input, await readCreateFacts(input));
  } catch (err) {
    const te = err instanceof SettingError ? runcvmErrors.fail(err.code, err.details()) : isToolError(err) ? err : undefined;
    if (!te && !(err instanceof RuncStyleError)) throw err;
    const text = te ? te.withDetails({ debugLog: containerPaths(hostDirs(process.env), id).debugLog }).render() : `runc create failed: unable to start container process: ${(err as Error).message}`;
    process.stderr.write(`runcvm plan: create would refuse this bundle:\n${text}\n`);
    return 1;
  }
  if (plan.kind === 'pass-through') {
    process.stdout.write(json ? JSON.stringify({ passThrough: plan.reason, actions: actionLines(plan) }) + '\n' : renderCreatePlan(plan));
    return 0;
  }
  const launcher = launcherView(plan);
  if (json) {
    const doc = {
      hypervisor: plan.hypervisor,
      guestPrivileges: plan.guestPrivileges,
      template: plan.template,
      actions: actionLines(plan),
      launchSpec: maskLaunchSpec(plan.launchSpec),
      config: { process: plan.config.process, mounts: plan.config.mounts },
      accel: launcher.decision,
      launcher: launcher.view,
    };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    return 0;
  }
  const out = [renderCreatePlan(plan)];
  out.push(`# the launcher: accelerator on this host: ${launcher.decision.ok ? launcher.decision.accel : 'refused'} (${launcher.decision.reason}); network and volumes are added at start`, '');
  out.push(...renderHypervisorView(launcher.view, shellQuote));
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}
