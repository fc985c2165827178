/**
 * Which Buildah kimia drives: `buildah --version` once per build (~20 ms, beside the preflight), so that the log says
 * which engine ran and Dockerfile features the engine is too old for are refused before any pull.
 */
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { run } from '../../core/exec/index.js';
import type { EngineVersion } from '../dockerfile/check.js';

/** The first executable NAME on PATH (as execvp finds it). */
export async function which(name: string, env: Record<string, string | undefined>): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin').split(delimiter)) {
    const p = join(dir || '.', name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** "buildah version 1.28.2 (image-spec 1.1.0-rc2, runtime-spec 1.0.2-dev)" → { name: 'buildah', version: '1.28.2' } */
export function parseEngineVersion(stdout: string): EngineVersion | undefined {
  const m = /buildah version (\d+\.\d+(?:\.\d+)?)/i.exec(stdout);
  return m ? { name: 'buildah', version: m[1]! } : undefined;
}

export async function probeEngine(buildahPath: string, env?: Record<string, string | undefined>): Promise<EngineVersion | undefined> {
  // a missing binary rejects even with reject:false (spawn error): that is 'no engine', not a crash
  const r = await run(buildahPath, ['--version'], { timeoutMs: 10_000, reject: false, ...(env ? { env } : {}) }).catch(() => undefined);
  if (!r) return undefined;
  return r.exitCode === 0 ? parseEngineVersion(r.stdout) : undefined;
}

export interface EngineFound {
  /** buildah's path on PATH (undefined: not installed) */
  path?: string;
  engine?: EngineVersion;
}

/**
 * buildah on PATH and its version, looked up once when a build starts: the preflight, the build key (the engine's
 * version is part of it) and the plan all read this one answer.
 */
export async function findEngine(env: Record<string, string | undefined>): Promise<EngineFound> {
  const path = await which('buildah', env);
  if (!path) return {};
  const engine = await probeEngine(path, env);
  return engine ? { path, engine } : { path };
}

/** The Buildah release in kimia's image (Debian 13), named by errors about features an older engine lacks. */
export const IMAGE_ENGINE = { name: 'buildah', version: '1.39.3', distribution: 'Debian 13 (trixie)' } as const;
