/**
 * Making and checking a VM template (issue 17, docs/dev/notes/templates.md §3.3): `bootAndSave` boots a VM parked in
 * its initramfs (VmPlan.templateBuild), waits for the guest's PARKED frame on the io port, and saves it
 * (RunningVm.save); `checkRestore` restores the saved files once and needs the guest to answer the RESUME frame.
 * Both clean up every process, socket and placeholder file they made, on every path. `runcvm template build`
 * (template/store.ts) calls them; the store owns the folder, the manifest and the rename into place.
 */
import type { Logger } from '../../core/log/index.js';
import type { Hypervisor, TemplateFiles, VmPlan } from '../hypervisor/types.js';

export interface BootAndSaveOptions {
  /** a private, empty folder for the sockets and placeholder disks of the build (removed by the caller) */
  workDir: string;
  /** the bound on boot → PARKED, and on restore → the guest's answer (default 60 s: TCG on a busy host) */
  timeoutMs?: number;
  log?: Logger;
}

/** Boots `vm`'s shape parked (placeholder disks in workDir), waits for PARKED, saves it into `to`. */
export async function bootAndSave(vm: VmPlan, hv: Hypervisor, to: TemplateFiles, opts: BootAndSaveOptions): Promise<void> {
  void vm;
  void hv;
  void to;
  void opts;
  throw new Error('bootAndSave: not implemented yet');
}

/** Restores `files` once with `vm`'s shape and needs the guest to take the RESUME frame within the bound. */
export async function checkRestore(vm: VmPlan, hv: Hypervisor, files: TemplateFiles, opts: BootAndSaveOptions): Promise<void> {
  void vm;
  void hv;
  void files;
  void opts;
  throw new Error('checkRestore: not implemented yet');
}
