/**
 * The effects of `create`, as data: every host change create makes is one of these actions, in the order of the plan
 * (plan-create.ts): storage's (storage/plan.ts: the state folder, the disks) and create's own (the debug log, a
 * warning, the launcher's root, ownership for a user namespace, runc). applyCreate (apply-create.ts) performs them
 * and nothing else; `runcvm plan` prints them with describeAction. Contents that may hold secrets (the command, the
 * environment) are never printed: only what is written, where, with which mode and how many bytes. Pure.
 */
import { describeStorageAction, type StorageAction } from '../storage/plan.js';
import type { HostIds } from '../bundle/transforms/launcher-root.js';

/** Host ids: the ones a user namespace's root maps to. */
export type Owner = HostIds;

export type CreateAction =
  | StorageAction
  /**
   * create or reopen the per-container debug log: 0600, no symlink followed, a plain single-link file of ours (or of
   * `owner`, the user namespace's root, which the launcher writes it as)
   */
  | { op: 'open-log'; path: string; removeOnFailure: boolean; owner?: Owner }
  /** one line on the runtime's stderr */
  | { op: 'warn'; text: string }
  /** the launcher's root folder (runcvm's private bundle): empty, with the mount points runc mounts onto */
  | { op: 'launcher-root'; path: string; dirs: string[]; files: string[] }
  /** a folder and everything in it to `owner` (symlinks not followed) */
  | { op: 'chown'; path: string; owner: Owner; what: string }
  /**
   * hand the engine's command line (pointed at runcvm's private bundle) to runc. `foreground`: a `run` that lasts as
   * long as the container; the runtime's signals are passed on to runc, as if the engine had started runc itself.
   */
  | { op: 'runc'; file: string; argv: string[]; passFds: number; foreground?: true }
  /**
   * runc's record of the container (`<root>/<id>/state.json`) names the bundle runc was given (runcvm's private
   * one): put the caller's back in its `bundle=` label, which `runc state`, `runc list` and OCI hooks report. No
   * record (runc failed): nothing to do.
   */
  | { op: 'runc-bundle-label'; stateFile: string; from: string; to: string }
  /**
   * start a process that outlives create (its own session, stdin closed, output appended to `log`) and is not
   * waited for: the VM template builder (template/plan.ts), which the container never waits on
   */
  | { op: 'spawn-detached'; file: string; argv: string[]; log: string; what: string; nice?: number }
  /** a stale VM template (its RAM file changed since the build): renamed away, then unlinked (running VMs keep their mapping) */
  | { op: 'remove-template'; dir: string; reason: string };

export function describeAction(a: CreateAction): string {
  switch (a.op) {
    case 'open-log':
      return `open debug log ${a.path} (0600, no symlink followed${a.owner ? `, owned by ${a.owner.uid}:${a.owner.gid}` : ''})${a.removeOnFailure ? '' : ', kept on failure'}`;
    case 'warn':
      return `warn on stderr: ${a.text}`;
    case 'launcher-root':
      return `launcher root ${a.path} 0755: mount points ${[...a.dirs.map((d) => `${d}/`), ...a.files].join(' ')}`;
    case 'chown':
      return `chown -R ${a.owner.uid}:${a.owner.gid} ${a.path}: ${a.what}`;
    case 'runc-bundle-label':
      return `runc's record ${a.stateFile}: label bundle=${a.from} → bundle=${a.to} (the caller's bundle, as runc state reports it)`;
    case 'runc':
      return `run ${[a.file, ...a.argv].join(' ')}${a.passFds ? ` (passing ${a.passFds} extra descriptors)` : ''}${a.foreground ? ' (foreground: signals passed on)' : ''}`;
    case 'remove-template':
      return `remove the VM template ${a.dir} (rename away, then unlink): ${a.reason}`;
    case 'spawn-detached':
      return `start detached ${[a.file, ...a.argv].join(' ')} (output to ${a.log}${a.nice ? `, nice ${a.nice}` : ''}; not waited for): ${a.what}`;
    default:
      return describeStorageAction(a);
  }
}
