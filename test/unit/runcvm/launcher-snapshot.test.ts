/**
 * The launcher's V8 start-up snapshot (scripts/assets/30-runtime.sh → guest/lib/runcvm/launcher.blob): create puts
 * it in the launcher's argv only when it fits the guest node and the launcher's node options (node exits on one
 * that does not), and the snapshot the build made starts the launcher.
 */
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec/index.js';
import { projectPath } from '../../../src/core/paths.js';
import { LAUNCHER_NODE_FLAGS, launcherArgs, withLauncherEntrypoint } from '../../../src/runcvm/bundle/transforms/index.js';
import { fileIdentity, launcherSnapshotFits } from '../../../src/runcvm/runtime/facts.js';

let guest: string;
const lib = () => join(guest, 'lib', 'runcvm');
const builtGuest = join(process.env.RUNCVM_ASSETS || projectPath('var', 'assets'), 'guest');

/** a guest package whose snapshot is `blobAge` s newer than launcher.mjs, keyed by `key` (default: its node's) */
async function arrange(opts: { key?: string; blobAge?: number } = {}): Promise<void> {
  await writeFile(join(lib(), 'launcher.mjs'), '');
  await writeFile(join(lib(), 'launcher.blob'), 'blob');
  const key = opts.key ?? [fileIdentity(await stat(join(guest, 'bin', 'node'))), ...LAUNCHER_NODE_FLAGS].join(' ');
  await writeFile(join(lib(), 'launcher.blob.key'), `${key}\n`);
  const t = Date.now() / 1000 - 100;
  await utimes(join(lib(), 'launcher.mjs'), t, t);
  await utimes(join(lib(), 'launcher.blob'), t + (opts.blobAge ?? 10), t + (opts.blobAge ?? 10));
}

beforeAll(async () => {
  guest = await mkdtemp(join(tmpdir(), 'runcvm-launcher-snap-'));
  await mkdir(lib(), { recursive: true });
  await mkdir(join(guest, 'bin'));
  await writeFile(join(guest, 'bin', 'node'), 'a node');
});
afterAll(() => rm(guest, { recursive: true, force: true }));

describe('the launcher start-up snapshot', () => {
  it('runs the launcher from the snapshot when told so, else from launcher.mjs', () => {
    expect(launcherArgs(true).slice(-2)).toEqual(['--snapshot-blob', '/.runcvm/guest/lib/runcvm/launcher.blob']);
    expect(launcherArgs(false).at(-1)).toBe('/.runcvm/guest/lib/runcvm/launcher.mjs');
    expect(withLauncherEntrypoint(true)({ ociVersion: '1.0.2', process: { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 } } }).process!.args).toEqual(launcherArgs(true));
  });

  it('fits when its key is the guest node and the launcher node options, and it is newer than launcher.mjs', async () => {
    await arrange();
    expect(await launcherSnapshotFits(guest)).toBe(true);
  });

  const nodeId = async () => fileIdentity(await stat(join(guest, 'bin', 'node')));
  it.each([
    ['another node built it', async () => ({ key: '1:2:3:4' })],
    ['other node options', async () => ({ key: `${await nodeId()} --max-old-space-size=1` })],
    ['launcher.mjs was rebuilt after it', async () => ({ blobAge: -10 })],
  ])('does not fit when %s', async (_what, opts) => {
    await arrange(await opts());
    expect(await launcherSnapshotFits(guest)).toBe(false);
  });

  it('does not fit when the node was replaced (same name, another file)', async () => {
    await arrange();
    // as a package upgrade does: the new file beside the old one (another inode), renamed over it
    await copyFile(join(guest, 'bin', 'node'), join(guest, 'bin', 'node.new'));
    await rename(join(guest, 'bin', 'node.new'), join(guest, 'bin', 'node'));
    expect(await launcherSnapshotFits(guest)).toBe(false);
  });

  it.each(['launcher.blob', 'launcher.blob.key'])('does not fit without %s', async (f) => {
    await arrange();
    await rm(join(lib(), f));
    expect(await launcherSnapshotFits(guest)).toBe(false);
  });

  it('30-runtime.sh builds it with LAUNCHER_NODE_FLAGS (a snapshot loads only under the options it was built with)', async () => {
    const script = await readFile(projectPath('scripts', 'assets', '30-runtime.sh'), 'utf8');
    const m = /^LAUNCHER_NODE_FLAGS=\(([^)]*)\)$/m.exec(script);
    expect(m, 'LAUNCHER_NODE_FLAGS=(…) in 30-runtime.sh').not.toBeNull();
    expect(m![1]!.split(/\s+/).filter(Boolean)).toEqual([...LAUNCHER_NODE_FLAGS]);
  });

  it('the built snapshot fits the built guest package and starts the launcher on its node', async () => {
    // npm test's global set-up builds it; a node that cannot build one leaves none, and VMs start from launcher.mjs
    expect(await launcherSnapshotFits(builtGuest), `${builtGuest}/lib/runcvm/launcher.blob (bash scripts/assets/30-runtime.sh)`).toBe(true);
    const r = await run(join(builtGuest, 'lib', 'ld'), ['--library-path', join(builtGuest, 'lib'), join(builtGuest, 'bin', 'node'), ...LAUNCHER_NODE_FLAGS, '--snapshot-blob', join(builtGuest, 'lib', 'runcvm', 'launcher.blob')], { reject: false, cwd: tmpdir() });
    // outside a container the launcher's main runs and stops at the missing hand-off from create
    expect(r.stderr).toContain('cannot read the launch spec /.runcvm/state/launch.json');
  });
});
