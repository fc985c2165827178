/**
 * The effects of `create`, as data: every host change create makes is one of these actions, in the order of the plan
 * (plan-create.ts): storage's (storage/plan.ts: the state folder, the disks) and create's own (the debug log, a
 * warning, runc). applyCreate (apply-create.ts) performs them and nothing else; `runcvm plan` prints them with
 * describeAction. Contents that may hold secrets (the command, the environment) are never printed: only what is
 * written, where, with which mode and how many bytes. Pure.
 */
import { describeStorageAction, type StorageAction } from '../storage/plan.js';

export type CreateAction =
  | StorageAction
  /** create or reopen the per-container debug log: 0600, no symlink followed, a plain single-link file of ours */
  | { op: 'open-log'; path: string; removeOnFailure: boolean }
  /** one line on the runtime's stderr */
  | { op: 'warn'; text: string }
  /** hand the engine's own command line to runc */
  | { op: 'runc'; file: string; argv: string[]; passFds: number };

export function describeAction(a: CreateAction): string {
  switch (a.op) {
    case 'open-log':
      return `open debug log ${a.path} (0600, no symlink followed)${a.removeOnFailure ? '' : ', kept on failure'}`;
    case 'warn':
      return `warn on stderr: ${a.text}`;
    case 'runc':
      return `run ${[a.file, ...a.argv].join(' ')}${a.passFds ? ` (passing ${a.passFds} extra descriptors)` : ''}`;
    default:
      return describeStorageAction(a);
  }
}
