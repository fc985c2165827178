/** Read the docker config (or env fallback), register every secret with the redactor, write a private auth.json. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { globalRedactor } from '../../core/redact.js';
import type { BuildRequest } from '../cli/request.js';
import { fail } from '../errors.js';
import { mergeAuth, type AuthMerge } from './merge.js';

export const KANIKO_DOCKER_CONFIG = '/kaniko/.docker';

export interface AuthResult {
  merge: AuthMerge;
  authFile?: string;
  configPath: string;
}

export async function readDockerConfig(dir: string): Promise<string | undefined> {
  try {
    return await readFile(join(dir, 'config.json'), 'utf8');
  } catch {
    return undefined;
  }
}

/** Register the env fallback password before anything else runs (even before preflight prints). */
export function registerEnvSecrets(env: Record<string, string | undefined>): void {
  if (env.DOCKER_PASSWORD) globalRedactor.addBasicAuth(env.DOCKER_USERNAME ?? '', env.DOCKER_PASSWORD);
}

export async function prepareAuth(request: BuildRequest, env: Record<string, string | undefined>, privateDir: string): Promise<AuthResult> {
  const configPath = join(request.dockerConfigDir, 'config.json');
  const configJson = await readDockerConfig(request.dockerConfigDir);
  let merge: AuthMerge;
  try {
    merge = mergeAuth({ ...(configJson !== undefined ? { configJson } : {}), env, destinations: request.destinations });
  } catch (err) {
    throw fail('DOCKER_CONFIG_INVALID', { path: configPath, reason: (err as Error).message }, err);
  }
  for (const c of merge.credentials) globalRedactor.addBasicAuth(c.username, c.password);
  for (const s of merge.secrets) globalRedactor.add(s);
  if (merge.credentials.length === 0) return { merge, configPath };
  const authFile = join(privateDir, 'auth.json');
  // created fresh (wx) with mode 0600 inside the private 0700 folder, never visible to anyone else
  await writeFile(authFile, JSON.stringify(merge.authJson, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  return { merge, authFile, configPath };
}
