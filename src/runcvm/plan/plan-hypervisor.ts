/**
 * What `runcvm plan` shows about the hypervisor: the backend's own plan (Hypervisor.plan, the one the launcher
 * starts): the command inside the container, the files it writes before the start, and the backend's notes (for
 * Firecracker, the same configuration as API calls and the call that stops it). Pure.
 */
import type { Hypervisor, HypervisorPlan, VmPlan } from '../hypervisor/index.js';

export interface HypervisorView {
  name: Hypervisor['name'];
  /** the full argv inside the container */
  argv?: string[];
  /** files the launcher writes before the start, with their content */
  files?: HypervisorPlan['files'];
  notes?: HypervisorPlan['notes'];
  /** why there is no command (e.g. a plan Firecracker cannot express) */
  error?: string;
}

export function hypervisorView(hv: Hypervisor, plan: VmPlan): HypervisorView {
  try {
    const p = hv.plan(plan);
    return { name: hv.name, argv: p.argv, ...(p.files.length ? { files: p.files } : {}), ...(p.notes.length ? { notes: p.notes } : {}) };
  } catch (err) {
    return { name: hv.name, error: (err as Error)?.message ?? String(err) };
  }
}

/** Text lines for the human-readable output; `quote` renders an argv for a shell. */
export function renderHypervisorView(v: HypervisorView, quote: (argv: readonly string[]) => string): string[] {
  const out = [`# ${v.name} command (inside the container)`, v.argv ? quote(v.argv) : `not available: ${v.error ?? 'unknown'}`, ''];
  for (const f of v.files ?? []) out.push(`# ${v.name} file ${f.path} (written 0600 by the launcher before the start)`, f.content.trimEnd(), '');
  for (const n of v.notes ?? []) out.push(`# ${n.title}`, ...n.lines, '');
  return out;
}
