/**
 * `runcvm plan <bundle> [--id ID] [--json]`: what `create` and the launcher would do with this bundle, without
 * starting anything — the LaunchSpec, the accelerator decision on this host, the hypervisor argv, and the config.json
 * changes. Built by the same functions the real path uses (launch/build, bundle/transforms, hypervisor/*).
 * Environment values whose names look secret are masked.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { looksSecretName } from '../../core/redact.js';
import { envMap, type OciSpec } from '../launch/oci.js';
import { mergeSettingEnv, parseSettings, SettingError } from '../launch/settings.js';
import { buildLaunchSpec } from '../launch/build.js';
import { renderGuestConfig } from '../launch/guest-config.js';
import type { LaunchSpec } from '../launch/schema.js';
import { passThroughReason, rewriteForVm } from '../bundle/transforms/index.js';
import { decideAccel } from '../hypervisor/accel.js';
import { gatherAccelFacts, kvmDevicePath, tscKhz } from '../hypervisor/facts.js';
import { HYPERVISORS, planVm } from '../hypervisor/index.js';
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
    spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as OciSpec;
  } catch (err) {
    process.stderr.write(`runcvm plan: cannot read ${join(bundle, 'config.json')}: ${(err as Error).message}\n`);
    return 2;
  }
  const reason = passThroughReason(spec);
  if (reason) {
    process.stdout.write(json ? JSON.stringify({ passThrough: reason }) + '\n' : `pass-through to runc: ${reason}\n`);
    return 0;
  }
  let settings;
  try {
    settings = parseSettings(mergeSettingEnv(process.env, envMap(spec.process?.env)));
  } catch (err) {
    if (err instanceof SettingError) {
      process.stderr.write(`runcvm plan: ${err.message}\nfix: ${err.fix}\n`);
      return 2;
    }
    throw err;
  }
  const launch = buildLaunchSpec(spec, { containerId: id, settings, debugLog: settings.logLevel !== 'off' });
  const decision = decideAccel(launch.vm.accel, gatherAccelFacts(undefined, kvmDevicePath(process.env)));
  const accel = decision.ok ? decision.accel : 'kvm';
  const khz = tscKhz();
  const vmPlan = planVm(launch, accel, khz ? { tscKhz: khz } : {});
  const hv = HYPERVISORS[launch.vm.hypervisor];
  // the command as the launcher runs it; for Firecracker also its config file and API calls
  const hvView = hypervisorView(hv, vmPlan);
  const rewritten = rewriteForVm(spec, {
    guestDir: '<assets>/guest',
    kernelDir: '<assets>/kernel',
    stateDir: `<state>/${id}`,
    baseDisk: '<cache>/<image key>.ext4',
    debugLog: `<logdir>/runcvm-${id}.debug`,
    devices: [],
  });
  const masked = maskLaunchSpec(launch);
  if (json) {
    process.stdout.write(
      JSON.stringify({ launchSpec: masked, accel: decision, hypervisor: hvView, process: rewritten.process, mounts: rewritten.mounts }, null, 2) + '\n',
    );
    return 0;
  }
  const out: string[] = [];
  out.push('# LaunchSpec (/.runcvm/state/launch.json)', JSON.stringify(masked, null, 2), '');
  out.push(`# accelerator on this host: ${decision.ok ? decision.accel : 'refused'} (${decision.reason})`, '');
  out.push(...renderHypervisorView(hvView, shellQuote));
  out.push('# guest init config (/.runcvm/config in the writable disk)', renderGuestConfig(masked).trimEnd(), '');
  out.push('# config.json after rewriteForVm: process', JSON.stringify(rewritten.process, null, 2), '');
  out.push('# added mounts', ...(rewritten.mounts ?? []).filter((m) => m.destination.startsWith('/.runcvm')).map((m) => `${m.destination} <- ${m.source} (${(m.options ?? []).join(',')})`));
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}
