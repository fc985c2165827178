/**
 * Stage the runcvm node installer's build context (see images/runcvm-installer/Dockerfile): what runs on a node
 * under /opt/runcvm, split into assets/ (kernel, initramfs, guest package) and code/ (scripts and bundles), plus a
 * rootfs/ with the three busybox links the installer itself needs. The payload's content id (.payload) lets the
 * installer see whether a node already has exactly these files.
 */
import { chmod, copyFile, cp, lstat, mkdir, readFile, readdir, readlink, realpath, symlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { run } from '../core/exec/index.js';
import { projectPath, assetsDir } from '../core/paths.js';
import { projectVersion } from '../core/version.js';
import type { ImageBuild } from './plan.js';
import { ESBUILD_NODE, esbuildPath, writeRuntimePackageJson } from './stage.js';

/** where the image keeps the payload (the DaemonSet copies it from there) */
export const PAYLOAD_DIR = '/opt/runcvm-dist';

/** node on a node that has none: the guest package's node through the package's own loader */
const NODE_WRAPPER = `#!/bin/sh
# node for the runtime's create and exec verbs on a node without Node.js: the guest package's node, started
# through the package's own loader and libraries (no dependency on the node's libc)
self=$(readlink -f "$0")
root=$(cd "$(dirname "$self")/../.." && pwd)
guest=$root/var/assets/guest
exec "$guest/lib/ld" --library-path "$guest/lib" "$guest/bin/node" "$@"
`;

/** bin/runcvm on a node: the CLI (doctor, install, node-install) on the bundled node */
const CLI_WRAPPER = `#!/bin/sh
# runcvm's CLI (doctor, install, node-install, …) on the node's node, or the bundled one
self=$(readlink -f "$0")
root=$(cd "$(dirname "$self")/.." && pwd)
node=\${RUNCVM_NODE:-}
[ -n "$node" ] || node=$root/libexec/runcvm/node
exec "$node" "$root/bin/runcvm.mjs" "$@"
`;

/** the CLI's entry, next to its bundle (dist/runcvm-cli) */
const CLI_ENTRY = `#!/usr/bin/env node
import('../dist/runcvm-cli/main.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => process.exit(code ?? 0),
  (err) => { console.error(err && err.stack ? err.stack : String(err)); process.exit(1); },
);
`;

async function copyExecutable(from: string, to: string): Promise<void> {
  await copyFile(from, to);
  await chmod(to, 0o755);
}

/** sha256 over every file's path, mode and content (symlinks by target): the payload's identity */
async function contentId(dirs: string[]): Promise<string> {
  const h = createHash('sha256');
  const walk = async (base: string, dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name);
      const st = await lstat(p);
      const rel = relative(base, p);
      if (st.isSymbolicLink()) h.update(`l ${rel} ${await readlink(p)}\n`);
      else if (st.isDirectory()) await walk(base, p);
      else {
        h.update(`f ${rel} ${(st.mode & 0o7777).toString(8)} ${st.size}\n`);
        h.update(await readFile(p));
      }
    }
  };
  for (const d of dirs) await walk(d, d);
  return h.digest('hex');
}

export async function stageInstaller(build: ImageBuild): Promise<void> {
  const ctx = build.contextDir;
  const assets = join(ctx, 'assets');
  const code = join(ctx, 'code');
  const rootfs = join(ctx, 'rootfs');
  await mkdir(ctx, { recursive: true });
  await copyFile(projectPath(build.dockerfile), join(ctx, 'Dockerfile'));

  // assets: the guest kernel and package as setup built them (var/assets/guest is a symlink to a versioned folder)
  const source = assetsDir();
  await mkdir(join(assets, 'var', 'assets'), { recursive: true });
  for (const name of ['kernel', 'guest']) {
    await cp(await realpath(join(source, name)), join(assets, 'var', 'assets', name), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  }

  // code: the scripts as they are, the runtime and exec bundles made self-contained (execa inlined), the CLI bundle
  for (const d of ['bin', 'libexec/runcvm', 'dist/runcvm/runtime', 'dist/runcvm-cli', 'var/assets/runtime']) await mkdir(join(code, d), { recursive: true });
  for (const b of ['runcvm-runtime', 'runcvm-runtime-userns', 'containerd-shim-runcvm-v2']) await copyExecutable(projectPath('bin', b), join(code, 'bin', b));
  await writeFile(join(code, 'bin', 'runcvm.mjs'), CLI_ENTRY, { mode: 0o755 });
  await writeFile(join(code, 'bin', 'runcvm'), CLI_WRAPPER, { mode: 0o755 });
  await copyExecutable(projectPath('libexec', 'runcvm', 'runc'), join(code, 'libexec', 'runcvm', 'runc'));
  await writeFile(join(code, 'libexec', 'runcvm', 'node'), NODE_WRAPPER, { mode: 0o755 });
  await writeRuntimePackageJson(code, 'runcvm');
  const esbuild = await esbuildPath();
  // the same entry points as scripts/assets/30-runtime.sh, with execa bundled in (no node_modules on a node)
  const runtimeOut = join(code, 'var', 'assets', 'runtime', 'runtime.mjs');
  await run(esbuild, [projectPath('src', 'runcvm', 'runtime', 'entry.ts'), ...ESBUILD_NODE, `--outfile=${runtimeOut}`], { timeoutMs: 120_000 });
  await copyFile(runtimeOut, join(code, 'dist', 'runcvm', 'runtime', 'runtime.mjs'));
  await run(esbuild, [projectPath('src', 'runcvm', 'exec', 'entry.ts'), ...ESBUILD_NODE, `--outfile=${join(code, 'dist', 'runcvm', 'runtime', 'exec.mjs')}`], { timeoutMs: 120_000 });
  // two levels below the payload root, as core/paths.ts expects of its module (it finds package.json from there)
  await run(esbuild, [projectPath('src', 'runcvm', 'cli', 'main.ts'), ...ESBUILD_NODE, '--splitting', `--outdir=${join(code, 'dist', 'runcvm-cli')}`, '--chunk-names=[name]-[hash]'], { timeoutMs: 120_000 });

  // the installer's own needs: a shell, env for the CLI's #! line, nsenter for the restart; /tmp
  for (const d of ['bin', 'usr/bin', 'tmp']) await mkdir(join(rootfs, d), { recursive: true });
  await chmod(join(rootfs, 'tmp'), 0o1777);
  const busybox = `${PAYLOAD_DIR}/var/assets/guest/bin/busybox`;
  await symlink(busybox, join(rootfs, 'bin', 'sh'));
  await symlink(busybox, join(rootfs, 'usr', 'bin', 'env'));
  await symlink(busybox, join(rootfs, 'usr', 'bin', 'nsenter'));
  // bin/runcvm.mjs starts with #!/usr/bin/env node: node must be on PATH inside the installer
  await symlink(`${PAYLOAD_DIR}/libexec/runcvm/node`, join(rootfs, 'usr', 'bin', 'node'));

  const id = await contentId([assets, code]);
  await writeFile(join(code, '.payload'), JSON.stringify({ id, version: projectVersion() }) + '\n', { mode: 0o644 });
}
