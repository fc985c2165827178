/**
 * What `runcvm plan` shows about the hypervisor: the command the launcher runs inside the container and, for
 * Firecracker, the --config-file it writes and the API calls involved (the same configuration as API calls, and the
 * post-boot call the launcher makes to stop the VM). Built from the registry entry the launcher uses
 * (Hypervisor.toInvocation), so the view cannot drift from what runs. Pure.
 */
import { CONTAINER_PATHS } from '../launch/schema.js';
import type { Hypervisor, VmPlan } from '../hypervisor/index.js';
import { fromVmPlan, planFirecracker, SEND_CTRL_ALT_DEL } from '../hypervisor/firecracker/plan.js';
import type { ApiCall } from '../hypervisor/firecracker/types.js';

export interface HypervisorView {
  name: Hypervisor['name'];
  /** the full argv inside the container (through the package's loader unless the binary is run directly) */
  argv?: string[];
  /** files the launcher writes before the start (Firecracker's config file), with their content */
  files?: { path: string; content: string }[];
  /** Firecracker: the same configuration as API calls, in the order Firecracker accepts (what the file stands for) */
  apiCalls?: ApiCall[];
  /** Firecracker: the API calls the launcher makes after the boot (graceful stop) */
  stopCalls?: ApiCall[];
  /** why there is no command (e.g. a plan Firecracker cannot express) */
  error?: string;
}

export function hypervisorView(hv: Hypervisor, plan: VmPlan): HypervisorView {
  try {
    const inv = hv.toInvocation(plan);
    const argv = inv.direct ? [inv.file, ...inv.args] : [CONTAINER_PATHS.loader, '--library-path', `${CONTAINER_PATHS.guest}/lib`, inv.file, ...inv.args];
    const view: HypervisorView = { name: hv.name, argv };
    if (inv.files?.length) view.files = inv.files;
    if (hv.name === 'firecracker') {
      // firecrackerInvocation builds its config file from fromVmPlan(plan) with no extras: so do the calls here
      view.apiCalls = planFirecracker(fromVmPlan(plan)).calls;
      if (inv.apiSocket) view.stopCalls = [SEND_CTRL_ALT_DEL];
    }
    return view;
  } catch (err) {
    return { name: hv.name, error: (err as Error)?.message ?? String(err) };
  }
}

/** Text lines for the human-readable output; `quote` renders an argv for a shell. */
export function renderHypervisorView(v: HypervisorView, quote: (argv: readonly string[]) => string): string[] {
  const out = [`# ${v.name} command (inside the container)`, v.argv ? quote(v.argv) : `not available: ${v.error ?? 'unknown'}`, ''];
  for (const f of v.files ?? []) out.push(`# ${v.name} file ${f.path} (written 0600 by the launcher before the start)`, f.content.trimEnd(), '');
  if (v.apiCalls?.length) {
    out.push(`# the same configuration as ${v.name} API calls (PUT on the API socket before InstanceStart)`);
    for (const c of v.apiCalls) out.push(callLine(c));
    out.push('');
  }
  if (v.stopCalls?.length) {
    out.push(`# on a stop signal before the guest connects (then SIGKILL after a bounded wait)`);
    for (const c of v.stopCalls) out.push(callLine(c));
    out.push('');
  }
  return out;
}

function callLine(c: ApiCall): string {
  return c.body === undefined ? `${c.method} ${c.path}` : `${c.method} ${c.path} ${JSON.stringify(c.body)}`;
}
