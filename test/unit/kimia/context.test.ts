import { describe, expect, it } from 'vitest';
import { classifyContext, safeUrl, staysInside } from '../../../src/kimia/context/classify.js';
import { gitAuthEnv } from '../../../src/kimia/context/fetch.js';

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
  it('gitAuthEnv puts the token in a header through GIT_CONFIG_*, never in argv', () => {
    const env = gitAuthEnv('oauth2', 'tok');
    expect(env.GIT_CONFIG_KEY_0).toBe('http.extraHeader');
    expect(env.GIT_CONFIG_VALUE_0).toBe(`Authorization: Basic ${Buffer.from('oauth2:tok').toString('base64')}`);
    expect(env.GIT_TERMINAL_PROMPT).toBe('0');
    expect(gitAuthEnv('oauth2', undefined).GIT_CONFIG_COUNT).toBeUndefined();
  });
});
