/**
 * Apply mask.ts to the built image, between `buildah bud` and the first push or export, so that nothing leaves the
 * local storage with a secret build-arg value in its history.
 *
 * The image's config is rewritten and re-entered into the same storage: an OCI archive holding only the new config
 * and a manifest that points at it (the layers are untouched, and containers/image finds every one of them in the
 * storage already, so none is read or copied), pulled with `buildah pull oci-archive:…` under the built image's
 * name (from the `io.containerd.image.name` annotation, read alike by Buildah 1.28 and 1.39; the `oci:` transport
 * names images differently in each), then given its other names.
 * The image Buildah built stays in the storage as the layer cache of its last step when --cache is on, and is
 * removed otherwise.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec/index.js';
import { Redactor } from '../../core/redact.js';
import type { Log } from '../log.js';
import type { BuildPlan } from '../plan/plan.js';
import { fail } from '../errors.js';
import { quoteChildError } from '../buildah/progress.js';
import { maskConfig } from './mask.js';

const sha256 = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** The names `bud -t` gave the built image: the masked image takes them over. */
export function builtNames(plan: BuildPlan): string[] {
  return plan.bud.flatMap((a, i) => (i > 0 && plan.bud[i - 1] === '-t' ? [a] : []));
}

function storageFlags(plan: BuildPlan): string[] {
  return ['--root', plan.storage.root, '--runroot', plan.storage.runroot, '--storage-driver', plan.storage.driver];
}

/** Returns the masked image's ID, or the built one when its history holds no value. */
export async function maskImageHistory(plan: BuildPlan, imageId: string, opts: { cache: boolean; workDir: string; log: Log; signal?: AbortSignal }): Promise<string> {
  const mask = plan.historyMask;
  if (!mask) return imageId;
  const global = storageFlags(plan);
  // the raw output is needed (its digest is checked): an empty redactor, and nothing of it is ever printed
  const raw = new Redactor();
  const inspected = await run(plan.buildah, [...global, 'inspect', '--type', 'image', imageId], { env: plan.env, redactor: raw, reject: false });
  if (inspected.exitCode !== 0) throw fail('HISTORY_MASK_FAILED', { detail: quoteChildError(inspected.stderr) });
  const image = JSON.parse(inspected.stdout) as { Manifest?: string; Config?: string };
  if (!image.Manifest || !image.Config) throw fail('HISTORY_MASK_FAILED', { detail: 'buildah inspect gave no manifest or config' });
  const manifest = JSON.parse(image.Manifest) as { mediaType?: string; config: { digest: string; size: number } };
  if (manifest.config.digest !== sha256(image.Config)) throw fail('HISTORY_MASK_FAILED', { detail: 'the stored config does not match its manifest' });

  const result = maskConfig(image.Config, mask.args);
  if (result.leaks.length) throw fail('SECRET_IN_IMAGE', { where: result.leaks.join(', '), names: [...new Set(mask.args.map((a) => a.name))].join(', ') });
  if (!result.changed) return imageId;

  manifest.config = { ...manifest.config, digest: sha256(result.config), size: Buffer.byteLength(result.config) };
  const manifestText = JSON.stringify(manifest);
  const names = builtNames(plan);
  if (!names.length) throw fail('HISTORY_MASK_FAILED', { detail: 'the built image has no name' });
  const dir = join(opts.workDir, 'masked-image');
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
  const blob = (data: string) => writeFile(join(dir, 'blobs', 'sha256', sha256(data).slice(7)), data, { mode: 0o600 });
  await Promise.all([
    writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}'),
    blob(result.config),
    blob(manifestText),
    writeFile(join(dir, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      // the name the pulled image gets (Buildah 1.28 and 1.39 both read it from this annotation of an oci-archive)
      manifests: [{ mediaType: manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifestText), size: Buffer.byteLength(manifestText), annotations: { 'io.containerd.image.name': names[0] } }],
    })),
  ]);
  try {
    const tar = await import('tar');
    const archive = `${dir}.tar`;
    await tar.c({ file: archive, cwd: dir, portable: true }, ['oci-layout', 'index.json', 'blobs']);
    const pulled = await run(plan.buildah, [...global, 'pull', '--quiet', `oci-archive:${archive}`], { env: plan.env, reject: false, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (pulled.exitCode !== 0) throw fail('HISTORY_MASK_FAILED', { detail: quoteChildError(pulled.stderr) });
    const maskedId = pulled.stdout.trim().split('\n').pop()!.trim();
    if (names.length > 1) {
      const tagged = await run(plan.buildah, [...global, 'tag', maskedId, ...names.slice(1)], { env: plan.env, reject: false });
      if (tagged.exitCode !== 0) throw fail('HISTORY_MASK_FAILED', { detail: quoteChildError(tagged.stderr) });
    }
    // without --cache nothing would ever use the original again: it is removed (the values went with it)
    if (!opts.cache) await run(plan.buildah, [...global, 'rmi', imageId], { env: plan.env, reject: false });
    const masked = [...new Set(mask.args.map((a) => a.name))].join(', ');
    opts.log.info(`history: the value of ${masked} masked in the image history (${maskedId.slice(0, 12)})`, { event: 'history-masked', args: mask.args.map((a) => a.name), imageId: maskedId });
    return maskedId;
  } finally {
    await Promise.all([rm(dir, { recursive: true, force: true }), rm(`${dir}.tar`, { force: true })]);
  }
}
