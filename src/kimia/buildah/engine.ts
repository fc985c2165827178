/**
 * Which Buildah kimia drives: `buildah --version` once (about 20 ms, beside the other preflight probes). kimia runs
 * on Debian 12's Buildah 1.28 (a host install) and Debian 13's 1.39 (its image); the version is logged at the start
 * of every build, printed by `kimia version`, and given to the plan for the few flags that differ.
 */
import { runQuick } from '../../core/exec/index.js';

export interface EngineVersion {
  /** "1.39.3" */
  version: string;
  major: number;
  minor: number;
  patch: number;
}

export interface Engine extends EngineVersion {
  path: string;
}

/** "buildah version 1.28.2 (image-spec 1.1.0-rc.2, runtime-spec 1.0.2-dev)" → 1.28.2 */
export function parseBuildahVersion(text: string): EngineVersion | undefined {
  const m = /buildah version (\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return undefined;
  return { version: `${m[1]}.${m[2]}.${m[3]}`, major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** true when the engine is at least major.minor */
export function atLeast(v: EngineVersion | undefined, major: number, minor: number): boolean {
  return !!v && (v.major > major || (v.major === major && v.minor >= minor));
}

export async function probeEngine(path: string): Promise<Engine | undefined> {
  const r = await runQuick(path, ['--version'], { timeoutMs: 10_000 });
  const v = parseBuildahVersion(r.stdout);
  return v ? { path, ...v } : undefined;
}

export function describeEngine(e: Engine | undefined, path?: string): string {
  if (e) return `buildah ${e.version} (${e.path})`;
  return path ? `buildah at ${path} (version unknown: \`buildah --version\` did not answer)` : 'buildah not found in PATH';
}
