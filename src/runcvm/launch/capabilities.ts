/**
 * OCI process.capabilities → what the guest init applies. Pure.
 *
 * runc's rules (libcontainer 1.1), which the guest init repeats so `grep Cap /proc/self/status` reads the same:
 *  - a name runc does not know (or the running kernel does not have) is ignored with a warning, never an error;
 *  - no `capabilities` object at all means five EMPTY sets (runc 1.1.5 starts such a process with no capabilities,
 *    even as root — checked by hand with `runc run`), not "keep everything";
 *  - names are matched exactly (`CAP_NET_ADMIN`; engines normalise `net_admin` themselves before writing config.json).
 * The guest kernel may know fewer capabilities than this table: init.c skips numbers above its
 * /proc/sys/kernel/cap_last_cap, as runc skips those above the host's.
 */
import type { OciProcess } from './oci.js';
import { CAPABILITY_NUMBERS, ConfigKey } from '../guest/contract.js';

export const CAPABILITY_SETS = ['bounding', 'effective', 'inheritable', 'permitted', 'ambient'] as const;
export type CapabilitySet = (typeof CAPABILITY_SETS)[number];
export type CapabilitySets = Record<CapabilitySet, string[]>;

/** Linux capability numbers: defined with the guest contract (the exec client maps names in C too). */
export { CAPABILITY_NUMBERS };

export function emptyCapabilitySets(): CapabilitySets {
  return { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
}

/**
 * The five sets with unknown names left out (each set duplicate-free, in the spec's order), and the unknown names
 * (once each) so the caller can warn as runc does.
 */
export function capabilitiesFromSpec(caps: OciProcess['capabilities'] | null | undefined): { sets: CapabilitySets; unknown: string[] } {
  const sets = emptyCapabilitySets();
  const unknown = new Set<string>();
  if (!caps) return { sets, unknown: [] };
  for (const set of CAPABILITY_SETS) {
    const seen = new Set<string>();
    for (const name of caps[set] ?? []) {
      if (!Object.hasOwn(CAPABILITY_NUMBERS, name)) {
        unknown.add(name);
        continue;
      }
      if (seen.has(name)) continue;
      seen.add(name);
      sets[set].push(name);
    }
  }
  return { sets, unknown: [...unknown] };
}

/** Known names → their numbers, ascending, duplicate-free (unknown names are skipped). */
export function capabilityNumbers(names: readonly string[]): number[] {
  const out = new Set<number>();
  for (const n of names) {
    const v = Object.hasOwn(CAPABILITY_NUMBERS, n) ? CAPABILITY_NUMBERS[n] : undefined;
    if (v !== undefined) out.add(v);
  }
  return [...out].sort((a, b) => a - b);
}

/** The set as the bit mask /proc/<pid>/status prints (CapBnd: 000001ffffffffff), limited to caps 0..lastCap. */
export function capabilityMask(names: readonly string[], lastCap = 63): bigint {
  let mask = 0n;
  for (const n of capabilityNumbers(names)) if (n <= lastCap) mask |= 1n << BigInt(n);
  return mask;
}

/** `cap=<set> <n,n,…>` lines of the guest config (`-` for an empty set: the set is still applied, as empty). */
export function capabilityConfigLines(sets: CapabilitySets): string[] {
  return CAPABILITY_SETS.map((set) => {
    const nums = capabilityNumbers(sets[set]);
    return `${ConfigKey.cap}=${set} ${nums.length ? nums.join(',') : '-'}`;
  });
}
