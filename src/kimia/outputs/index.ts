/** Machine-readable outputs in Kaniko's formats, written from the pushed manifest digests. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BuildRequest } from '../cli/request.js';
import { fail } from '../errors.js';

export interface Pushed {
  destination: string;
  digest: string;
}

/** "reg:5000/a/b:tag" → "reg:5000/a/b" (the port colon is not a tag). */
export function repositoryOf(ref: string): string {
  const noDigest = ref.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

export function withTag(ref: string): string {
  const noDigest = ref.split('@')[0]!;
  return repositoryOf(noDigest) === noDigest ? `${noDigest}:latest` : noDigest;
}

export function outputFiles(request: BuildRequest, pushed: Pushed[]): { path: string; content: string }[] {
  const out: { path: string; content: string }[] = [];
  if (!pushed.length) return out;
  if (request.digestFile) out.push({ path: request.digestFile, content: pushed[0]!.digest });
  if (request.imageNameWithDigestFile) {
    out.push({ path: request.imageNameWithDigestFile, content: pushed.map((p) => `${repositoryOf(p.destination)}@${p.digest}`).join('\n') + '\n' });
  }
  if (request.imageNameTagWithDigestFile) {
    out.push({ path: request.imageNameTagWithDigestFile, content: pushed.map((p) => `${withTag(p.destination)}@${p.digest}`).join('\n') + '\n' });
  }
  return out;
}

export async function writeOutputs(files: { path: string; content: string }[]): Promise<void> {
  for (const f of files) {
    try {
      await mkdir(dirname(f.path), { recursive: true });
      await writeFile(f.path, f.content, { mode: 0o644 });
    } catch (err) {
      throw fail('OUTPUT_FAILED', { what: 'file', path: f.path, detail: (err as Error).message }, err);
    }
  }
}
