/** Registry CA certificates → one folder for buildah's --cert-dir (files ending in .crt are trusted roots). */
import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BuildRequest } from './cli/request.js';
import { fail } from './errors.js';

export async function prepareCertDir(request: BuildRequest, privateDir: string): Promise<string | undefined> {
  const certs = request.registryCertificates;
  const clients = request.registryClientCerts;
  if (!certs.length && !clients.length) return undefined;
  const single = certs[0];
  if (single && certs.length === 1 && !clients.length && !single.host && (await stat(single.path).catch(() => undefined))?.isDirectory()) return single.path;
  const dir = join(privateDir, 'certs');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const c of certs) {
    const st = await stat(c.path).catch(() => undefined);
    if (!st) throw fail('BAD_FLAG_VALUE', { flag: '--registry-certificate', reason: `${c.path} does not exist`, hint: '--registry-certificate=DIR or --registry-certificate=HOST=FILE.crt' });
    if (st.isDirectory()) {
      for (const f of await readdir(c.path)) if (/\.(crt|cert|key|pem)$/.test(f)) await copyFile(join(c.path, f), join(dir, f.replace(/\.pem$/, '.crt')));
    } else {
      const name = c.host ? `${c.host.replace(/[^\w.-]/g, '_')}.crt` : basename(c.path).replace(/\.pem$/, '.crt');
      await copyFile(c.path, join(dir, name.endsWith('.crt') ? name : `${name}.crt`));
    }
  }
  // buildah's --cert-dir takes client certificates as NAME.cert + NAME.key pairs
  for (const c of clients) {
    const name = c.host.replace(/[^\w.-]/g, '_');
    try {
      await copyFile(c.cert, join(dir, `${name}.cert`));
      await copyFile(c.key, join(dir, `${name}.key`));
    } catch (err) {
      throw fail('BAD_FLAG_VALUE', { flag: '--registry-client-cert', reason: (err as Error).message, hint: '--registry-client-cert=HOST=/certs/client.cert,/certs/client.key' });
    }
  }
  return dir;
}
