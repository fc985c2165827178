import { describe, expect, it } from 'vitest';
import { maskConfig } from '../../../src/kimia/history/mask.js';
import { parseDockerfile } from '../../../src/kimia/dockerfile/parse.js';
import { declaredArgs, engineReadsEnv, secretArgsInHistory } from '../../../src/kimia/plan/build-args.js';

// the shape buildah 1.28 writes (taken from a real build with ARG API_TOKEN and ARG OTHER)
const CONFIG = JSON.stringify({
  created: '2026-12-03T09:22:01.298403367Z',
  architecture: 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { 'io.buildah.version': '1.28.2' } },
  rootfs: { type: 'layers', diff_ids: ['sha256:a527'] },
  history: [
    { created: '2026-12-03T09:21:55Z', created_by: '/bin/sh' },
    { created: '2026-12-03T09:21:59Z', created_by: '/bin/sh -c #(nop) ARG API_TOKEN OTHER', comment: 'FROM 0da8d2720df7', empty_layer: true },
    { created: '2026-12-03T09:22:00Z', created_by: '|2 API_TOKEN=SECRETVAL123 OTHER=otherval /bin/sh -c make', comment: 'FROM 6099aaaf508c' },
    { created: '2026-12-03T09:22:01Z', created_by: '|2 API_TOKEN=SECRETVAL123 OTHER=otherval /bin/sh -c echo SECRETVAL123 | wc -c' },
  ],
});

describe('maskConfig', () => {
  it('masks NAME=value and every other occurrence of the value in the history, nothing else', () => {
    const r = maskConfig(CONFIG, [{ name: 'API_TOKEN', value: 'SECRETVAL123' }]);
    expect(r.changed).toBe(true);
    expect(r.leaks).toEqual([]);
    expect(r.config).not.toContain('SECRETVAL123');
    const c = JSON.parse(r.config) as { history: { created_by: string }[]; config: unknown };
    expect(c.history[2]!.created_by).toBe('|2 API_TOKEN=*** OTHER=otherval /bin/sh -c make');
    expect(c.history[3]!.created_by).toBe('|2 API_TOKEN=*** OTHER=otherval /bin/sh -c echo *** | wc -c');
    expect(c.config).toEqual(JSON.parse(CONFIG).config);
  });
  it('a short value is masked only as NAME=value (elsewhere it would match unrelated text)', () => {
    const cfg = JSON.stringify({ history: [{ created_by: '|1 PW=ab /bin/sh -c tab' }] });
    expect(JSON.parse(maskConfig(cfg, [{ name: 'PW', value: 'ab' }]).config)).toEqual({ history: [{ created_by: '|1 PW=*** /bin/sh -c tab' }] });
  });
  it('a value with spaces is masked whole', () => {
    const cfg = JSON.stringify({ history: [{ created_by: '|2 PW=a b c X=1 /bin/sh -c true' }] });
    expect(maskConfig(cfg, [{ name: 'PW', value: 'a b c' }]).config).toContain('|2 PW=*** X=1');
  });
  it('reports a value outside the history (ENV, labels) instead of hiding it', () => {
    const cfg = JSON.stringify({ config: { Env: ['A=1', 'COPY=SECRETVAL123'], Labels: { t: 'x SECRETVAL123' } }, history: [] });
    const r = maskConfig(cfg, [{ name: 'API_TOKEN', value: 'SECRETVAL123' }]);
    expect(r.leaks).toEqual(['config.Env[1] (API_TOKEN)', 'config.Labels.t (API_TOKEN)']);
  });
  it('leaves a config without any value unchanged, byte for byte', () => {
    const r = maskConfig(CONFIG, [{ name: 'API_TOKEN', value: 'not-there' }]);
    expect(r).toEqual({ config: CONFIG, changed: false, leaks: [] });
  });
});

describe('build args and the engine', () => {
  it('engineReadsEnv: what buildah reads itself, not ordinary build-arg names', () => {
    for (const n of ['PATH', 'HOME', 'TMPDIR', 'http_proxy', 'HTTPS_PROXY', 'BUILDAH_FORMAT', 'CONTAINERS_CONF', 'STORAGE_DRIVER', 'GODEBUG', 'XDG_RUNTIME_DIR', 'SOURCE_DATE_EPOCH']) {
      expect(engineReadsEnv(n), n).toBe(true);
    }
    for (const n of ['API_TOKEN', 'GIT_TOKEN', 'GOOGLE_API_KEY', 'STORAGE_ACCOUNT_KEY', 'REGISTRY_PASSWORD', 'DOCKER_PASSWORD', 'NODE_ENV', 'VERSION']) {
      expect(engineReadsEnv(n), n).toBe(false);
    }
  });
  it('declaredArgs reads ARG lines of every stage, with defaults and several names', () => {
    expect([...declaredArgs(parseDockerfile('ARG BASE=x\nFROM $BASE\n  arg  A B=2\nRUN echo ARG C\n'))]).toEqual(['BASE', 'A', 'B']);
  });
  it('secretArgsInHistory: secret, with a value, declared (all when the Dockerfile is unknown)', () => {
    const args = [
      { name: 'A', value: 'v', fromEnv: false, secret: true },
      { name: 'B', value: '', fromEnv: false, secret: true },
      { name: 'C', value: 'v', fromEnv: false, secret: false },
      { name: 'D', value: 'v', fromEnv: false, secret: true },
    ];
    expect(secretArgsInHistory(args, parseDockerfile('FROM x\nARG A B C\n')).map((a) => a.name)).toEqual(['A']);
    expect(secretArgsInHistory(args, undefined).map((a) => a.name)).toEqual(['A', 'D']);
  });
});
