import { describe, expect, it } from 'vitest';
import { dockerfileDigest, expand, externalInputs } from '../../../src/kimia/buildkey/dockerfile.js';
import { parseDockerfile } from '../../../src/kimia/dockerfile/parse.js';
import { decideFormat } from '../../../src/kimia/dockerfile/format.js';
import { ignoreMatcher } from '../../../src/kimia/buildkey/ignore.js';
import { buildKey, keyDisabled, keyDocument, localKey, type KeyFacts } from '../../../src/kimia/buildkey/key.js';
import { parseChallenge, parseImageRef } from '../../../src/kimia/buildkey/registry.js';
import { describeAge, prepareRecord, recordBuild, storageName } from '../../../src/kimia/buildkey/index.js';
import { MAX_RECORDS, keyDir, localKeyKnown, prepareRecordDir, readRecord, writeRecord } from '../../../src/kimia/buildkey/record.js';
import { parseCommand } from '../../../src/kimia/cli/parse.js';
import type { BuildRequest } from '../../../src/kimia/cli/request.js';

const platform = { target: 'linux/amd64', build: 'linux/amd64' };
const known = (text: string, args: Record<string, string> = {}) => externalInputs(parseDockerfile(text), new Map(Object.entries(args)), platform);

describe('externalInputs: what a Dockerfile reads besides its context', () => {
  it('FROM images, stage references and scratch skipped, COPY --from and RUN --mount from= images', () => {
    expect(known(`FROM reg:5000/base:1 AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /out\nCOPY --from=nginx:1.25 /etc/nginx /n\nCOPY --from=0 /x /y\nRUN --mount=type=bind,from=alpine:3,target=/a true\nFROM build\n`))
      .toEqual({ kind: 'known', images: ['reg:5000/base:1', 'nginx:1.25', 'alpine:3'] });
  });
  it('expands global ARGs, with build args overriding their defaults, and the platform ARGs', () => {
    expect(known('ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-1.36}\nFROM --platform=$BUILDPLATFORM img-$TARGETARCH\n', { BASE: 'reg/b' }))
      .toEqual({ kind: 'known', images: ['reg/b:1.36', 'img-amd64'] });
  });
  it('a variable without a value, an ADD of a URL or a Git repository: unprovable, with the line', () => {
    expect(known('FROM $NOPE\n')).toMatchObject({ kind: 'unprovable', reason: expect.stringContaining('line 1') });
    expect(known('FROM busybox\nADD https://example.com/x.tgz /x\n')).toMatchObject({ kind: 'unprovable', reason: expect.stringContaining('ADD at line 2 fetches a URL') });
    expect(known('FROM busybox\nADD git@github.com:o/r.git /r\n').kind).toBe('unprovable');
    expect(known('# just a comment\n').kind).toBe('unprovable');
  });
  it('an ADD of a local file is content (hashed with the context), not a URL', () => {
    expect(known('FROM busybox\nADD app.tar.gz /app\nADD --chown=1:1 a b /c/\n')).toEqual({ kind: 'known', images: ['busybox'] });
  });
  it('continuations, comments inside them, the escape directive and heredoc bodies', () => {
    const text = '# escape=`\nFROM busybox `\n  AS a\nRUN <<EOF\nFROM evil:1\nEOF\nCOPY <<-X /f\n\tFROM evil:2\n\tX\nFROM a\n';
    expect(parseDockerfile(text).instructions.map((i) => i.keyword)).toEqual(['FROM', 'RUN', 'COPY', 'FROM']);
    expect(known(text)).toEqual({ kind: 'known', images: ['busybox'] });
  });
  it('the parsed Dockerfile in the key: comments and blank lines between instructions do not count; instructions, here-document bodies (their # lines too) and the escape character do', () => {
    const digest = (text: string) => dockerfileDigest(parseDockerfile(text));
    const base = 'FROM busybox\nRUN <<EOF\n# a line of the script\necho hi\nEOF\nCOPY a \\\n  b /dst/\n';
    expect(digest(`# a comment\n\n${base.replace('RUN', '\n# another\nRUN')}\n\n`)).toBe(digest(base));
    for (const changed of [
      base.replace('echo hi', 'echo bye'),
      base.replace('# a line of the script', '# another line of the script'),
      base.replace('a \\\n  b', 'a \\\n  c'),
      base.replace('FROM busybox', 'FROM busybox:1'),
      `# escape=\`\n${base}`,
    ]) expect(digest(changed), changed).not.toBe(digest(base));
  });
  it('expand', () => {
    const vars = new Map([['A', 'x'], ['E', '']]);
    expect(expand('$A-${A}-${E:-d}-${A:+p}-${E:+q}', vars)).toBe('x-x-d-p-');
    expect(expand('${B}', vars)).toBeUndefined();
  });
});

describe('ignoreMatcher (on the safe side)', () => {
  it('moby rules: *, ?, **, leading /, a folder excludes its content', () => {
    const m = ignoreMatcher('# comment\n/node_modules\n*.log\n**/tmp\ndocs/?.md\n');
    for (const p of ['node_modules', 'node_modules/x/y.js', 'a.log', 'tmp', 'a/b/tmp/c', 'docs/a.md']) expect(m.excluded(p), p).toBe(true);
    for (const p of ['src/a.log', 'docs/ab.md', 'nodemodules', 'src/app.ts']) expect(m.excluded(p), p).toBe(false);
  });
  it('excludes nothing when a pattern re-includes (!); skips patterns it cannot read with certainty', () => {
    expect(ignoreMatcher('*.log\n!keep.log\n').excluded('a.log')).toBe(false);
    const m = ignoreMatcher('[ab].txt\nx\\*\nsecret.env\n');
    expect(m.excluded('a.txt')).toBe(false);
    expect(m.excluded('secret.env')).toBe(true);
    expect(m.skipped).toHaveLength(2);
  });
  it('patterns leaving the context match nothing', () => {
    expect(ignoreMatcher('../x\n.\n').excluded('x')).toBe(false);
  });
});

function request(argv: string[], env: Record<string, string> = {}): BuildRequest {
  const c = parseCommand(['-d', 'reg/a:1', '--cache', ...argv], { HOME: '/h', ...env });
  if (c.kind !== 'build') throw new Error('not build');
  return c.request;
}

const facts: KeyFacts = {
  kimiaVersion: '0.1.0', engineVersion: '1.28.2', buildah: '/usr/bin/buildah:1:2', dockerfile: dockerfileDigest(parseDockerfile('FROM b\n')),
  format: { build: 'oci', output: 'oci' }, ignoreText: '', contextDigest: 'c0ffee',
  images: { b: 'sha256:aa' }, secretValues: { npmrc: 'the-npmrc-content' }, salt: 's1',
};

describe('the build key', () => {
  it('holds no value in clear, and the same value gives another key with another salt', () => {
    const r = request(['--build-arg', 'NPM_TOKEN=tok-value-123', '--build-arg', 'V=plain-1']);
    const doc = JSON.stringify(keyDocument(r, facts));
    for (const v of ['tok-value-123', 'plain-1', 'the-npmrc-content']) expect(doc).not.toContain(v);
    expect(buildKey(r, facts)).not.toBe(buildKey(r, { ...facts, salt: 's2' }));
    expect(buildKey(r, facts)).toMatch(/^[0-9a-f]{64}$/);
  });
  it('changes with what changes the result, not with destinations or order of labels', () => {
    const k = (argv: string[], f: Partial<KeyFacts> = {}) => buildKey(request(argv), { ...facts, ...f });
    const base = k(['--label', 'a=1', '--label', 'b=2']);
    expect(k(['--label', 'b=2', '--label', 'a=1'])).toBe(base);
    expect(k(['--label', 'a=1', '--label', 'b=2', '-d', 'other/x:2'])).toBe(base);
    for (const changed of [k(['--label', 'a=1', '--label', 'b=3']), k(['--label', 'a=1', '--label', 'b=2', '--target', 't']),
      k(['--label', 'a=1', '--label', 'b=2'], { format: { build: 'docker', output: 'docker' } }), k(['--label', 'a=1', '--label', 'b=2'], { format: { build: 'docker', output: 'oci' } }),
      k(['--label', 'a=1', '--label', 'b=2'], { engineVersion: '1.39.3' }), k(['--label', 'a=1', '--label', 'b=2'], { dockerfile: dockerfileDigest(parseDockerfile('FROM c\n')) }),
      k(['--label', 'a=1', '--label', 'b=2'], { contextDigest: 'other' }), k(['--label', 'a=1', '--label', 'b=2'], { images: { b: 'sha256:bb' } }),
      k(['--label', 'a=1', '--label', 'b=2'], { buildah: '/usr/bin/buildah:1:3' }), k(['--label', 'a=1', '--label', 'b=2'], { secretValues: { npmrc: 'rotated' } })]) {
      expect(changed).not.toBe(base);
    }
  });
  it('hashes the format the plan builds and pushes, not the one asked for', () => {
    // HEALTHCHECK: the default (OCI) is built in Docker format; an explicit OCI request is built and pushed as OCI
    const df = parseDockerfile('FROM b\nHEALTHCHECK CMD true\n');
    const byDefault = request([]);
    const asked = request(['--format', 'oci']);
    expect(byDefault.format).toBe(asked.format);
    const key = (r: BuildRequest) => buildKey(r, { ...facts, format: decideFormat(r.format, r.formatSource, df) });
    expect(key(byDefault)).not.toBe(key(asked));
  });
  it('is off without the layer cache, with --no-build-key, for several platforms, with mirrors', () => {
    expect(keyDisabled(request([]))).toBeUndefined();
    expect(keyDisabled(request(['--no-cache']))).toMatch(/layer cache is off/);
    expect(keyDisabled(request(['--no-build-key']))).toBe('--no-build-key');
    expect(keyDisabled(request(['--custom-platform', 'linux/amd64,linux/arm64']))).toMatch(/multi-platform/);
    expect(keyDisabled(request(['--registry-mirror', 'm:5000']))).toMatch(/mirrors/);
  });
  it('its local part: the same whatever the registries answer, another for any local input or another image reference', () => {
    const r = request(['--label', 'a=1']);
    const { images: _images, ...local } = facts;
    const base = localKey(r, local, ['b']);
    expect(localKey(r, local, ['b', 'b'])).toBe(base);
    // two full keys that differ only by a base digest share it
    expect(buildKey(r, facts)).not.toBe(buildKey(r, { ...facts, images: { b: 'sha256:bb' } }));
    for (const changed of [localKey(r, { ...local, contextDigest: 'other' }, ['b']), localKey(r, { ...local, dockerfile: dockerfileDigest(parseDockerfile('FROM c\n')) }, ['b']),
      localKey(r, { ...local, engineVersion: '1.39.3' }, ['b']), localKey(r, { ...local, secretValues: { npmrc: 'rotated' } }, ['b']),
      localKey(request(['--label', 'a=2']), local, ['b']), localKey(r, local, ['c']), localKey(r, local, [])]) {
      expect(changed).not.toBe(base);
    }
    expect(base).not.toBe(buildKey(r, facts));
  });
  it('a record leaves a marker of its local key, at most MAX_RECORDS of them', async () => {
    const { mkdir, mkdtemp, readdir, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'kimia-keys-'));
    await mkdir(join(dir, 'records')); // loadSalt makes it
    try {
      const record = (i: number) => ({ v: 1 as const, key: i.toString(16).padStart(64, '0'), imageId: 'e'.repeat(64), builtAt: '2026-01-01T00:00:00Z', pushed: {} });
      expect(await localKeyKnown(dir, 'a'.repeat(64))).toBe(false);
      await writeRecord(dir, record(1), 'a'.repeat(64));
      expect(await localKeyKnown(dir, 'a'.repeat(64))).toBe(true);
      expect(await localKeyKnown(dir, 'b'.repeat(64))).toBe(false);
      for (let i = 0; i < MAX_RECORDS + 3; i++) await writeRecord(dir, record(i + 2), i.toString(16).padStart(64, '1'));
      expect((await readdir(join(dir, 'local'))).length).toBeLessThanOrEqual(MAX_RECORDS);
      expect((await readdir(join(dir, 'records'))).length).toBeLessThanOrEqual(MAX_RECORDS);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('the room for a record made beforehand (beside the push): the record written after it survives, still at most MAX_RECORDS', async () => {
    const { mkdir, mkdtemp, readdir, rm, utimes } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'kimia-keys-'));
    await mkdir(join(dir, 'records'));
    try {
      const record = (i: number) => ({ v: 1 as const, key: i.toString(16).padStart(64, '0'), imageId: 'e'.repeat(64), builtAt: '2026-01-01T00:00:00Z', pushed: {} });
      for (let i = 0; i < MAX_RECORDS; i++) {
        await writeRecord(dir, record(i), i.toString(16).padStart(64, '1'));
        // distinct ages: the first written is the oldest
        const at = new Date(Date.UTC(2026, 0, 1) + i * 1000);
        await utimes(join(dir, 'records', `${record(i).key}.json`), at, at);
        await utimes(join(dir, 'local', i.toString(16).padStart(64, '1')), at, at);
      }
      // the oldest key built again: its own record is not pruned to make room for itself
      await prepareRecordDir(dir, record(0).key, '0'.padStart(64, '1'));
      expect(await readRecord(dir, record(0).key)).toBeDefined();
      const fresh = record(MAX_RECORDS + 1);
      await prepareRecordDir(dir, fresh.key, 'f'.repeat(64));
      await writeRecord(dir, fresh, 'f'.repeat(64), { prepared: true });
      expect(await readRecord(dir, fresh.key)).toEqual(fresh);
      expect(await localKeyKnown(dir, 'f'.repeat(64))).toBe(true);
      expect((await readdir(join(dir, 'records'))).length).toBeLessThanOrEqual(MAX_RECORDS);
      expect((await readdir(join(dir, 'local'))).length).toBeLessThanOrEqual(MAX_RECORDS);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('recordBuild with the preparation done beside the push writes the same record as without it', async () => {
    const { mkdir, mkdtemp, readFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { createLog } = await import('../../../src/kimia/log.js');
    const log = createLog({ level: 'error', format: 'text', timestamps: false });
    const dirs = [await mkdtemp(join(tmpdir(), 'kimia-keys-')), await mkdtemp(join(tmpdir(), 'kimia-keys-'))];
    try {
      for (const [n, dir] of dirs.entries()) {
        await mkdir(join(dir, 'records'));
        const keyed = { key: 'a'.repeat(64), local: 'b'.repeat(64), dir, statCache: { writtenNs: '1', files: {} }, contextId: '/ctx', durationMs: 1 };
        const result = { imageId: `sha256:${'c'.repeat(64)}`, pushed: [{ destination: 'reg:5000/a:1', digest: `sha256:${'d'.repeat(64)}` }] };
        if (n === 0) await recordBuild(keyed, result, log);
        else await recordBuild(keyed, result, log, await prepareRecord(keyed));
        expect(await readRecord(dir, keyed.key)).toMatchObject({ key: keyed.key, imageId: 'c'.repeat(64), pushed: { 'reg:5000/a:1': `sha256:${'d'.repeat(64)}` } });
        expect(await localKeyKnown(dir, keyed.local)).toBe(true);
        const stat = (await import('node:fs/promises')).readdir(dir).then((names) => names.filter((x) => x.startsWith('stat-')));
        expect(await stat).toHaveLength(1);
        expect(JSON.parse(await readFile(join(dir, (await stat)[0]!), 'utf8'))).toEqual({ writtenNs: '1', files: {} });
      }
    } finally {
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    }
  });
  it('lives beside the storage it refers to', () => {
    expect(keyDir('/cache/storage')).toBe('/cache/kimia-build-keys');
    expect(keyDir('/h/.local/share/containers/storage/')).toBe('/h/.local/share/containers/kimia-build-keys');
  });
});

describe('registry helpers', () => {
  it('parseImageRef and the names containers/storage records', () => {
    expect(parseImageRef('busybox')).toEqual({ registry: 'docker.io', repository: 'library/busybox', tag: 'latest' });
    expect(parseImageRef('reg:5000/a/b:1')).toEqual({ registry: 'reg:5000', repository: 'a/b', tag: '1' });
    expect(parseImageRef('localhost/x@sha256:ab')).toEqual({ registry: 'localhost', repository: 'x', digest: 'sha256:ab' });
    expect(storageName('127.0.0.1:5000/app')).toBe('127.0.0.1:5000/app:latest');
    expect(storageName('busybox:1')).toBe('docker.io/library/busybox:1');
  });
  it('parseChallenge', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')).toEqual({
      scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
    });
    expect(parseChallenge('Basic realm="r"').scheme).toBe('basic');
  });
  it('describeAge', () => {
    expect(describeAge('2026-01-01T00:00:00.000Z', Date.parse('2026-01-01T00:05:00Z'))).toBe('2026-01-01T00:00:00.000Z (5 min ago)');
  });
});
