import { describe, expect, it } from 'vitest';
import { classifyContext, safeUrl, staysInside } from '../../../src/kimia/context/classify.js';
import { CREDENTIAL_HELPER, foreignSubmodules, gitAuthEnv, gitOrigin } from '../../../src/kimia/context/git-auth.js';

describe('classifyContext', () => {
  it.each([
    ['/src/app', { kind: 'dir', path: '/src/app' }],
    ['dir:///src/app', { kind: 'dir', path: '/src/app' }],
    ['ctx.tar.gz', { kind: 'tar-file', path: 'ctx.tar.gz' }],
    ['tar:///tmp/c.tgz', { kind: 'tar-file', path: '/tmp/c.tgz' }],
    ['https://example.com/ctx.tar.gz', { kind: 'tar-url', url: 'https://example.com/ctx.tar.gz' }],
    ['http://127.0.0.1:8080/a/b.tgz', { kind: 'tar-url', url: 'http://127.0.0.1:8080/a/b.tgz' }],
    ['https://github.com/org/repo.git', { kind: 'git', url: 'https://github.com/org/repo.git' }],
    ['https://github.com/org/repo.git#main:app', { kind: 'git', url: 'https://github.com/org/repo.git', ref: 'main', subdir: 'app' }],
    ['git://host/repo.git#refs/heads/dev', { kind: 'git', url: 'git://host/repo.git', ref: 'dev' }],
    ['https://host/repo.git#refs/heads/b#0123456789abcdef0123456789abcdef01234567', { kind: 'git', url: 'https://host/repo.git', ref: 'b', revision: '0123456789abcdef0123456789abcdef01234567' }],
    ['https://host/download', { kind: 'http', url: 'https://host/download' }],
    ['s3://bucket/ctx.tar.gz', { kind: 'unsupported', scheme: 's3' }],
  ])('%s', (input, expected) => {
    expect(classifyContext(input)).toEqual(expected);
  });
});

describe('helpers', () => {
  it('safeUrl removes credentials', () => {
    expect(safeUrl('https://user:tok3n@host/repo.git')).toBe('https://host/repo.git');
  });
  it('staysInside', () => {
    expect(staysInside('a/b/../c')).toBe(true);
    expect(staysInside('a/../../c')).toBe(false);
    expect(staysInside('/abs')).toBe(false);
  });
  it('gitAuthEnv gives git a credential helper scoped to the origin through GIT_CONFIG_*, never the token in config, argv or a header', () => {
    const env = gitAuthEnv({ user: 'oauth2', token: 'tok', origin: { protocol: 'https', host: 'git.example.com:8443' } });
    const config = Array.from({ length: Number(env.GIT_CONFIG_COUNT) }, (_, i) => [env[`GIT_CONFIG_KEY_${i}`], env[`GIT_CONFIG_VALUE_${i}`]]);
    expect(config.slice(5)).toEqual([['credential.helper', ''], ['credential.helper', CREDENTIAL_HELPER], ['http.followRedirects', 'initial']]);
    expect(config.slice(0, 5)).toEqual([['protocol.allow', 'never'], ['protocol.https.allow', 'always'], ['protocol.http.allow', 'always'], ['protocol.git.allow', 'always'], ['protocol.ssh.allow', 'always']]);
    expect(config.some(([k]) => /extraHeader/i.test(k!))).toBe(false);
    expect(JSON.stringify(config)).not.toContain('tok');
    expect(env.KIMIA_GIT_HOST).toBe('git.example.com:8443');
    expect(env.KIMIA_GIT_TOKEN).toBe('tok');
    expect(env.GIT_TERMINAL_PROMPT).toBe('0');
    expect(gitAuthEnv({ user: 'oauth2' }).GIT_CONFIG_COUNT).toBe('5');
    expect(gitAuthEnv({ user: 'oauth2' }).KIMIA_GIT_TOKEN).toBeUndefined();
  });
  it('gitOrigin keeps the host as written (git hands it to the helper that way) and drops user info', () => {
    expect(gitOrigin('https://u:p@Git.Example.com:8443/a/b.git')).toEqual({ protocol: 'https', host: 'Git.Example.com:8443' });
    expect(gitOrigin('http://127.0.0.1:3000/app.git')).toEqual({ protocol: 'http', host: '127.0.0.1:3000' });
    expect(gitOrigin('git@github.com:org/repo.git')).toBeUndefined();
    expect(gitOrigin('ssh://git@host/repo.git')).toBeUndefined();
  });
  it('foreignSubmodules: other hosts, ports and schemes are foreign; relative URLs and the same origin are not', () => {
    const out = [
      'submodule.same.url http://127.0.0.1:3000/lib.git',
      'submodule.rel.url ../lib.git',
      'submodule.port.url http://127.0.0.1:3001/lib.git',
      'submodule.tls.url https://127.0.0.1:3000/lib.git',
      'submodule.ssh.url git@evil.example:x.git',
    ].join('\n');
    expect(foreignSubmodules(out, { protocol: 'http', host: '127.0.0.1:3000' }).map((s) => s.name)).toEqual(['port', 'tls', 'ssh']);
  });
});
