/**
 * `RUNCVM_*` values in a manifest, judged by the runtime's own parsers (launch/settings.ts, volumes/plan.ts), so
 * that `runcvm lint` refuses exactly what `create` would refuse later (as BAD_SETTING, with the pod stuck in
 * CreateContainerError) and nothing else. Names the runtime never reads from a container's environment are
 * reported too: the runtime strips every `RUNCVM_*` variable from the workload's env, so a misspelt one vanishes
 * without a trace. Pure.
 */
import { CONTAINER_SETTING_NAMES, DEFAULT_KERNELS_DIR, NODE_SETTING_NAMES, parseSettings, SettingError } from '../launch/settings.js';
import { kernelCandidate } from '../launch/kernel.js';
import { parseDisksSetting, volumeTransport } from '../volumes/plan.js';

export type SettingVerdict =
  | { kind: 'invalid'; problem: string; fix: string }
  | { kind: 'node-only'; problem: string; fix: string }
  | { kind: 'unknown'; problem: string; fix: string }
  /** accepted only if the node approves it (a RUNCVM_KERNEL outside the default kernel folder) */
  | { kind: 'node-approval'; problem: string; fix: string };

const isKnown = (name: string): boolean => (CONTAINER_SETTING_NAMES as readonly string[]).includes(name);

/** undefined: the runtime accepts NAME=VALUE in a container's environment. */
export function judgeSetting(name: string, value: string): SettingVerdict | undefined {
  if (!name.startsWith('RUNCVM_')) return undefined;
  if (name === 'RUNCVM_KERNEL' && value.trim() !== '') {
    const c = kernelCandidate({ value, origin: 'container' }, DEFAULT_KERNELS_DIR);
    if (!c.ok) {
      // `..` is refused whatever the node's folder; another absolute path only if the node approves a folder holding it
      const always = value.split('/').includes('..');
      return { kind: always ? 'invalid' : 'node-approval', problem: always ? c.error.message.replace(/^.*? is not allowed: /, '') : `${value} is outside the default approved kernel folder ${DEFAULT_KERNELS_DIR}: create refuses it unless the node's RUNCVM_KERNELS_DIR holds it`, fix: c.error.fix };
    }
  }
  if (isKnown(name)) {
    try {
      if (name === 'RUNCVM_DISKS') parseDisksSetting(value);
      else if (name === 'RUNCVM_VOLUME_TRANSPORT') volumeTransport('qemu', value);
      else parseSettings({ [name]: value });
      return undefined;
    } catch (err) {
      if (err instanceof SettingError) return { kind: 'invalid', problem: err.problem, fix: err.fix };
      throw err;
    }
  }
  if ((NODE_SETTING_NAMES as readonly string[]).includes(name)) {
    return {
      kind: 'node-only',
      problem: `${name} is a setting of the runtime on the node (its own environment), not of a container: in the pod env it does nothing`,
      fix: `set ${name} in the environment of the engine that runs bin/runcvm-runtime (containerd, k3s or dockerd), or remove it here`,
    };
  }
  const near = closestSetting(name);
  return {
    kind: 'unknown',
    problem: `the runtime reads no ${name}; it removes every RUNCVM_* variable from the workload's environment, so this one is lost`,
    fix: `${near ? `did you mean ${near}? ` : ''}the container settings are ${CONTAINER_SETTING_NAMES.join(', ')}`,
  };
}

/** The known setting nearest to a misspelt name (edit distance at most 3), if any. */
export function closestSetting(name: string): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const known of CONTAINER_SETTING_NAMES) {
    const d = editDistance(name, known);
    if (d <= 3 && (!best || d < best.d)) best = { name: known, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
