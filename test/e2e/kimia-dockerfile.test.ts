/**
 * Dockerfile errors before any work, failures named by their Dockerfile line, the format decision, and no working
 * containers or mounts left behind: kimia built rootless as uid 1000 against a real registry and the host's Buildah.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { startRegistry, type StartedRegistry } from '../harness/services/registry.js';
import { pushBusyboxImage } from '../harness/images.js';
import { buildKimia, ensureSubIds, filesInImage, imageConfig, kimia, workspace, type Workspace } from './kimia-helpers.js';
import { run } from '../../src/core/exec/index.js';
import { parseEngineVersion } from '../../src/kimia/buildah/engine.js';
import { versionAtLeast } from '../../src/kimia/dockerfile/check.js';

let reg: StartedRegistry;
let base: string;
let ws: Workspace;
let engine: string;

beforeAll(async () => {
  await Promise.all([buildKimia(), ensureSubIds()]);
  reg = await startRegistry();
  base = await pushBusyboxImage(reg);
  ws = await workspace('kimia-dockerfile');
  engine = parseEngineVersion((await run('buildah', ['--version'])).stdout)!.version;
});

afterAll(async () => {
  await ws?.cleanup();
  await reg?.stop();
});

const insecure = () => ['--insecure-registry', reg.host];

async function build(name: string, dockerfile: string, args: string[] = [], env: Record<string, string> = {}) {
  await ws.write(`${name}/Dockerfile`, dockerfile);
  return kimia(['-c', ws.path(name), '--no-push', '--storage-driver=overlay', `--cache-dir=${ws.path(`cache-${name}`)}`, ...insecure(), ...args], {
    home: ws.path('home'), env,
  });
}

/** Working containers in a --cache-dir's storage, as buildah (run as the build user) lists them. */
async function containersIn(cacheDir: string): Promise<string[]> {
  const r = await run('setpriv', ['--reuid', '1000', '--regid', '1000', '--init-groups', 'env', `HOME=${ws.path('home')}`, 'buildah',
    '--root', `${cacheDir}/storage`, '--runroot', `${cacheDir}/run`, '--storage-driver', 'overlay', 'containers', '--quiet']);
  return r.stdout.split('\n').filter(Boolean);
}

async function mountsUnder(dir: string): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1]?.startsWith(dir));
}

describe('Dockerfile errors before any pull', () => {
  it('a misspelt instruction names the file, line and instruction with "did you mean", exit 2, nothing pulled', async () => {
    // the base is on a port nothing listens on: a pull would fail with "connection refused" instead
    const r = await build('syntax', 'FROM 127.0.0.1:9/never/pulled:1\nRUN true\nRUNN echo hi\n', ['--dockerfile=Dockerfile']);
    expect(r.exitCode, r.all).toBe(2);
    expect(r.stderr).toContain('error: Dockerfile syntax error at Dockerfile:3: unknown instruction RUNN');
    expect(r.stderr).toContain('cause: line 3 reads `RUNN echo hi`');
    expect(r.stderr).toContain('fix: did you mean RUN?');
    expect(r.all).not.toMatch(/pulling 127|connection refused|imagebuilder\.Step/);
  });

  it('a feature the engine is too old for names the Buildah release that has it, before any pull', async () => {
    const r = await build('heredoc', 'FROM 127.0.0.1:9/never/pulled:1\nRUN <<EOF\necho hi > /x\nEOF\n');
    if (versionAtLeast(engine, '1.33.0')) {
      // a newer host engine builds heredocs; the pull then fails (the base does not exist), which proves it got that far
      expect(r.exitCode, r.all).not.toBe(6);
      return;
    }
    expect(r.exitCode, r.all).toBe(6);
    expect(r.stderr).toContain(`error: Dockerfile:2: here-documents (<<EOF) in RUN, COPY and ADD needs Buildah 1.33.0 or later; this engine is Buildah ${engine}`);
    expect(r.stderr).toContain('Buildah 1.39.3 from Debian 13 (trixie)');
    expect(r.stderr).toContain(`engine: buildah ${engine}`);
    expect(r.all).not.toMatch(/pulling 127/);
  });
});

describe('failures named by their Dockerfile line', () => {
  it('a failing RUN says "RUN at Dockerfile:LINE exited 7" (ONBUILD triggers by their ONBUILD line)', async () => {
    const r = await build('run7', `FROM ${base} AS a\nRUN true\nFROM ${base}\nCOPY --from=a /etc/passwd /p\nRUN echo x && \\\n  exit 7\n`);
    expect(r.exitCode, r.all).toBe(3);
    expect(r.stderr).toContain('error: RUN at Dockerfile:5 exited 7');
    expect(r.stderr).toContain('cause: the command `echo x && exit 7` returned status 7 in stage 2.');
    expect(r.stderr).not.toContain('buildah exited with code');

    const t = await build('trigger', `FROM ${base} AS base\nONBUILD RUN exit 4\nFROM base\nRUN true\n`);
    expect(t.exitCode, t.all).toBe(3);
    expect(t.stderr).toContain('error: RUN (ONBUILD trigger at Dockerfile:2) exited 4');
  });

  it('a COPY of a missing file names its line', async () => {
    const r = await build('copy-missing', `FROM ${base}\nCOPY nothere.txt /x\n`);
    expect(r.exitCode, r.all).toBe(3);
    expect(r.stderr).toMatch(/error: COPY at Dockerfile:2 failed: .*nothere\.txt/);
  });

  it('a base image the registry does not have names the image and the registry, exit 7', async () => {
    const r = await build('missing-base', `ARG TAG=9.9\nFROM ${reg.host}/busybox:\${TAG}\nRUN true\n`);
    expect(r.exitCode, r.all).toBe(7);
    expect(r.stderr).toContain(`error: base image ${reg.host}/busybox:9.9 not found in registry ${reg.host} (FROM at Dockerfile:2)`);
    expect(r.stderr).toContain('answered "manifest unknown": it has no tag 9.9 in busybox');
    expect(r.stderr).toContain(`skopeo list-tags docker://${reg.host}/busybox`);
  });
});

describe('format', () => {
  it('with OCI forced, SHELL still governs RUN and ONBUILD triggers still run in later stages; the push is OCI without them', async () => {
    const dockerfile = `FROM ${base} AS parent
SHELL ["/usr/bin/env", "MARK=from-shell", "/bin/sh", "-c"]
RUN echo "$MARK" > /mark
ONBUILD RUN echo triggered > /trigger
FROM parent
RUN test -f /trigger
`;
    await ws.write('shell-oci/Dockerfile', dockerfile);
    const dest = `${reg.host}/shell-oci:1`;
    const r = await kimia(['-c', ws.path('shell-oci'), '-d', dest, '--storage-driver=overlay', ...insecure()], { home: ws.path('home'), env: { BUILDAH_FORMAT: 'oci' } });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stderr).toContain('Warning: SHELL instruction ignored (BUILDAH_FORMAT=oci was asked for');
    expect(r.stderr).toContain('SHELL at Dockerfile:2: the image\'s default shell is not recorded');
    expect(r.stderr).toContain('ONBUILD at Dockerfile:4: images built FROM this one will not run RUN echo triggered > /trigger');
    expect((await reg.manifest('shell-oci', '1')).contentType).toBe('application/vnd.oci.image.manifest.v1+json');
    const cfg = await imageConfig(dest) as { config?: { Shell?: unknown; OnBuild?: unknown } };
    expect(cfg.config?.Shell).toBeUndefined();
    expect(cfg.config?.OnBuild).toBeUndefined();
    const files = await filesInImage(dest, ws);
    expect(files.get('mark')?.content).toBe('from-shell\n');
    expect(files.get('trigger')?.content).toBe('triggered\n');
  });
});

describe('no working containers or mounts left', () => {
  it('after ARG B=… / FROM ${B} and nothing else (Buildah 1.28 keeps one), after a failure, and after SIGTERM', async () => {
    const ok = await build('from-only', `ARG B=${base}\nFROM \${B}\n`);
    expect(ok.exitCode, ok.all).toBe(0);
    expect(await containersIn(ws.path('cache-from-only'))).toEqual([]);

    const failed = await build('fails', `FROM ${base}\nRUN exit 3\n`);
    expect(failed.exitCode, failed.all).toBe(3);
    expect(await containersIn(ws.path('cache-fails'))).toEqual([]);

    await ws.write('term/Dockerfile', `FROM ${base}\nRUN sleep 60\n`);
    const term = await kimia(['-c', ws.path('term'), '--no-push', '--storage-driver=overlay', `--cache-dir=${ws.path('cache-term')}`, ...insecure()], {
      home: ws.path('home'), prefix: ['timeout', '--preserve-status', '-s', 'TERM', '5'],
    });
    expect(term.exitCode, term.all).toBe(130);
    expect(term.stderr).toContain('step 2/2: RUN sleep 60');
    expect(await containersIn(ws.path('cache-term'))).toEqual([]);
    expect(await mountsUnder(ws.dir)).toEqual([]);
  });

  it('containers that were in the storage before the build are left alone', async () => {
    const cache = ws.path('cache-shared');
    const first = await build('from-only-2', `FROM ${base}\nRUN true\n`, [`--cache-dir=${cache}`]);
    expect(first.exitCode, first.all).toBe(0);
    const mine = await run('setpriv', ['--reuid', '1000', '--regid', '1000', '--init-groups', 'env', `HOME=${ws.path('home')}`, 'buildah',
      '--root', `${cache}/storage`, '--runroot', `${cache}/run`, '--storage-driver', 'overlay', 'from', '--name', 'someone-elses', 'localhost/kimia-build:latest']);
    expect(mine.exitCode).toBe(0);
    const again = await build('from-only-3', `FROM ${base}\n`, [`--cache-dir=${cache}`]);
    expect(again.exitCode, again.all).toBe(0);
    expect(await containersIn(cache)).toHaveLength(1);
  });
});
