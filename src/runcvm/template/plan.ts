/**
 * Create's template decision (issue 17; docs/dev/notes/templates.md 3.3, 3.6). Pure: from the LaunchSpec create made,
 * the chosen backend and the facts read before (runtime/facts.ts readTemplateFacts), either
 *   - `template`: the store holds the template of this VM's shape: create binds its folder read-only at
 *     /.runcvm/template, puts `template: { key }` in the LaunchSpec and pins it (the state folder's `template` file);
 *   - `cold`, with the reason (logged at info as `template: cold boot (<reason>)`), and when the shape could have one
 *     but the store has none yet, one detached `runcvm template build` for it: the container itself boots cold now
 *     and never waits for the build; one builder per key (the store's lock; create also skips keys being built).
 * The key is computed from the VM the launcher will run (template/key.ts templateVm of the LaunchSpec's request, with
 * the accelerator decision and the NICs create can see); the launcher recomputes it from its real VmPlan, and a
 * difference (say, the engine added a NIC after create) is a cold boot with that reason.
 */
import type { Hypervisor } from '../hypervisor/types.js';
import type { LaunchSpec } from '../launch/schema.js';
import type { TemplateSetting } from '../launch/settings.js';
import type { HostDirs } from '../state/index.js';
import { launchRefusal, templateKey, templateRequestFrom, templateVm, type TemplateAssets, type TemplateRequest } from './key.js';

export interface TemplateFacts {
  setting: TemplateSetting;
  assets?: TemplateAssets;
  /** the launcher's accelerator decision on this node (undefined: it will refuse to start) */
  accel?: 'kvm' | 'tcg';
  tscKhz?: number;
  /** the eth* interfaces of the container's network namespace now (the launcher hands each to the VM) */
  nics: number;
  /** keys whose folder in the store has a manifest (the launcher verifies the rest) */
  ready: readonly string[];
  /** keys a live builder holds the lock of */
  building: readonly string[];
  /** how to start `runcvm template build` (node + the CLI), when this install has the CLI */
  builder?: { node: string; cli: string };
}

export type TemplateDecision =
  | { use: 'template'; key: string; dir: string }
  | { use: 'cold'; reason: string; key?: string; build?: { file: string; argv: string[]; log: string } };

/** The builder's flags for a request (`runcvm template build` makes exactly templateVm(request) again). */
export function buildArgs(req: TemplateRequest, key: string): string[] {
  return ['template', 'build', '--key', key, '--hypervisor', req.hypervisor, '--accel', req.accel, '--cpus', String(req.vcpus), '--memory', `${req.memoryMiB}M`, '--nics', String(req.nics), '--data-disks', String(req.dataDisks)];
}

export function planTemplate(spec: LaunchSpec, hv: Hypervisor, facts: TemplateFacts | undefined, dirs: HostDirs): TemplateDecision {
  if (!facts || facts.setting === 'off') return { use: 'cold', reason: 'RUNCVM_TEMPLATE=off' };
  const refused = launchRefusal(spec);
  if (refused) return { use: 'cold', reason: refused };
  if (!facts.accel) return { use: 'cold', reason: 'no usable accelerator' };
  const request = templateRequestFrom(spec, facts.accel, facts.tscKhz, spec.network.mode === 'none' ? 0 : facts.nics);
  const k = templateKey(templateVm(request), hv, { setting: facts.setting, ...(facts.assets ? { assets: facts.assets } : {}) });
  if (!k.ok) return { use: 'cold', reason: k.reason };
  const dir = `${dirs.cacheDir.replace(/\/+$/, '')}/templates/${k.key}`;
  if (facts.ready.includes(k.key)) return { use: 'template', key: k.key, dir };
  if (facts.building.includes(k.key)) return { use: 'cold', key: k.key, reason: `the template ${k.key.slice(0, 12)} is being built` };
  if (!facts.builder) return { use: 'cold', key: k.key, reason: `no template ${k.key.slice(0, 12)} yet, and no runcvm CLI to build it` };
  return {
    use: 'cold',
    key: k.key,
    reason: `no template ${k.key.slice(0, 12)} yet; building it`,
    build: { file: facts.builder.node, argv: [facts.builder.cli, ...buildArgs(request, k.key)], log: `${dirs.logDir.replace(/\/+$/, '')}/runcvm-template-${k.key.slice(0, 12)}.log` },
  };
}

/** The one line create logs (info) and `runcvm plan` prints. */
export function describeTemplate(d: TemplateDecision): string {
  return d.use === 'template' ? `template: ${d.key} (restored from ${d.dir})` : `template: cold boot (${d.reason})`;
}
