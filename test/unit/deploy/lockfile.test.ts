/**
 * package-lock.json is what `npm ci` installs from on a user's machine and in CI, under npm 10 and npm 11. `npm ci`
 * refuses a lock file that leaves out any optional dependency of a locked package, other platforms' ones included
 * (rollup's @rollup/rollup-<platform>): npm 11's `npm install` in a folder that already has node_modules writes
 * such a lock file. The fix is `rm -rf node_modules && npm install --package-lock-only` (or a lock file made from
 * scratch); this test names what is missing long before the fresh-machine test's `npm ci` would refuse it.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { projectPath } from '../../../src/core/paths.js';

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  dev?: boolean;
}

/** Where node's resolution finds `name` from the package at `from` (its own node_modules, then each parent's). */
function resolveIn(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!base) return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut < 0 ? '' : base.slice(0, cut);
  }
}

describe('package-lock.json', () => {
  const lock = JSON.parse(readFileSync(projectPath('package-lock.json'), 'utf8')) as { lockfileVersion: number; packages: Record<string, LockEntry> };
  const pkg = JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

  it('records every dependency and every optional (per-platform) dependency of every locked package', () => {
    expect(lock.lockfileVersion).toBe(3);
    const missing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
        if (!resolveIn(lock.packages, path, name)) missing.push(`${name} (needed by ${path || 'the project'})`);
      }
    }
    expect(missing, 'fix: rm -rf node_modules && npm install --package-lock-only').toEqual([]);
  });

  it('locks exactly the versions package.json pins', () => {
    for (const [name, version] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
      expect(lock.packages[`node_modules/${name}`]?.version, name).toBe(version);
    }
  });
});
