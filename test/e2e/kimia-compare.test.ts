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
import { run, type RunResult } from '../../src/core/exec/index.js';
import { parseEngineVersion } from '../../src/kimia/buildah/engine.js';
import { versionAtLeast } from '../../src/kimia/dockerfile/check.js';
import { kimiaInImage, pushKimiaImage } from '../harness/kimia-image.js';

/**
 * Differences that are the engine's and not kimia's to fix (each is in docs/kimia-compare.md with its reason):
 * `cases` the case names ('*' for all), `key` the config key or image path, `fixedIn` the first Buildah release
 * without it (the entry then does not apply to that engine, so a regression shows).
 */
export interface KnownDifference { cases: string[] | '*'; key: string | RegExp; reason: string; fixedIn?: string }

export const KNOWN: KnownDifference[] = [
  {
    cases: '*', key: /^etc\/(hostname|hosts|resolv\.conf)$/,
    reason: 'Buildah keeps the empty files it bind-mounts /etc/hostname, /etc/hosts and /etc/resolv.conf onto during a RUN when the base image has none; BuildKit removes them',
  },
  {
    cases: ['arg-stages'], key: /^[BCD]\.txt$/,
    reason: 'Buildah (1.28 and 1.39) does not carry an ARG value into a stage built FROM another stage (ARG NAME="$NAME-dev" sees an empty $NAME)',
  },
  { cases: ['shell'], key: 'Cmd', reason: 'Buildah records a shell-form CMD/ENTRYPOINT with /bin/sh -c, not with the SHELL in force (the RUN steps do use SHELL)' },
  {
    cases: ['volume'], key: /^(cache|logs|var\/one|var\/two)$/,
    reason: 'Buildah creates the folder of every VOLUME in the image (1.39 too); BuildKit records the volume in the config only',
  },
  {
    cases: ['volume'], key: 'data/after', fixedIn: '1.37.0',
    reason: 'Buildah before 1.37 discards what a RUN writes into a folder declared VOLUME earlier (the classic builder\'s behaviour); BuildKit keeps it',
  },
  { cases: ['add-tar'], key: 'newdir', reason: 'Buildah gives a folder that ADD creates for a tar archive the owner of the archive\'s ./ entry; BuildKit creates it as root' },
  { cases: ['expose'], key: 'ExposedPorts', reason: 'Buildah keeps one protocol per port number: after EXPOSE 83/udp, EXPOSE 83/tcp is lost (1.28 and 1.39)' },
  { cases: ['many-sources'], key: /^dest(\/a\.txt)?$/, reason: 'Buildah makes the destination a folder when several sources are named, even if a glob among them matches nothing; BuildKit counts the files that match' },
];

/**
 * Cases an engine cannot build: kimia must say so clearly (exit code and message), naming the Buildah release that
 * can or the rewrite that works. `below`: the engine versions this applies to (all when absent).
 */
const OLD_GLOB = /a file name with glob characters \(\[ \]\) in COPY\/ADD needs Buildah 1\.38\.0 or later/;
const NEEDS: Record<string, { below?: string; exit: number; error: RegExp }[]> = {
  'special-names': [{ below: '1.38.0', exit: 6, error: OLD_GLOB }],
  'special-names-literal': [
    { below: '1.38.0', exit: 6, error: OLD_GLOB },
    { exit: 3, error: /COPY at Dockerfile:2: Buildah reads `COPY arr\[0\]\.txt \/literal\/` as a pattern and finds no file[\s\S]*COPY arr\[\[\]0\]\.txt/ },
  ],
};

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

const prepared = new Map<string, Promise<string>>();

/** The case's context, written once (both engines build the same folder). */
function prepare(c: CompareCase): Promise<string> {
  if (!prepared.has(c.name)) prepared.set(c.name, writeContext(c));
  return prepared.get(c.name)!;
}

async function writeContext(c: CompareCase): Promise<string> {
  const dir = ws.path('ctx', c.name);
  await mkdir(dir, { recursive: true });
  const url = `${urlBase}/${c.name}`;
  for (const [name, body] of Object.entries(c.served ?? {})) served.set(`/${c.name}/${name}`, body);
  await writeFile(join(dir, 'Dockerfile'), c.dockerfile.replaceAll('{{BUSYBOX}}', busybox).replaceAll('{{URL}}', url));
  for (const [rel, spec] of Object.entries(c.files ?? {})) await writeContextFile(dir, rel, spec);
  await chownTree(ws.dir);
  return dir;
}

function unexplained(name: string, engine: string, diffs: Difference[]): Difference[] {
  const known = KNOWN.filter((k) => (k.cases === '*' || k.cases.includes(name)) && !(k.fixedIn && versionAtLeast(engine, k.fixedIn)));
  return diffs.filter((d) => !known.some((k) => (typeof k.key === 'string' ? k.key === d.key : k.key.test(d.key))));
}

interface Engine {
  name: 'host' | 'image';
  version: string;
  build(ctx: string, ref: string, extra: string[]): Promise<{ exitCode: number; all: string }>;
}

const hostEngine = async (): Promise<Engine> => ({
  name: 'host',
  version: parseEngineVersion((await run('buildah', ['--version'])).stdout)!.version,
  build: (ctx, ref, extra) => kimia(['-c', ctx, '-d', ref, '--storage-driver=overlay', `--cache-dir=${ws.path('kimia-cache')}`, '--insecure-registry', reg.host, ...extra], {
    home: ws.path('home'),
  }),
});

const imageEngine = async (): Promise<Engine> => {
  const image = await pushKimiaImage(reg);
  const cache = ws.path('image-cache');
  await mkdir(cache, { recursive: true });
  await chownTree(cache);
  const probe = await kimiaInImage(dockerd, image, { args: ['version'] });
  expect(probe.exitCode, probe.all).toBe(0);
  const version = await dockerd.docker(['run', '--rm', '--entrypoint', 'buildah', image, '--version']);
  return {
    name: 'image',
    version: parseEngineVersion(version.stdout)!.version,
    build: (ctx, ref, extra) => kimiaInImage(dockerd, image, {
      mounts: [[ctx, '/workspace'], [cache, '/cache']],
      args: ['-c', '/workspace', '-d', ref, '--storage-driver=overlay', '--cache-dir=/cache', '--insecure-registry', reg.host, ...extra],
    }),
  };
};

describe.each([['host', hostEngine], ['image', imageEngine]] as const)('kimia (%s engine) builds what docker build builds, to the same config and filesystem', (engineName, makeEngine) => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await makeEngine();
  }, 1_200_000);

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const ctx = await prepare(c);
    const args = Object.entries(c.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
    const target = c.target ? ['--target', c.target] : [];
    const kimiaRef = `${reg.host}/compare-kimia-${engineName}/${c.name}:1`;
    const dockerRef = `${reg.host}/compare-docker/${c.name}:1`;
    const [k, d] = await Promise.all([
      engine.build(ctx, kimiaRef, [...args, ...target]),
      dockerBuilt.get(c.name) ?? dockerBuild(c, ctx, dockerRef, [...args, ...target]),
    ]);
    dockerBuilt.set(c.name, Promise.resolve(d));
    expect(d.exitCode, `docker build: ${d.stdout}\n${d.stderr}`).toBe(0);
    const needs = NEEDS[c.name]?.find((n) => !n.below || !versionAtLeast(engine.version, n.below));
    if (needs) {
      expect(k.exitCode, k.all).toBe(needs.exit);
      expect(k.all).toMatch(needs.error);
      return;
    }
    expect(k.exitCode, k.all).toBe(0);
    const [ks, ds] = await Promise.all([
      snapshotImage(`docker://${kimiaRef}`, ws.dir, { tlsVerify: false }),
      snapshotImage(`docker://${dockerRef}`, ws.dir, { tlsVerify: false }),
    ]);
    const diffs = unexplained(c.name, engine.version, compareImages(ks, ds));
    expect(diffs, `${c.about} (Buildah ${engine.version})\n${describeDifferences(diffs)}`).toEqual([]);
  });
  it('here-documents and HEALTHCHECK --start-interval: built by Buildah 1.39, refused before any pull by older engines with the release that has them', async () => {
    const heredoc: CompareCase = {
      name: 'newer-heredoc', about: 'here-documents (Buildah 1.33+)',
      dockerfile: 'FROM {{BUSYBOX}}\nRUN <<EOF\necho from-heredoc > /heredoc\nEOF\nCOPY <<EOT /copied\ninline\nEOT\n',
    };
    const interval: CompareCase = { name: 'newer-start-interval', about: 'HEALTHCHECK --start-interval (Buildah 1.37+)', dockerfile: 'FROM {{BUSYBOX}}\nHEALTHCHECK --interval=10s --start-interval=2s CMD true\n' };
    const refs = [`${reg.host}/compare-kimia-${engineName}/newer-heredoc:1`, `${reg.host}/compare-kimia-${engineName}/newer-start-interval:1`];
    const [h, i] = [await engine.build(await prepare(heredoc), refs[0]!, []), await engine.build(await prepare(interval), refs[1]!, [])];
    if (!versionAtLeast(engine.version, '1.33.0')) {
      expect(h.exitCode, h.all).toBe(6);
      expect(h.all).toContain(`Dockerfile:2: here-documents (<<EOF) in RUN, COPY and ADD needs Buildah 1.33.0 or later; this engine is Buildah ${engine.version}`);
      expect(h.all).not.toMatch(/pulling/);
    } else {
      expect(h.exitCode, h.all).toBe(0);
      const snap = await snapshotImage(`docker://${refs[0]}`, ws.dir, { tlsVerify: false });
      expect(snap.files.get('heredoc')?.text).toBe('from-heredoc\n');
      expect(snap.files.get('copied')?.text).toBe('inline\n');
    }
    if (!versionAtLeast(engine.version, '1.37.0')) {
      expect(i.exitCode, i.all).toBe(6);
      expect(i.all).toContain(`Dockerfile:2: HEALTHCHECK --start-interval needs Buildah 1.37.0 or later; this engine is Buildah ${engine.version}`);
    } else {
      // built; the config is not checked: Buildah 1.39.3 left this image without its Healthcheck (seen, not fixed:
      // docs/kimia-compare.md, "Seen and not fixed")
      expect(i.exitCode, i.all).toBe(0);
      expect(i.all).toContain('building in Docker format: the Dockerfile uses HEALTHCHECK (Dockerfile:2)');
    }
  });
});

/** docker build once per case, shared by both engines */
const dockerBuilt = new Map<string, Promise<RunResult>>();

async function dockerBuild(c: CompareCase, ctx: string, ref: string, extra: string[]): Promise<RunResult> {
  const r = await dockerd.docker(['build', '--network', 'host', '-t', ref, ...extra, ctx], { env: { DOCKER_BUILDKIT: '1' }, reject: false, timeoutMs: 300_000 });
  return r.exitCode === 0 ? dockerd.docker(['push', ref], { reject: false, timeoutMs: 120_000 }) : r;
}

/**
 * Another project's suite prepared by scripts/kaniko-suite.mjs (outside this repository; see docs/kaniko-suite.md).
 * It runs only when KIMIA_COMPARE_SUITE names its suite.json: it is not ours and not part of `npm test`. Every
 * result is recorded, not asserted, and written as a table to KIMIA_COMPARE_REPORT.
 */
interface ExternalSuite {
  revision: string;
  context: string;
  bases: { name: string; dockerfile: string }[];
  aliases: Record<string, 'busybox' | 'debian'>;
  cases: { name: string; dockerfile?: string; buildArgs?: Record<string, string>; target?: string; excluded?: string }[];
}

const suitePath = process.env.KIMIA_COMPARE_SUITE;
describe.runIf(Boolean(suitePath))('external suite', () => {
  const rows = new Map<string, Record<string, string>>();
  let suite: ExternalSuite;
  let context: string;
  const engines: Engine[] = [];

  beforeAll(async () => {
    const { readFile: read } = await import('node:fs/promises');
    suite = JSON.parse(await read(suitePath!, 'utf8')) as ExternalSuite;
    const { pushDebootstrapImage } = await import('../harness/images.js');
    const debian = await pushDebootstrapImage(reg);
    for (const [alias, kind] of Object.entries(suite.aliases)) {
      await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${kind === 'busybox' ? busybox : debian}`, `docker://${reg.host}/${alias}`]);
    }
    context = ws.path('external');
    await run('cp', ['-a', `${suite.context}/.`, `${context}/`]);
    await run('sh', ['-c', 'for f in "$1"/dockerfiles/*; do sed -i "s#{{REG}}#$2#g" "$f"; done', 'sh', context, reg.host]);
    await chownTree(ws.dir);
    // Kaniko builds its two base images with docker first
    for (const b of suite.bases) {
      const r = await dockerd.docker(['build', '--network', 'host', '-t', `${reg.host}/${b.name}`, '-f', join(context, b.dockerfile), context], { env: { DOCKER_BUILDKIT: '1' }, reject: false, timeoutMs: 600_000 });
      if (r.exitCode === 0) await dockerd.docker(['push', `${reg.host}/${b.name}`], { reject: false });
    }
    const wanted = (process.env.KIMIA_COMPARE_ENGINES ?? 'host,image').split(',');
    if (wanted.includes('host')) engines.push(await hostEngine());
    if (wanted.includes('image')) engines.push(await imageEngine());
  }, 3_600_000);

  afterAll(async () => {
    if (!process.env.KIMIA_COMPARE_REPORT || !suite) return;
    const heads = engines.map((e) => `kimia ${e.name} (Buildah ${e.version})`);
    const lines = [`Kaniko revision ${suite.revision}; docker build = dockerd 20.10 BuildKit`, '', `| Dockerfile | docker build | ${heads.join(' | ')} |`, `|---|---|${heads.map(() => '---').join('|')}|`];
    for (const c of suite.cases.filter((x) => rows.has(x.name))) {
      const r = rows.get(c.name) ?? {};
      lines.push(`| ${c.name} | ${r.docker ?? '—'} | ${engines.map((e) => r[e.name] ?? '—').join(' | ')} |`);
    }
    await writeFile(process.env.KIMIA_COMPARE_REPORT, lines.join('\n') + '\n');
  });

  it('builds every Dockerfile with docker and kimia and records the differences', async () => {
    const firstLine = (text: string) => (text.split('\n').map((l) => l.trim()).filter((l) => /^(error|ERROR|Error|failed)/.test(l)).pop() ?? '').replace(/\|/g, '\\|').slice(0, 160);
    const only = process.env.KIMIA_COMPARE_CASES?.split(',');
    for (const c of suite.cases.filter((x) => !only || only.includes(x.name))) {
      const row: Record<string, string> = {};
      rows.set(c.name, row);
      if (c.excluded) {
        row.docker = `not run: ${c.excluded}`;
        continue;
      }
      const args = Object.entries(c.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
      const extra = [...args, ...(c.target ? ['--target', c.target] : []), '--dockerfile', c.dockerfile!];
      const dockerRef = `${reg.host}/kaniko-docker/${c.name.toLowerCase()}:1`;
      const d = await dockerd.docker(['build', '--network', 'host', '-t', dockerRef, ...args, ...(c.target ? ['--target', c.target] : []), '-f', join(context, c.dockerfile!), context], { env: { DOCKER_BUILDKIT: '1' }, reject: false, timeoutMs: 600_000 })
        .then(async (r) => (r.exitCode === 0 ? dockerd.docker(['push', dockerRef], { reject: false, timeoutMs: 300_000 }) : r));
      row.docker = d.exitCode === 0 ? 'built' : `fails: ${firstLine(`${d.stdout}\n${d.stderr}`)}`;
      const ds = d.exitCode === 0 ? await snapshotImage(`docker://${dockerRef}`, ws.dir, { tlsVerify: false }) : undefined;
      for (const e of engines) {
        const ref = `${reg.host}/kaniko-${e.name}/${c.name.toLowerCase()}:1`;
        const k = await e.build(context, ref, extra).catch((err: Error) => ({ exitCode: -1, all: err.message }));
        if (k.exitCode !== 0) {
          row[e.name] = `exit ${k.exitCode}: ${firstLine(k.all)}`;
          continue;
        }
        if (!ds) {
          row[e.name] = 'built';
          continue;
        }
        const diffs = compareImages(await snapshotImage(`docker://${ref}`, ws.dir, { tlsVerify: false }), ds);
        const stubs = diffs.filter((x) => /^etc\/(hostname|hosts|resolv\.conf)$/.test(x.key));
        const rest = diffs.filter((x) => !stubs.includes(x));
        const show = (x: Difference) => (x.where === 'config' ? `${x.key} (kimia ${JSON.stringify(x.kimia)}, docker ${JSON.stringify(x.docker)})` : `/${x.key}`);
        row[e.name] = rest.length === 0 ? `same${stubs.length ? ' (but RUN mount stubs)' : ''}` : `${rest.length} differ: ${rest.slice(0, 5).map(show).join(', ').replace(/\|/g, '\\|')}${rest.length > 5 ? ', …' : ''}`;
        if (process.env.KIMIA_COMPARE_DETAILS) await writeFile(join(process.env.KIMIA_COMPARE_DETAILS, `${c.name}-${e.name}.txt`), describeDifferences(rest));
      }
    }
  }, 4 * 3_600_000);
});
