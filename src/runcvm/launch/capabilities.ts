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
import { ConfigKey } from '../guest/contract.js';

export const CAPABILITY_SETS = ['bounding', 'effective', 'inheritable', 'permitted', 'ambient'] as const;
export type CapabilitySet = (typeof CAPABILITY_SETS)[number];
export type CapabilitySets = Record<CapabilitySet, string[]>;

/** Linux capability numbers (include/uapi/linux/capability.h); 40 is the last one as of Linux 6.x. */
export const CAPABILITY_NUMBERS: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

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
