/**
 * Secrets known before the build starts: registered with the global redactor (so no output holds them), build
 * secret files checked and made absolute (Buildah resolves a relative `src=` against the context folder, its working
 * directory), and kimia's own command line rewritten when a value was given on it (`--build-arg API_TOKEN=…`).
 */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { globalRedactor } from '../core/redact.js';
import type { BuildRequest } from './cli/request.js';
import { fail } from './errors.js';

function registerValue(value: string): void {
  globalRedactor.add(value);
  // a multi-line secret (an .npmrc) is printed line by line by whatever RUN step shows it
  for (const line of value.split('\n')) globalRedactor.add(line);
}

export async function protectSecrets(request: BuildRequest, env: Record<string, string | undefined>): Promise<void> {
  for (const a of request.buildArgs) if (a.secret) registerValue(a.value);
  for (const s of request.buildSecrets) {
    if (s.source.kind === 'env') {
      registerValue(env[s.source.name] ?? '');
      continue;
    }
    const path = resolve(s.source.path);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) {
      throw fail('BAD_FLAG_VALUE', { flag: '--secret', reason: `id=${s.id}: ${path} is not a readable file`, hint: 'mount the secret (a Kubernetes Secret volume) and point src= at the file, e.g. --secret id=npmrc,src=/secrets/npmrc' });
    }
    s.source = { kind: 'file', path };
    // the redactor needs the value; a file that cannot be read here cannot be read by Buildah either
    const value = await readFile(path, 'utf8').catch((err: unknown) => {
      throw fail('BAD_FLAG_VALUE', { flag: '--secret', reason: `id=${s.id}: ${(err as Error).message}`, hint: 'make the secret file readable by the build user (UID 1000)' });
    });
    registerValue(value);
  }
  hideOwnArgv();
}

/**
 * /proc/<pid>/cmdline is readable by every local user. When a secret value was given on kimia's own command line,
 * it is overwritten (Node writes process.title over the original argv memory on Linux) with the redacted form.
 * The value was visible from exec until here (tens of milliseconds): `--build-arg NAME` with the value in the
 * environment avoids even that.
 */
function hideOwnArgv(): void {
  const argv = process.argv;
  const redacted = argv.map((a) => globalRedactor.redact(a));
  if (redacted.every((a, i) => a === argv[i])) return;
  process.title = redacted.join(' ');
}
