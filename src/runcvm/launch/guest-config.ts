/**
 * What the guest init reads, rendered from the LaunchSpec: `/.runcvm/entrypoint` (the command, one argument per line)
 * and `/.runcvm/config` (`key=value` lines). Values are %-escaped (`%` → %25, newline → %0A, CR → %0D) so the C init
 * parses them without a JSON library, and `debugfs -R "cat /.runcvm/config" disk` stays readable. The keys are the
 * guest contract's (src/runcvm/guest/contract.ts ConfigKey; guest/config.c reads them through contract.h).
 */
import { ConfigKey as K, RLIMIT_NUMBERS } from '../guest/contract.js';
import type { LaunchSpec } from './schema.js';
import { volumeConfigLines } from './guest-volumes.js';
import { capabilityConfigLines } from './capabilities.js';
import { mountFlags, MS } from './rootfs.js';
import { compileSeccomp } from '../seccomp/index.js';

export function escapeValue(value: string): string {
  return value.replace(/%/g, '%25').replace(/\n/g, '%0A').replace(/\r/g, '%0D');
}

export function unescapeValue(value: string): string {
  return value.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Empty args → empty file: the guest then logs `[VM-START] No entrypoint found, sleeping`. */
export function renderEntrypoint(args: readonly string[]): string {
  return args.map((a) => escapeValue(a) + '\n').join('');
}

export function parseEntrypoint(text: string): string[] {
  return text.split('\n').filter((l, i, all) => !(l === '' && i === all.length - 1)).map(unescapeValue);
}

/** RLIMIT names as the guest init knows them (the guest contract's: guest/contract.ts). */
export { RLIMIT_NUMBERS };

export function renderGuestConfig(spec: LaunchSpec): string {
  const p = spec.process;
  const lines: string[] = [
    `${K.version}=${spec.version}`,
    `${K.id}=${escapeValue(spec.containerId)}`,
    `${K.hostname}=${escapeValue(spec.hostname)}`,
    `${K.uid}=${p.user.uid}`,
    `${K.gid}=${p.user.gid}`,
    `${K.groups}=${p.user.additionalGids.join(',')}`,
    `${K.umask}=${p.user.umask ?? 0o022}`,
    `${K.cwd}=${escapeValue(p.cwd)}`,
    `${K.terminal}=${p.terminal ? 1 : 0}`,
    `${K.nonewprivs}=${p.noNewPrivileges ? 1 : 0}`,
    `${K.loglevel}=${spec.log.level}`,
  ];
  if (spec.break) lines.push(`${K.break}=${escapeValue(spec.break)}`);
  // no cap= lines (a launch spec from before capabilities were carried): init keeps its old full-root behaviour
  if (p.capabilities) lines.push(...capabilityConfigLines(p.capabilities));
  if (spec.root?.readonly) lines.push(`${K.readonly}=1`);
  if (spec.root?.readonly && spec.root.readonlyRun) lines.push(`${K.readonlyRun}=1`);
  for (const r of p.rlimits) {
    const n = RLIMIT_NUMBERS[r.type];
    if (n !== undefined) lines.push(`${K.rlimit}=${n} ${r.soft} ${r.hard}`);
  }
  const sp = (v: string) => escapeValue(v).replace(/ /g, '%20');
  for (const m of spec.mounts) lines.push(`${K.tmpfs}=${sp(m.destination)} ${sp(m.options.join(',') || '-')}`);
  // volumes (src/runcvm/volumes, mounted by guest/vol.c after the tmpfs mounts); data disks follow root + upper
  lines.push(...volumeConfigLines(spec.volumes ?? [], spec.disks.filter((d) => d.role !== 'data').length));
  // the workload's own /proc, /dev, /sys (guest/rootfs.c), in the spec's order
  for (const m of spec.rootfs?.mounts ?? []) {
    const { flags, data } = mountFlags(m.options);
    // runc mounts /dev and a tmpfs writable, and makes them read-only once their contents exist
    const roAfter = (flags & MS.RDONLY) !== 0 && (m.type === 'tmpfs' || m.destination === '/dev');
    const now = roAfter ? flags & ~MS.RDONLY : flags;
    lines.push(`${K.mount}=${[m.type, m.source || m.type, m.destination, String(now), data || '-', roAfter ? '1' : '0'].map(sp).join(' ')}`);
  }
  for (const d of spec.rootfs?.devices ?? []) lines.push(`${K.device}=${[d.path, d.type, d.major, d.minor, d.fileMode, d.uid, d.gid].map((v) => sp(String(v))).join(' ')}`);
  for (const path of spec.rootfs?.maskedPaths ?? []) lines.push(`${K.maskedPath}=${escapeValue(path)}`);
  for (const path of spec.rootfs?.readonlyPaths ?? []) lines.push(`${K.readonlyPath}=${escapeValue(path)}`);
  for (const [key, value] of Object.entries(spec.sysctl ?? {})) lines.push(`${K.sysctl}=${sp(key)} ${sp(value)}`);
  if (p.oomScoreAdj !== undefined) lines.push(`${K.oomScoreAdj}=${p.oomScoreAdj}`);
  for (const m of spec.userns?.uidMappings ?? []) lines.push(`${K.uidmap}=${m.containerID} ${m.hostID} ${m.size}`);
  for (const m of spec.userns?.gidMappings ?? []) lines.push(`${K.gidmap}=${m.containerID} ${m.hostID} ${m.size}`);
  const seccomp = spec.seccomp ? compileSeccomp(spec.seccomp) : undefined;
  if (seccomp) lines.push(`${K.seccomp}=${seccomp.program.toString('hex')}`, `${K.seccompFlags}=${seccomp.flags}`);
  for (const e of p.env) lines.push(`${K.env}=${escapeValue(e)}`);
  return lines.join('\n') + '\n';
}
