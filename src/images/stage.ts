/**
 * Stage each image's build context: its Dockerfile plus exactly what goes into the image, nothing else from the
 * checkout (so no test file, TypeScript source or dev dependency can slip in through the context).
 *
 *   kimia/             Dockerfile, kimia/{bin/kimia, package.json, dist/kimia/*.js}: one esbuild bundle of src/kimia
 *                      (lazy imports kept as chunks; undici, execa, tar, yaml, zod inlined, so no node_modules)
 *   runcvm-installer/  see stageInstaller in ./installer-stage.ts
 */
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/exec/index.js';
import { projectPath } from '../core/paths.js';
import type { ImageBuild } from './plan.js';

/** esbuild options shared by every bundle: Node 20 ESM, with `require` available to bundled CommonJS code. */
export const ESBUILD_NODE = [
  '--bundle', '--platform=node', '--target=node20', '--format=esm', '--log-level=warning', '--legal-comments=none',
  "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
];

export async function esbuildPath(): Promise<string> {
  const p = projectPath('node_modules', '.bin', 'esbuild');
  await readFile(p).catch(() => {
    throw new Error(`esbuild not found at ${p}: building images needs the dev dependencies (run npm ci)`);
  });
  return p;
}

/** package.json of an installed tree: the version (read by `kimia version`) and ESM for the .js files. */
export async function writeRuntimePackageJson(dir: string, name: string): Promise<void> {
  const pkg = JSON.parse(await readFile(projectPath('package.json'), 'utf8')) as { version: string; license?: string };
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, version: pkg.version, private: true, type: 'module' }, null, 2) + '\n', { mode: 0o644 });
}

export async function stageKimia(build: ImageBuild): Promise<void> {
  const app = join(build.contextDir, 'kimia');
  await mkdir(join(app, 'bin'), { recursive: true });
  await copyFile(projectPath(build.dockerfile), join(build.contextDir, 'Dockerfile'));
  await copyFile(projectPath('bin', 'kimia'), join(app, 'bin', 'kimia'));
  await chmod(join(app, 'bin', 'kimia'), 0o755);
  await writeRuntimePackageJson(app, 'kimia');
  // Splitting keeps kimia's lazy imports lazy (start-up matters); every chunk sits in dist/kimia so that
  // core/paths.ts finds the package root two levels up, as it does in a checkout.
  await run(await esbuildPath(), [
    projectPath('src', 'kimia', 'main.ts'), ...ESBUILD_NODE, '--splitting', `--outdir=${join(app, 'dist', 'kimia')}`, '--chunk-names=[name]-[hash]',
  ], { timeoutMs: 120_000 });
}
