/**
 * Which Buildah kimia drives: `buildah --version` once per build (~20 ms, beside the preflight), so that the log says
 * which engine ran and Dockerfile features the engine is too old for are refused before any pull.
 */
import { run } from '../../core/exec/index.js';
import type { EngineVersion } from '../dockerfile/check.js';

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

/** The Buildah release in kimia's image (Debian 13), named by errors about features an older engine lacks. */
export const IMAGE_ENGINE = { name: 'buildah', version: '1.39.3', distribution: 'Debian 13 (trixie)' } as const;
