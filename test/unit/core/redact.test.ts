import { describe, expect, it } from 'vitest';
import { Redactor, formatCommand, looksSecretName } from '../../../src/core/redact.js';

describe('Redactor', () => {
  it('masks by value, including URL-encoded and basic-auth forms', () => {
    const r = new Redactor();
    r.addBasicAuth('alice', 'p@ss w0rd!');
    const b64 = Buffer.from('alice:p@ss w0rd!').toString('base64');
    expect(r.redact(`pw=p@ss w0rd! enc=${encodeURIComponent('p@ss w0rd!')} auth=${b64}`)).toBe('pw=*** enc=*** auth=***');
  });
  it('ignores values too short to be secrets', () => {
    const r = new Redactor(['a', '']);
    expect(r.size).toBe(0);
    expect(r.redact('a b c')).toBe('a b c');
  });
  it('formats a redacted command line', () => {
    const r = new Redactor(['tok3n']);
    expect(formatCommand('git', ['clone', 'https://oauth2:tok3n@h/x.git', 'a b'], r)).toBe("git clone 'https://oauth2:***@h/x.git' 'a b'");
  });
  it('recognises secret-looking names', () => {
    expect(looksSecretName('GITHUB_TOKEN')).toBe(true);
    expect(looksSecretName('npm_password')).toBe(true);
    expect(looksSecretName('http_proxy')).toBe(false);
    for (const n of ['API_KEY', 'apiKey', 'DB_PASS', 'BASIC_AUTH', 'SSH_KEY', 'GH_PAT', 'AWS_SECRET_ACCESS_KEY', 'NPM_TOKEN', 'dbPassword', 'GPG_PASSPHRASE', 'JWT']) {
      expect(looksSecretName(n), n).toBe(true);
    }
    for (const n of ['AUTHOR', 'PASSPORT_ID', 'BYPASS_CACHE', 'MONKEY', 'KEYBOARD', 'VERSION', 'NODE_ENV', 'PATH', 'COMPASS']) {
      expect(looksSecretName(n), n).toBe(false);
    }
  });
});
