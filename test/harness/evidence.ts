/**
 * Failure evidence: when a test fails, copy the logs of the services it used into
 * `test-results/<test name>/` (plus `errors.txt`); passing tests write nothing.
 *
 *   afterEach((ctx) => saveEvidence(ctx, [registry, containerd]));   // anything with a logPath, or a path
 *   // or, once per file:
 *   keepEvidence(() => [registry, containerd]);
 */
import { copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, type TestContext } from 'vitest';
import { projectPath } from '../../src/core/paths.js';

export type EvidenceSource = string | { logPath: string; name?: string } | undefined | null;

export const RESULTS_DIR = projectPath('test-results');

/** "suite > test name" as a folder name: [A-Za-z0-9._-], at most 120 chars. */
export function evidenceDirName(ctx: Pick<TestContext, 'task'>): string {
  const names: string[] = [];
  let suite = ctx.task.suite;
  while (suite && suite.name) {
    names.unshift(suite.name);
    suite = suite.suite;
  }
  names.push(ctx.task.name);
  const file = ctx.task.file?.name ? basename(ctx.task.file.name).replace(/\.test\.[cm]?[jt]s$/, '') : '';
  const raw = [file, ...names].filter(Boolean).join('--');
  return raw.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 120) || 'unnamed-test';
}

/** Copy the sources' logs when the test failed; returns the evidence folder or undefined when it passed. */
export async function saveEvidence(ctx: Pick<TestContext, 'task'>, sources: EvidenceSource[]): Promise<string | undefined> {
  if (ctx.task.result?.state !== 'fail') return undefined;
  const dir = join(RESULTS_DIR, evidenceDirName(ctx));
  await mkdir(dir, { recursive: true });
  const errors = (ctx.task.result.errors ?? []).map((e) => `${e.name ?? 'Error'}: ${e.message}\n${e.stack ?? ''}`);
  await writeFile(join(dir, 'errors.txt'), `${errors.join('\n\n')}\n`);
  const used = new Set<string>();
  for (const src of sources) {
    if (!src) continue;
    const path = typeof src === 'string' ? src : src.logPath;
    try {
      if (!(await stat(path)).isFile()) continue;
    } catch {
      continue;
    }
    let name = typeof src !== 'string' && src.name ? `${src.name}.log` : basename(path);
    for (let i = 2; used.has(name); i++) name = `${i}-${name}`;
    used.add(name);
    await copyFile(path, join(dir, name)).catch(() => undefined);
  }
  return dir;
}

/** Register an afterEach (in the calling file/suite) that saves the current sources' logs on failure. */
export function keepEvidence(sources: () => EvidenceSource[]): void {
  afterEach(async (ctx) => {
    await saveEvidence(ctx, sources());
  });
}
