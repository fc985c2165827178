/**
 * kimia ↔ docker build: every Dockerfile in test/fixtures/compare/cases.ts is built by kimia (rootless, uid 1000, the
 * host's Buildah) and by `docker build` (BuildKit in the harness's dockerd), both pushed to one local registry, and
 * the two images are compared: config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels,
 * Healthcheck, StopSignal, Shell, OnBuild) and filesystem (path, type, mode, owner, symlink target, content hash).
 *
 * A difference is allowed only when KNOWN below lists it with its reason (also in docs/kimia-compare.md). The base
 * image is built once; kimia shares one image storage across the cases and each docker build runs beside its kimia
 * build.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { requireDockerd, startDockerd, type StartedDockerd } from '../harness/services/dockerd.js';
import { pushBusyboxImage } from '../harness/images.js';
import { compareImages, describeDifferences, snapshotImage, type Difference } from '../harness/image-compare.js';
import { buildKimia, chownTree, ensureSubIds, kimia, workspace, type Workspace } from './kimia-helpers.js';
import { CASES, type CompareCase, type ContextFile } from '../fixtures/compare/cases.js';
import { run } from '../../src/core/exec/index.js';

/** Differences that are the engine's and cannot be fixed in kimia: case → config key or path → reason. */
export const KNOWN: Record<string, { key: string | RegExp; reason: string }[]> = {};

let reg: StartedRegistry;
let dockerd: StartedDockerd;
let ws: Workspace;
let busybox: string;
let server: Server;
let urlBase: string;
const served = new Map<string, string>();

beforeAll(async () => {
  await requireDockerd();
  await Promise.all([buildKimia(), ensureSubIds()]);
  reg = await startRegistry();
  [busybox, dockerd] = await Promise.all([pushBusyboxImage(reg), startDockerd({ insecureRegistries: [reg.host] })]);
  ws = await workspace('kimia-compare');
  server = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  urlBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 600_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await dockerd?.stop();
  await ws?.cleanup();
  await reg?.stop();
});

async function writeContextFile(dir: string, rel: string, spec: ContextFile): Promise<void> {
  const path = join(dir, rel);
  await mkdir(dirname(path), { recursive: true });
  if (typeof spec === 'string') return writeFile(path, spec);
  if ('symlink' in spec) return symlink(spec.symlink, path);
  if ('content' in spec) {
    await writeFile(path, spec.content);
    return chmod(path, spec.mode);
  }
  const tar = await import('tar');
  const src = `${path}.src`;
  for (const [name, content] of Object.entries(spec.tar)) {
    if (name.endsWith('/')) await mkdir(join(src, name), { recursive: true });
    else {
      await mkdir(dirname(join(src, name)), { recursive: true });
      await writeFile(join(src, name), content);
    }
  }
  const [uid, gid] = spec.owner ?? [0, 0];
  // the archive's owner is what ADD must not copy (docker extracts as root); node-tar takes it from the files
  await run('chown', ['-R', `${uid}:${gid}`, src]);
  await tar.c({ file: path, cwd: src, gzip: spec.gzip ?? false, portable: false }, Object.keys(spec.tar));
  await rm(src, { recursive: true, force: true });
}

async function prepare(c: CompareCase): Promise<string> {
  const dir = ws.path('ctx', c.name);
  await mkdir(dir, { recursive: true });
  const url = `${urlBase}/${c.name}`;
  for (const [name, body] of Object.entries(c.served ?? {})) served.set(`/${c.name}/${name}`, body);
  await writeFile(join(dir, 'Dockerfile'), c.dockerfile.replaceAll('{{BUSYBOX}}', busybox).replaceAll('{{URL}}', url));
  for (const [rel, spec] of Object.entries(c.files ?? {})) await writeContextFile(dir, rel, spec);
  await chownTree(ws.dir);
  return dir;
}

function unexplained(name: string, diffs: Difference[]): Difference[] {
  const known = KNOWN[name] ?? [];
  return diffs.filter((d) => !known.some((k) => (typeof k.key === 'string' ? k.key === d.key : k.key.test(d.key))));
}

describe('kimia builds what docker build builds, to the same config and filesystem', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const ctx = await prepare(c);
    const args = Object.entries(c.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
    const target = c.target ? ['--target', c.target] : [];
    const kimiaRef = `${reg.host}/compare-kimia/${c.name}:1`;
    const dockerRef = `${reg.host}/compare-docker/${c.name}:1`;
    const [k, d] = await Promise.all([
      kimia(['-c', ctx, '-d', kimiaRef, '--storage-driver=overlay', `--cache-dir=${ws.path('kimia-cache')}`, '--insecure-registry', reg.host, ...args, ...target], {
        home: ws.path('home'),
      }),
      dockerd.docker(['build', '--network', 'host', '-t', dockerRef, ...args, ...target, ctx], { env: { DOCKER_BUILDKIT: '1' }, reject: false, timeoutMs: 300_000 })
        .then(async (r) => (r.exitCode === 0 ? dockerd.docker(['push', dockerRef], { reject: false, timeoutMs: 120_000 }) : r)),
    ]);
    expect(d.exitCode, `docker build: ${d.stdout}\n${d.stderr}`).toBe(0);
    expect(k.exitCode, k.all).toBe(0);
    const [ks, ds] = await Promise.all([
      snapshotImage(`docker://${kimiaRef}`, ws.dir, { tlsVerify: false }),
      snapshotImage(`docker://${dockerRef}`, ws.dir, { tlsVerify: false }),
    ]);
    const diffs = unexplained(c.name, compareImages(ks, ds));
    expect(diffs, `${c.about}\n${describeDifferences(diffs)}`).toEqual([]);
  });
});
