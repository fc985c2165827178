/**
 * Where the project lives on disk. Both `src/core/paths.ts` (tests) and `dist/core/paths.js` (bins) sit two levels
 * below the project root, so the same computation works for both.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Built assets (guest kernel, initramfs, guest package): `$RUNCVM_ASSETS` or `<root>/var/assets`. */
export function assetsDir(env: Record<string, string | undefined> = process.env): string {
  return env.RUNCVM_ASSETS || join(PROJECT_ROOT, 'var', 'assets');
}

export function projectPath(...parts: string[]): string {
  return join(PROJECT_ROOT, ...parts);
}
