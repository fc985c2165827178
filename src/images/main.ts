/**
 * `npm run images -- --registry HOST/PREFIX [options]`: build this project's images with this project's kimia
 * (bin/kimia, on the host) and push them; then report each image's digest, layers and size from the registry.
 * Effects only; the decisions are in ./plan.ts.
 */
import { access, readFile, rm, stat } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { CloserStack, tempDir } from '../core/fsx/index.js';
import { run } from '../core/exec/index.js';
import { formatCommand } from '../core/redact.js';
import { projectPath } from '../core/paths.js';
import { projectVersion } from '../core/version.js';
import {
  DEFAULT_BASE_IMAGE, IMAGE_NAMES, ImagesUsageError, planImages, renderReport, reportImage, type ImageBuild, type ImageName, type ImageReport,
  type ImagesRequest,
} from './plan.js';

export const HELP = `usage: npm run images -- --registry HOST[:PORT]/PREFIX [options]

Builds this project's images with this project's kimia (bin/kimia) and pushes them as HOST/PREFIX/NAME:TAG:
  kimia              the builder (Debian 13, Buildah 1.39, Node.js 20, kimia)
Then prints each image's digest, its layers (size and the step that made each) and its compressed size.

options:
  --registry HOST/PREFIX      where to push (required)
  --tag TAG                   image tag (default: the project version, ${'<package.json version>'})
  --image NAME                build only this image (repeatable; default: all)
  --base-image REF            the Debian 13 base (default ${DEFAULT_BASE_IMAGE})
  --cache-dir DIR             kimia's layer cache, kept between runs (default $KIMIA_RUNCVM_CACHE/images, i.e.
                              /var/cache/kimia-runcvm/images as root, ~/.cache/kimia-runcvm/images otherwise)
  --storage-driver vfs|overlay  (default overlay)
  --registry-certificate DIR|HOST=FILE   CA certificates for the registry (repeatable; as kimia)
  --insecure-registry HOST    registry without TLS verification (repeatable; as kimia)
  --dry-run                   print the plan (the kimia command lines), build nothing
  -h, --help                  this text

Registry credentials: DOCKER_CONFIG/config.json (as kimia reads them) or DOCKER_USERNAME/DOCKER_PASSWORD.

exit status: 0 built and pushed · 2 usage · otherwise kimia's exit status (3 build, 4 push, 5 auth, 6 environment)
`;

type Env = Record<string, string | undefined>;

function defaultCacheDir(env: Env): string {
  if (env.KIMIA_RUNCVM_CACHE) return join(env.KIMIA_RUNCVM_CACHE, 'images');
  if (process.getuid?.() === 0) return '/var/cache/kimia-runcvm/images';
  return join(env.XDG_CACHE_HOME || join(env.HOME || tmpdir(), '.cache'), 'kimia-runcvm', 'images');
}

export function parseImagesArgs(argv: readonly string[], env: Env): ImagesRequest | 'help' {
  let registry: string | undefined;
  let tag: string | undefined;
  const images: ImageName[] = [];
  let baseImage = DEFAULT_BASE_IMAGE;
  let cacheDir = defaultCacheDir(env);
  let storageDriver: 'vfs' | 'overlay' = 'overlay';
  const registryCertificates: string[] = [];
  const insecureRegistries: string[] = [];
  let dryRun = false;
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (raw === '-h' || raw === '--help') return 'help';
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    const inline = raw.startsWith('--') && eq > 0 ? raw.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new ImagesUsageError(`${flag} needs a value`, `write ${flag}=VALUE`);
      return v;
    };
    switch (flag) {
      case '--registry': registry = value(); break;
      case '--tag': tag = value(); break;
      case '--image': {
        const v = value();
        if (!(IMAGE_NAMES as readonly string[]).includes(v)) throw new ImagesUsageError(`unknown image ${v}`, `one of: ${IMAGE_NAMES.join(', ')}`);
        images.push(v as ImageName);
        break;
      }
      case '--base-image': baseImage = value(); break;
      case '--cache-dir': cacheDir = value(); break;
      case '--storage-driver': {
        const v = value();
        if (v !== 'vfs' && v !== 'overlay') throw new ImagesUsageError(`--storage-driver ${v}`, 'use vfs or overlay');
        storageDriver = v;
        break;
      }
      case '--registry-certificate': registryCertificates.push(value()); break;
      case '--insecure-registry': insecureRegistries.push(value()); break;
      case '--dry-run': dryRun = true; break;
      default: throw new ImagesUsageError(`unknown argument ${raw}`, 'see npm run images -- --help');
    }
  }
  if (!registry) throw new ImagesUsageError('--registry is required', 'e.g. npm run images -- --registry registry.example.com/platform');
  return {
    registry, tag: tag ?? projectVersion(), images: images.length ? [...new Set(images)] : [...IMAGE_NAMES], baseImage, cacheDir, storageDriver,
    registryCertificates, insecureRegistries, dryRun,
  };
}

async function gitRevision(): Promise<string> {
  return (await run('git', ['-C', projectPath(), 'rev-parse', 'HEAD']).then((r) => r.stdout, () => '')).trim();
}

async function stage(build: ImageBuild): Promise<void> {
  const { stageKimia } = await import('./stage.js');
  await stageKimia(build);
}

/** skopeo flags to read what kimia pushed, with the same credentials and CA certificates. */
async function skopeoFlags(req: ImagesRequest, env: Env): Promise<string[]> {
  const flags: string[] = [];
  const configDir = env.DOCKER_CONFIG || join(env.HOME || '/root', '.docker');
  const authFile = join(configDir, 'config.json');
  if (await access(authFile).then(() => true, () => false)) flags.push('--authfile', authFile);
  else if (env.DOCKER_USERNAME && env.DOCKER_PASSWORD) flags.push('--creds', `${env.DOCKER_USERNAME}:${env.DOCKER_PASSWORD}`);
  const host = req.registry.split('/')[0]!;
  if (req.insecureRegistries.includes(host)) flags.push('--tls-verify=false');
  for (const c of req.registryCertificates) {
    if (!c.includes('=') && (await stat(c).then((s) => s.isDirectory(), () => false))) flags.push('--cert-dir', c);
  }
  return flags;
}

async function report(build: ImageBuild, digest: string, flags: string[], secrets: string[]): Promise<ImageReport> {
  const repo = build.ref.slice(0, build.ref.lastIndexOf(':'));
  const target = `docker://${repo}@${digest}`;
  const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', ...flags, target], { secrets })).stdout) as { layers?: { digest: string; size: number }[] };
  const config = JSON.parse((await run('skopeo', ['inspect', '--config', '--raw', ...flags, target], { secrets })).stdout) as { history?: { created_by?: string; empty_layer?: boolean }[] };
  return reportImage(build.ref, digest, manifest.layers ?? [], config.history ?? []);
}

export async function imagesMain(argv: string[], env: Env = process.env): Promise<number> {
  let req: ImagesRequest | 'help';
  try {
    req = parseImagesArgs(argv, env);
  } catch (err) {
    if (err instanceof ImagesUsageError) {
      process.stderr.write(`images: error: ${err.message}\nimages: fix: ${err.fix}\n`);
      return 2;
    }
    throw err;
  }
  if (req === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  await using closers = new CloserStack();
  const workDir = await tempDir('kimia-images', closers);
  let plan;
  try {
    plan = planImages(req, { kimia: projectPath('bin', 'kimia'), revision: await gitRevision(), workDir });
  } catch (err) {
    if (err instanceof ImagesUsageError) {
      process.stderr.write(`images: error: ${err.message}\nimages: fix: ${err.fix}\n`);
      return 2;
    }
    throw err;
  }
  const say = (line: string) => process.stderr.write(`[images] ${line}\n`);
  if (req.dryRun) {
    for (const b of plan.builds) process.stdout.write(`# ${b.name}: stage ${b.contextDir} from ${b.dockerfile}\n${formatCommand(b.command[0]!, b.command.slice(1))}\n`);
    return 0;
  }
  const secrets = env.DOCKER_PASSWORD ? [env.DOCKER_PASSWORD] : [];
  const flags = await skopeoFlags(req, env);
  const reports: ImageReport[] = [];
  for (const b of plan.builds) {
    say(`${b.name}: staging the build context`);
    await stage(b);
    say(`${b.name}: ${formatCommand(b.command[0]!, b.command.slice(1))}`);
    const r = await run(b.command[0]!, b.command.slice(1), {
      reject: false,
      timeoutMs: 60 * 60_000,
      onStdoutLine: (l) => process.stderr.write(`  ${l}\n`),
      onStderrLine: (l) => process.stderr.write(`  ${l}\n`),
    });
    if (r.exitCode !== 0) {
      say(`${b.name}: kimia failed with exit code ${r.exitCode}`);
      return r.exitCode;
    }
    const digest = (await readFile(b.digestFile, 'utf8')).trim();
    const rep = await report(b, digest, flags, secrets);
    reports.push(rep);
    process.stdout.write(renderReport(rep));
    await rm(b.contextDir, { recursive: true, force: true });
  }
  return 0;
}

if (process.argv[1] && import.meta.url === `file://${realpathSync(process.argv[1])}`) {
  imagesMain(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`images: error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
