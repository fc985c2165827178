/** The parts of the OCI runtime spec (config.json) runcvm reads or rewrites; everything else is carried as is. */
import { posix } from 'node:path';
import type { SeccompProfile } from '../seccomp/profile.js';

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface OciRlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface OciProcess {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args?: string[];
  commandLine?: string;
  env?: string[];
  cwd: string;
  capabilities?: Partial<Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>>;
  rlimits?: OciRlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
  [key: string]: unknown;
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
  [key: string]: unknown;
}

export interface OciDevice {
  type: string;
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface OciDeviceCgroup {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

export interface OciResources {
  devices?: OciDeviceCgroup[];
  memory?: { limit?: number; reservation?: number; swap?: number; [key: string]: unknown };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** A user namespace map entry: ids containerID … containerID+size-1 are hostID … on the host. */
export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciLinux {
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
  devices?: OciDevice[];
  resources?: OciResources;
  namespaces?: { type: string; path?: string }[];
  maskedPaths?: string[];
  readonlyPaths?: string[];
  sysctl?: Record<string, string>;
  /** checked where it is used (src/runcvm/seccomp: shape by its schema, meaning by its plan) */
  seccomp?: SeccompProfile;
  [key: string]: unknown;
}

export interface OciSpec {
  ociVersion: string;
  process?: OciProcess;
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  mounts?: OciMount[];
  annotations?: Record<string, string>;
  linux?: OciLinux;
  [key: string]: unknown;
}

/** A mount destination as a normalized absolute path (`data/` → `/data`), so destinations compare as equal. */
export function normalizeDestination(dest: string): string {
  const n = posix.normalize(dest.startsWith('/') ? dest : `/${dest}`);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

export function envMap(env: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env ?? []) {
    const i = entry.indexOf('=');
    if (i <= 0) continue;
    out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}
