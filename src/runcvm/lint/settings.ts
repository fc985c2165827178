/**
 * `RUNCVM_*` values in a manifest, judged by the runtime's own parsers (launch/settings.ts, volumes/plan.ts), so
 * that `runcvm lint` refuses exactly what `create` would refuse later (as BAD_SETTING, with the pod stuck in
 * CreateContainerError) and nothing else. Names the runtime never reads from a container's environment are
 * reported too: the runtime strips every `RUNCVM_*` variable from the workload's env, so a misspelt one vanishes
 * without a trace. Pure.
 */
import { parseSettings, SETTING_NAMES, SettingError } from '../launch/settings.js';
import { parseDisksSetting, volumeTransport } from '../volumes/plan.js';

/**
 * Settings of the runtime process on the node (its own environment, from the engine's config or the installer),
 * never of a container: in a pod's env they do nothing.
 */
export const NODE_SETTING_NAMES = [
  'RUNCVM_STATE_DIR', 'RUNCVM_LOG_DIR', 'RUNCVM_CACHE_DIR', 'RUNCVM_ASSETS', 'RUNCVM_GUEST_DIR', 'RUNCVM_RUNC',
  'RUNCVM_NODE', 'RUNCVM_KUBELET_DIR', 'RUNCVM_FIRECRACKER', 'RUNCVM_KVM_DEVICE',
] as const;

export type SettingVerdict =
  | { kind: 'invalid'; problem: string; fix: string }
  | { kind: 'node-only'; problem: string; fix: string }
  | { kind: 'unknown'; problem: string; fix: string };

const isKnown = (name: string): boolean => (SETTING_NAMES as readonly string[]).includes(name);

/** undefined: the runtime accepts NAME=VALUE in a container's environment. */
export function judgeSetting(name: string, value: string): SettingVerdict | undefined {
  if (!name.startsWith('RUNCVM_')) return undefined;
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
    fix: `${near ? `did you mean ${near}? ` : ''}the container settings are ${SETTING_NAMES.join(', ')}`,
  };
}

/** The known setting nearest to a misspelt name (edit distance at most 3), if any. */
export function closestSetting(name: string): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const known of SETTING_NAMES) {
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
