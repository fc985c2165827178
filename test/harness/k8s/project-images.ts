/**
 * This project's images in a test registry, built the way a user builds them: `npm run images -- --registry …`
 * (our kimia on the host, Debian 13 from the local debootstrap instead of the public debian:trixie-slim). kimia's
 * layer cache lives outside the checkout (sharedCacheDir()/images), so after the first run only the layers that
 * changed are built; one build at a time (the cache is shared by test files).
 *
 *   const images = await buildProjectImages(cluster.registry, ['kimia']);
 *   images.kimia.ref      // "127.0.0.1:PORT/kimia-runcvm/kimia:0.1.0"
 *   images.kimia.digest   // what the registry serves
 *   images.output         // the command's report (layers, sizes)
 */
import { join } from 'node:path';
import { run } from '../../../src/core/exec/index.js';
import { projectPath } from '../../../src/core/paths.js';
import { tempDir } from '../../../src/core/fsx/index.js';
import { rm } from 'node:fs/promises';
import { pushTrixieImage, sharedCacheDir, withLock } from '../images.js';
import type { StartedRegistry } from '../services/registry.js';

export const IMAGE_PREFIX = 'kimia-runcvm';
/** the name every manifest in deploy/kubernetes uses (deploy/kubernetes/images rewrites it) */
export const PUBLISHED_PREFIX = 'registry.example.com/kimia-runcvm';

export interface BuiltImage {
  ref: string;
  digest: string;
}

export interface ProjectImages {
  images: Record<string, BuiltImage>;
  output: string;
  stderr: string;
  base: string;
}

export async function buildProjectImages(registry: StartedRegistry, names: string[]): Promise<ProjectImages> {
  const base = await pushTrixieImage(registry);
  const configDir = await tempDir('images-docker-config');
  try {
    await registry.writeDockerConfig(configDir);
    const r = await withLock(join(sharedCacheDir(), 'images.lock'), () => run(process.execPath, [
      projectPath('dist', 'images', 'main.js'), '--registry', `${registry.host}/${IMAGE_PREFIX}`, '--base-image', base,
      '--registry-certificate', registry.tls!.certDir, ...names.flatMap((n) => ['--image', n]),
    ], { env: { DOCKER_CONFIG: configDir }, timeoutMs: 30 * 60_000, reject: false }), 45 * 60_000);
    if (r.exitCode !== 0) throw new Error(`npm run images failed (exit ${r.exitCode}):\n${r.stderr.split('\n').slice(-40).join('\n')}`);
    const images: Record<string, BuiltImage> = {};
    for (const m of r.stdout.matchAll(/^(\S+\/([a-z0-9-]+):[^@\s]+)@(sha256:[0-9a-f]{64}):/gm)) images[m[2]!] = { ref: m[1]!, digest: m[3]! };
    for (const n of names) if (!images[n]) throw new Error(`npm run images did not report ${n}:\n${r.stdout}`);
    return { images, output: r.stdout, stderr: r.stderr, base };
  } finally {
    await rm(configDir, { recursive: true, force: true });
  }
}
