/**
 * Which Buildah kimia drives, so that the log says which engine ran, Dockerfile features the engine is too old for
 * are refused before any pull, and the build key names the engine. `buildah --version` runs once per binary: its
 * answer is kept beside the build keys under the binary's identity (real path, inode, size, mtime, ctime: a new
 * package or a copied-over binary is a new identity), so an unchanged build starts no Buildah process at all.
 */
import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
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
  /** real path, inode, size, mtime and ctime of the binary */
  identity?: string;
}

/** versions kept per binary identity (a node rarely has more than one or two buildah binaries over time) */
export const MAX_KNOWN_ENGINES = 8;

export async function binaryIdentity(path: string): Promise<string | undefined> {
  try {
    const real = await realpath(path);
    const st = await stat(real);
    return st.isFile() ? `${real}:${st.ino}:${st.size}:${Math.trunc(st.mtimeMs)}:${Math.trunc(st.ctimeMs)}` : undefined;
  } catch {
    return undefined;
  }
}

async function readKnown(file: string): Promise<Record<string, string>> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string' && /^\d+\.\d+(\.\d+)?$/.test(e[1])));
  } catch {
    return {};
  }
}

async function writeKnown(file: string, known: Record<string, string>): Promise<void> {
  const entries = Object.entries(known).slice(-MAX_KNOWN_ENGINES);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(Object.fromEntries(entries)) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * buildah on PATH and its version, looked up once when a build starts: the preflight, the build key (the engine's
 * version is part of it) and the plan all read this one answer. `known`: the file of versions per binary identity
 * (beside the build keys); without it, or for a binary it does not list, `buildah --version` runs.
 */
export async function findEngine(env: Record<string, string | undefined>, known?: string): Promise<EngineFound> {
  const path = await which('buildah', env);
  if (!path) return {};
  const identity = await binaryIdentity(path);
  const versions = identity && known ? await readKnown(known) : {};
  const version = identity ? versions[identity] : undefined;
  if (identity && version) return { path, identity, engine: { name: 'buildah', version } };
  const engine = await probeEngine(path, env);
  if (engine && identity && known) {
    delete versions[identity];
    await writeKnown(known, { ...versions, [identity]: engine.version }).catch(() => undefined);
  }
  return { path, ...(identity ? { identity } : {}), ...(engine ? { engine } : {}) };
}

/** The Buildah release in kimia's image (Debian 13), named by errors about features an older engine lacks. */
export const IMAGE_ENGINE = { name: 'buildah', version: '1.39.3', distribution: 'Debian 13 (trixie)' } as const;
