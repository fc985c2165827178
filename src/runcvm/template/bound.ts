/**
 * Templates in the node's cache: which ones containers use (each state folder's `template` file names the folder it
 * was bound; such a template is never evicted, as a base disk in use), and the cache bound after a build
 * (RUNCVM_CACHE_MAX counts disks and templates together: storage/apply.ts boundNodeCache).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../core/log/index.js';
import { TEMPLATE_REF, type HostDirs } from '../state/index.js';
import { boundNodeCache } from '../storage/apply.js';

/** template folder → number of containers (state folders) bound to it */
export async function templatesInUse(stateRoot: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const id of await readdir(stateRoot).catch(() => [] as string[])) {
    const ref = (await readFile(join(stateRoot, id, TEMPLATE_REF), 'utf8').catch(() => '')).trim();
    if (ref) out.set(ref, (out.get(ref) ?? 0) + 1);
  }
  return out;
}

export async function boundTemplates(dirs: HostDirs, maxBytes: number, keep: string, log: Logger): Promise<void> {
  await boundNodeCache(dirs.cacheDir, dirs.stateRoot, maxBytes, keep, log);
}
