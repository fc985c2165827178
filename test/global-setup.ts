/**
 * Runs once before any test file: brings the build and the guest assets up to date with the same idempotent
 * script the README's commands use (about a second when nothing changed). Test files never rebuild dist/ themselves,
 * so no test can see a half-written build while another runs. It also builds the cached debootstrap image.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export default async function setup(): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  execFileSync('bash', [join(root, 'scripts', 'setup.sh')], { stdio: 'inherit', cwd: root });
  // The >200 MB debootstrap image (~45 s the first time on a new machine, cached under var/cache after) is built
  // here, once, so that no test pays for it inside its own timeout.
  const { ensureDebootstrapOci } = await import('./harness/images.js');
  await ensureDebootstrapOci();
}
