/**
 * Runs once before any test file: brings the build and the guest assets up to date with the same idempotent
 * script the README's commands use (about a second when nothing changed). Test files never rebuild dist/ themselves,
 * so no test can see a half-written build while another runs.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export default function setup(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  execFileSync('bash', [join(root, 'scripts', 'setup.sh')], { stdio: 'inherit', cwd: root });
}
