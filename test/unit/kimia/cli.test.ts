import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../../src/kimia/cli/parse.js';
import type { BuildRequest } from '../../../src/kimia/cli/request.js';
import { isToolError, type ToolError } from '../../../src/core/errors.js';

const env = { HOME: '/home/kimia', TOKEN_FROM_ENV: 'v', http_proxy: 'http://proxy:3128' };

function req(argv: string[], e: Record<string, string> = env): BuildRequest {
  const c = parseCommand(argv, e);
  if (c.kind !== 'build') throw new Error(`expected build, got ${c.kind}`);
  return c.request;
}

function err(argv: string[], e: Record<string, string> = env): ToolError {
  try {
    parseCommand(argv, e);
  } catch (x) {
    if (isToolError(x)) return x;
    throw x;
  }
  throw new Error('expected an error');
}

describe('flag forms', () => {
  it('accepts --flag=value, --flag value and the short forms alike', () => {
    const a = req(['--context=/ctx', '--dockerfile=D', '--destination=r/a:1', '--target=t', '--verbosity=debug']);
    const b = req(['--context', '/ctx', '--dockerfile', 'D', '--destination', 'r/a:1', '--target', 't', '--verbosity', 'debug']);
    const c = req(['-c', '/ctx', '-f', 'D', '-d', 'r/a:1', '-t', 't', '-v', 'debug']);
    const d = req(['-c=/ctx', '-fD', '-d', 'r/a:1', '-t', 't', '-v=debug']);
    for (const r of [b, c, d]) {
      expect(r.context).toBe(a.context);
      expect(r.dockerfile).toBe('D');
      expect(r.destinations).toEqual(['r/a:1']);
      expect(r.target).toBe('t');
      expect(r.verbosity).toBe('debug');
    }
  });

  it('booleans take --flag, --flag=true and --flag=false', () => {
    expect(req(['--cache', '-d', 'r/a']).cache).toBe(true);
    expect(req(['--cache=true', '-d', 'r/a']).cache).toBe(true);
    expect(req(['--cache=false', '-d', 'r/a']).cache).toBe(false);
    expect(err(['--cache=maybe', '-d', 'r/a']).exitCode).toBe(2);
  });

  it('repeats lists and keeps every value', () => {
    const r = req(['-d', 'r/a:1', '--destination=r/b:2', '--label', 'a=1', '--label=b=2=3', '--build-arg', 'X=1', '--build-arg=Y=two words']);
    expect(r.destinations).toEqual(['r/a:1', 'r/b:2']);
    expect(r.labels).toEqual([{ key: 'a', value: '1' }, { key: 'b', value: '2=3' }]);
    expect(r.buildArgs.map((b) => [b.name, b.value])).toEqual([['X', '1'], ['Y', 'two words']]);
  });

  it('takes a bare build-arg from the environment and accepts lower-case names', () => {
    const r = req(['-d', 'r/a', '--build-arg', 'http_proxy', '--build-arg', 'TOKEN_FROM_ENV']);
    expect(r.buildArgs).toEqual([
      { name: 'http_proxy', value: 'http://proxy:3128', fromEnv: true, secret: false },
      { name: 'TOKEN_FROM_ENV', value: 'v', fromEnv: true, secret: true },
    ]);
  });

  it('marks build-args with secret-looking names as secrets', () => {
    const r = req(['-d', 'r/a', '--build-arg', 'NPM_TOKEN=abc', '--build-arg', 'DB_PASSWORD=x', '--build-arg', 'VERSION=1']);
    expect(r.buildArgs.map((b) => b.secret)).toEqual([true, true, false]);
  });

  it('expands $VAR in the context', () => {
    expect(req(['-c', '$HOME/src', '-d', 'r/a']).context).toBe('/home/kimia/src');
  });
});

describe('errors', () => {
  it('an unknown flag is exit 2 with a did-you-mean', () => {
    const e = err(['--destinaton=r/a']);
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe('unknown flag --destinaton');
    expect(e.fix).toContain('did you mean --destination?');
  });

  it('refused Kaniko flags say what to use instead', () => {
    const e = err(['--ignore-path=/x', '-d', 'r/a']);
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe('Kaniko flag --ignore-path is not supported by kimia');
    expect(e.fix).toContain('.dockerignore');
  });

  it('accepted Kaniko no-op flags leave a note', () => {
    const r = req(['--snapshot-mode=redo', '--use-new-run', '--cleanup', '-d', 'r/a']);
    expect(r.notes.join('\n')).toMatch(/--snapshot-mode accepted for Kaniko compatibility/);
    expect(r.notes).toHaveLength(3);
  });

  it('a missing value, a bad number and a positional argument are usage errors', () => {
    expect(err(['-d']).message).toBe('flag --destination needs a value');
    expect(err(['-d', 'r/a', '--push-retry', 'x']).message).toContain('not a whole number');
    expect(err(['.']).fix).toContain('--context');
  });

  it('requires a destination unless --no-push, --tar-path or --oci-layout-path', () => {
    expect(err(['-c', '.']).code).toBe('NO_DESTINATION');
    expect(req(['--no-push']).noPush).toBe(true);
    expect(req(['--tar-path', '/x.tar']).noPush).toBe(true);
  });

  it('rejects a context sub-path that leaves the context and a bad platform', () => {
    expect(err(['-d', 'r/a', '--context-sub-path', '../x']).code).toBe('BAD_FLAG_VALUE');
    expect(err(['-d', 'r/a', '--custom-platform', 'linux']).code).toBe('BAD_FLAG_VALUE');
    expect(req(['-d', 'r/a', '--custom-platform', 'linux/arm64/v8']).platforms).toEqual(['linux/arm64/v8']);
    expect(req(['-d', 'r/a', '--custom-platform=linux/amd64,linux/arm64']).platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(err(['-d', 'r/a', '--custom-platform=linux/amd64,linux/arm64', '--tar-path=/x.tar']).code).toBe('BAD_FLAG_VALUE');
  });
});

describe('environment', () => {
  it('BUILDAH_FORMAT, STORAGE_DRIVER, BUILDAH_ISOLATION and DOCKER_CONFIG are honoured, flags win', () => {
    const e = { HOME: '/h', BUILDAH_FORMAT: 'docker', STORAGE_DRIVER: 'overlay', BUILDAH_ISOLATION: 'oci', DOCKER_CONFIG: '/cfg' };
    const r = req(['-d', 'r/a'], e);
    expect([r.format, r.storageDriver, r.isolation, r.dockerConfigDir]).toEqual(['docker', 'overlay', 'oci', '/cfg']);
    expect(req(['-d', 'r/a', '--storage-driver=vfs'], e).storageDriver).toBe('vfs');
  });

  it('defaults: vfs, oci, chroot, /home/kimia/.docker, git user oauth2', () => {
    const r = req(['-d', 'r/a'], {});
    expect([r.storageDriver, r.format, r.isolation, r.dockerConfigDir, r.git.tokenUser]).toEqual(['vfs', 'oci', 'chroot', '/home/kimia/.docker', 'oauth2']);
  });

  it('--reproducible uses SOURCE_DATE_EPOCH, else 0', () => {
    expect(req(['-d', 'r/a', '--reproducible'], {}).timestamp).toBe(0);
    expect(req(['-d', 'r/a', '--reproducible'], { SOURCE_DATE_EPOCH: '1700000000' }).timestamp).toBe(1700000000);
    expect(req(['-d', 'r/a', '--timestamp', '5']).timestamp).toBe(5);
  });

  it('SOURCE_DATE_EPOCH is honoured without --reproducible, and a malformed value is an error either way', () => {
    expect(req(['-d', 'r/a'], { SOURCE_DATE_EPOCH: '1700000000' }).timestamp).toBe(1700000000);
    expect(req(['-d', 'r/a'], {}).timestamp).toBeUndefined();
    for (const argv of [['-d', 'r/a'], ['-d', 'r/a', '--reproducible']]) {
      const e = err(argv, { SOURCE_DATE_EPOCH: '2024-01-01' });
      expect(e.code).toBe('BAD_FLAG_VALUE');
      expect(e.message).toBe('invalid value for SOURCE_DATE_EPOCH: "2024-01-01" is not epoch seconds');
    }
  });

  it('a bare --build-arg NAME missing from the environment is marked unset (not passed as an empty value)', () => {
    expect(req(['-d', 'r/a', '--build-arg', 'NOT_THERE']).buildArgs).toEqual([{ name: 'NOT_THERE', value: '', fromEnv: true, unset: true, secret: false }]);
  });
});

describe('Kaniko mappings', () => {
  it('--git branch=…,recurse-submodules=false maps onto the Git options; --git-branch wins', () => {
    const r = req(['-d', 'r/a', '--git', 'branch=dev,single-branch=true,recurse-submodules=false']);
    expect(r.git).toMatchObject({ branch: 'dev', recurseSubmodules: false, tokenUser: 'oauth2' });
    expect(req(['-d', 'r/a', '--git=branch=dev', '--git-branch=main']).git.branch).toBe('main');
  });

  it('--skip-tls-verify-registry adds an insecure registry; --single-snapshot squashes; --log-format color is text', () => {
    const r = req(['-d', 'r/a', '--skip-tls-verify-registry', 'r:5000', '--single-snapshot', '--log-format=color']);
    expect(r.insecureRegistries).toEqual(['r:5000']);
    expect(r.squash).toBe(true);
    expect(r.logFormat).toBe('text');
  });
});

describe('more Kaniko flags', () => {
  it('--customPlatform (old spelling) maps; --snapshotMode and --force-build-metadata are accepted with a note', () => {
    expect(req(['-d', 'r/a', '--customPlatform=linux/arm64']).platforms).toEqual(['linux/arm64']);
    const r = req(['-d', 'r/a', '--snapshotMode=time', '--force-build-metadata']);
    expect(r.notes).toHaveLength(2);
    expect(r.notes[0]).toMatch(/^--snapshotMode accepted for Kaniko compatibility/);
    expect(r.notes[1]).toMatch(/^--force-build-metadata accepted for Kaniko compatibility/);
  });

  it('--bucket and -b (GCS contexts) are refused with what to use instead', () => {
    for (const argv of [['--bucket=my-bucket', '-d', 'r/a'], ['-b', 'my-bucket', '-d', 'r/a']]) {
      const e = err(argv);
      expect(e.code).toBe('KANIKO_FLAG_UNSUPPORTED');
      expect(e.exitCode).toBe(2);
      expect(e.causeText).toContain('Google Cloud Storage');
      expect(e.fix).toContain('--context=');
    }
  });
});

describe('sub-commands', () => {
  it('dispatches version, help, check-environment, lint and build', () => {
    expect(parseCommand(['version'], env).kind).toBe('version');
    expect(parseCommand(['help'], env).kind).toBe('help');
    expect(parseCommand(['check-environment'], env).kind).toBe('check-environment');
    expect(parseCommand(['lint', 'Dockerfile'], env)).toEqual({ kind: 'lint', argv: ['Dockerfile'] });
    expect(parseCommand(['build', '-d', 'r/a'], env).kind).toBe('build');
  });
});

describe('registry certificates', () => {
  it('--registry-certificate takes a folder or HOST=FILE; --registry-client-cert takes HOST=CERT,KEY', () => {
    const r = req(['-d', 'r/a', '--registry-certificate', '/certs', '--registry-certificate=r:5000=/ca.crt', '--registry-client-cert', 'r:5000=/c.cert,/c.key']);
    expect(r.registryCertificates).toEqual([{ path: '/certs' }, { host: 'r:5000', path: '/ca.crt' }]);
    expect(r.registryClientCerts).toEqual([{ host: 'r:5000', cert: '/c.cert', key: '/c.key' }]);
    expect(err(['-d', 'r/a', '--registry-client-cert', 'r:5000=/c.cert']).code).toBe('BAD_FLAG_VALUE');
  });
});

describe('build secrets and secret build args', () => {
  const build = (argv: string[], env: Record<string, string> = {}) => {
    const c = parseCommand(['-d', 'r/a', ...argv], { HOME: '/h', ...env });
    if (c.kind !== 'build') throw new Error('not build');
    return c.request;
  };
  it('--secret id=…,src=… / env=… / type=…, and the id alone (env when set, else a file)', () => {
    expect(build(['--secret', 'id=npmrc,src=/s/npmrc', '--secret', 'id=t,env=TOK', '--secret', 'id=TOK2', '--secret', 'id=f'], { TOK: '1', TOK2: '2' }).buildSecrets).toEqual([
      { id: 'npmrc', source: { kind: 'file', path: '/s/npmrc' } },
      { id: 't', source: { kind: 'env', name: 'TOK' } },
      { id: 'TOK2', source: { kind: 'env', name: 'TOK2' } },
      { id: 'f', source: { kind: 'file', path: 'f' } },
    ]);
  });
  it('a malformed --secret is a usage error naming the problem', () => {
    expect(() => build(['--secret', 'src=/x'])).toThrow(/no id=/);
    expect(() => build(['--secret', 'id=a,env=UNSET_VAR'])).toThrow(/UNSET_VAR is not set/);
    expect(() => build(['--secret', 'id=a,type=ssh'])).toThrow(/not file or env/);
    expect(() => build(['--secret', 'id=a,src=/x', '--secret', 'id=a,src=/y'])).toThrow(/given twice/);
  });
  it('--secret-arg marks any build arg secret; one that names no build arg gets a note', () => {
    const r = build(['--build-arg', 'CUSTOM=v', '--build-arg', 'VERSION=1', '--secret-arg', 'CUSTOM', '--secret-arg', 'NOPE']);
    expect(r.buildArgs.map((a) => [a.name, a.secret])).toEqual([['CUSTOM', true], ['VERSION', false]]);
    expect(r.notes.join('\n')).toContain('--secret-arg NOPE names no --build-arg');
  });
});
