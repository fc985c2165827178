/**
 * Which containers are VMs, and where their runcvm state lives, for `exec`. A VM container must never get a process
 * on the host kernel: when its launch.json is not under this invocation's RUNCVM_STATE_DIR (the engine's
 * environment changed between create and exec, or another runcvm installation made it), runc's own record of the
 * container (`<runc root>/<id>/state.json`, written at create from the rewritten config) still names the state folder
 * as the source of the /.runcvm/state mount. Pure; the reads are in main.ts.
 */
import { join } from 'node:path';
import { CONTAINER_PATHS } from '../launch/schema.js';

/** runc's state root: `--root`, else runc 1.1's default (/run/runc; $XDG_RUNTIME_DIR/runc when not root). */
export function runcRoot(globalRoot: string | undefined, env: Record<string, string | undefined>, euid: number | undefined): string {
  if (globalRoot) return globalRoot;
  if (euid !== undefined && euid !== 0 && env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'runc');
  return '/run/runc';
}

export type RuncRecord =
  /** runc's state.json shows the runcvm launcher mounts: a VM container; stateDir is the host folder behind /.runcvm/state */
  | { kind: 'vm'; stateDir?: string }
  /** a container without runcvm's mounts: runc runs the exec, at runc's cost */
  | { kind: 'plain' }
  /** no readable record (unknown container, other root): runc decides, and says so itself */
  | { kind: 'unknown' };

interface StateJson {
  config?: { mounts?: { source?: unknown; destination?: unknown }[] };
}

/** Classify a container from the text of runc's state.json (undefined: the file could not be read). */
export function classifyRuncRecord(text: string | undefined): RuncRecord {
  if (text === undefined) return { kind: 'unknown' };
  let parsed: StateJson;
  try {
    parsed = JSON.parse(text) as StateJson;
  } catch {
    // a torn or foreign file: a VM container still shows runcvm's mount path in it
    return text.includes(`"${CONTAINER_PATHS.state}"`) ? { kind: 'vm' } : { kind: 'unknown' };
  }
  const mounts = Array.isArray(parsed.config?.mounts) ? parsed.config.mounts : [];
  const state = mounts.find((m) => m.destination === CONTAINER_PATHS.state);
  if (state) return typeof state.source === 'string' && state.source.startsWith('/') ? { kind: 'vm', stateDir: state.source } : { kind: 'vm' };
  const guest = mounts.some((m) => m.destination === CONTAINER_PATHS.guest);
  return guest ? { kind: 'vm' } : { kind: 'plain' };
}

/** Where to look for runc's record of a container. */
export function runcStatePath(root: string, id: string): string {
  return join(root, id, 'state.json');
}
