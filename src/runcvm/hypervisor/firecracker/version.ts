/**
 * The Firecracker release a node offers, for the template key (issue 17): `firecracker --version` of the binary create
 * chose (the key is computed at create, before any VM runs; a running VM's GET /version says the same). A snapshot is
 * only loadable by a Firecracker of the same snapshot data version, so the version is part of every key.
 */
import { run } from '../../../core/exec/index.js';

/** `Firecracker v1.16.1` (first line of `firecracker --version`) → `1.16.1`; undefined when the text is not that. */
export function parseFirecrackerVersion(text: string): string | undefined {
  return /^Firecracker v(\d+\.\d+\.\d+[^\s]*)/m.exec(text)?.[1];
}

export async function readFirecrackerVersion(binary: string, timeoutMs = 10_000): Promise<string> {
  const r = await run(binary, ['--version'], { reject: false, timeoutMs });
  const version = parseFirecrackerVersion(r.stdout);
  if (r.exitCode !== 0 || !version) throw new Error(`${binary} --version did not name a Firecracker release (exit ${r.exitCode}): ${(r.stdout + r.stderr).trim().slice(0, 200)}`);
  return version;
}
