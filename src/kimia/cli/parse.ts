/**
 * argv + environment → Command. Pure: no filesystem, no process. Both `--flag=value` and `--flag value` work,
 * booleans take `--flag` or `--flag=true|false`, lists repeat, `-c -f -d -t -v` are short forms, and an unknown
 * flag is an error with a suggestion. Kaniko flags map onto kimia's, are accepted as no-ops with a note, or are
 * refused with what to use instead.
 */
import { parseBool, expandVars, type Env } from '../../core/config.js';
import { looksSecretName } from '../../core/redact.js';
import { parseLevel } from '../../core/log/index.js';
import { fail } from '../errors.js';
import { FLAGS, KANIKO_NOOPS, KANIKO_REFUSED, KANIKO_REFUSED_SHORT, findFlag, findShort, suggestFlag, type FlagType } from './flags.js';
import type { BuildArg, BuildRequest, BuildSecret, Command, ImageFormat, Isolation, LogFormat, StorageDriver, Verbosity } from './request.js';

type Raw = Map<string, string[]>;

const SUBCOMMANDS = ['build', 'check-environment', 'version', 'help', 'lint'] as const;

export function parseCommand(argv: readonly string[], env: Env): Command {
  const [first, ...rest] = argv;
  if (first === 'version' || first === '--version') return { kind: 'version' };
  if (first === 'help') return { kind: 'help', ...(rest[0] ? { topic: rest[0] } : {}) };
  if (first === 'lint') return { kind: 'lint', argv: rest };
  if (first === 'check-environment') return { kind: 'check-environment', request: toRequest(parseFlags(rest), env, false) };
  const args = first === 'build' ? rest : argv;
  const raw = parseFlags(args);
  if (raw.has('help')) return { kind: 'help' };
  return { kind: 'build', request: toRequest(raw, env, true) };
}

export function parseFlags(argv: readonly string[]): Raw {
  const raw: Raw = new Map();
  const put = (name: string, value: string) => {
    const list = raw.get(name) ?? [];
    list.push(value);
    raw.set(name, list);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    } else if (arg.startsWith('-') && arg.length >= 2 && arg !== '-') {
      const letter = arg[1]!;
      const spec = findShort(letter);
      const refusedLong = KANIKO_REFUSED_SHORT[letter];
      if (!spec && refusedLong) {
        const r = KANIKO_REFUSED[refusedLong]!;
        throw fail('KANIKO_FLAG_UNSUPPORTED', { flag: `-${letter} (--${refusedLong})`, reason: r.reason, hint: r.hint });
      }
      if (!spec) throw fail('UNKNOWN_FLAG', { flag: arg, hint: 'run kimia help for the list of flags' });
      name = spec.name;
      inline = arg.length > 2 ? (arg[2] === '=' ? arg.slice(3) : arg.slice(2)) : undefined;
    } else {
      if ((SUBCOMMANDS as readonly string[]).includes(arg)) {
        throw fail('BAD_FLAG_VALUE', { flag: arg, reason: 'sub-commands come first', hint: `write kimia ${arg} ...` });
      }
      throw fail('UNKNOWN_FLAG', {
        flag: arg,
        hint: 'kimia takes no positional arguments: give the build context with --context=DIR (or -c DIR)',
      });
    }
    const refused = KANIKO_REFUSED[name];
    if (refused) throw fail('KANIKO_FLAG_UNSUPPORTED', { flag: `--${name}`, reason: refused.reason, hint: refused.hint });
    const noop = KANIKO_NOOPS[name];
    const spec = findFlag(name);
    const type: FlagType | undefined = spec?.type ?? noop?.type;
    if (!type) {
      const guess = suggestFlag(name);
      throw fail('UNKNOWN_FLAG', {
        flag: `--${name}`,
        hint: guess ? `did you mean --${guess}? (kimia help lists every flag)` : 'run kimia help for the list of flags',
      });
    }
    const key = spec?.name ?? `noop:${name}`;
    if (type === 'bool') {
      let v = 'true';
      if (inline !== undefined) {
        try {
          v = String(parseBool(inline));
        } catch {
          throw fail('BAD_FLAG_VALUE', { flag: `--${name}`, reason: `"${inline}" is not true or false`, hint: `--${name} or --${name}=false` });
        }
      }
      put(key, v);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next.length > 1)) throw fail('MISSING_VALUE', { flag: `--${name}` });
      value = next;
      i++;
    }
    if (type === 'int' && !/^\d+$/.test(value)) {
      throw fail('BAD_FLAG_VALUE', { flag: `--${name}`, reason: `"${value}" is not a whole number`, hint: `--${name}=3` });
    }
    put(key, value);
  }
  return raw;
}

function last(raw: Raw, name: string): string | undefined {
  const v = raw.get(name);
  return v?.[v.length - 1];
}

function all(raw: Raw, name: string): string[] {
  return raw.get(name) ?? [];
}

function bool(raw: Raw, name: string, fallback = false): boolean {
  const v = last(raw, name);
  return v === undefined ? fallback : v === 'true';
}

function int(raw: Raw, name: string, fallback: number): number {
  const v = last(raw, name);
  return v === undefined ? fallback : Number(v);
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[], aliases: Record<string, T> = {}): T {
  const v = value.trim().toLowerCase();
  const hit = aliases[v] ?? allowed.find((a) => a === v);
  if (!hit) throw fail('BAD_FLAG_VALUE', { flag, reason: `"${value}" is not one of ${allowed.join(', ')}`, hint: `${flag}=${allowed[0]}` });
  return hit;
}

export function parseBuildArg(text: string, env: Env): BuildArg {
  const eq = text.indexOf('=');
  const name = eq >= 0 ? text.slice(0, eq) : text;
  // Lower-case names (http_proxy, no_proxy) are valid build-args (a reference defect rejected them).
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw fail('BAD_FLAG_VALUE', { flag: '--build-arg', reason: `"${name}" is not a valid argument name`, hint: '--build-arg NAME=value or --build-arg NAME' });
  }
  const fromEnv = eq < 0;
  const value = fromEnv ? (env[name] ?? '') : text.slice(eq + 1);
  const arg: BuildArg = { name, value, fromEnv, secret: looksSecretName(name) };
  if (fromEnv && env[name] === undefined) arg.unset = true;
  return arg;
}

/**
 * `id=ID,src=FILE`, `id=ID,env=VAR` (Buildah's and BuildKit's spelling; `source=` and `type=file|env` too). With
 * neither, the environment variable ID when it is set, else the file ID (as Buildah decides).
 */
export function parseSecret(text: string, env: Env): BuildSecret {
  const bad = (reason: string) => fail('BAD_FLAG_VALUE', { flag: '--secret', reason, hint: '--secret id=npmrc,src=/secrets/npmrc or --secret id=token,env=NPM_TOKEN, used as RUN --mount=type=secret,id=npmrc …' });
  let id: string | undefined;
  let src: string | undefined;
  let type: string | undefined;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(`"${part}" is not KEY=VALUE`);
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1);
    if (k === 'id') id = v;
    else if (k === 'src' || k === 'source') src = v;
    else if (k === 'env') {
      src = v;
      type = 'env';
    } else if (k === 'type') type = v;
    else throw bad(`unknown key "${k}"`);
  }
  if (!id || !/^[A-Za-z0-9_.-]+$/.test(id)) throw bad(id ? `"${id}" is not a valid id (letters, digits, . _ -)` : 'no id=');
  if (type !== undefined && type !== 'file' && type !== 'env') throw bad(`type "${type}" is not file or env`);
  const source = src ?? id;
  const kind = type ?? (src === undefined && env[id] !== undefined ? 'env' : 'file');
  if (kind === 'env') {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(source)) throw bad(`"${source}" is not an environment variable name`);
    if (env[source] === undefined) throw bad(`the environment variable ${source} is not set`);
    return { id, source: { kind: 'env', name: source } };
  }
  return { id, source: { kind: 'file', path: source } };
}

function parseLabel(text: string): { key: string; value: string } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw fail('BAD_FLAG_VALUE', { flag: '--label', reason: `"${text}" is not KEY=VALUE`, hint: '--label org.opencontainers.image.source=https://...' });
  return { key: text.slice(0, eq), value: text.slice(eq + 1) };
}

/** Kaniko `--git branch=main,single-branch=true,recurse-submodules=true`. */
function parseKanikoGit(text: string): { branch?: string; recurseSubmodules?: boolean } {
  const out: { branch?: string; recurseSubmodules?: boolean } = {};
  for (const part of text.split(',').filter(Boolean)) {
    const [k, v = ''] = part.split('=', 2) as [string, string?];
    if (k === 'branch') out.branch = v;
    else if (k === 'recurse-submodules') out.recurseSubmodules = parseBool(v, true);
    else if (k === 'single-branch' || k === 'insecure-skip-tls') continue;
    else throw fail('BAD_FLAG_VALUE', { flag: '--git', reason: `unknown key "${k}"`, hint: '--git branch=main,recurse-submodules=true' });
  }
  return out;
}

/** `linux/amd64` or a comma list `linux/amd64,linux/arm64` (a multi-platform manifest list). */
export function parsePlatforms(value: string): string[] {
  const list = value.split(',').map((p) => p.trim()).filter(Boolean);
  if (!list.length) throw fail('BAD_FLAG_VALUE', { flag: '--custom-platform', reason: 'empty', hint: '--custom-platform=linux/arm64' });
  for (const p of list) {
    if (!/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(p)) {
      throw fail('BAD_FLAG_VALUE', { flag: '--custom-platform', reason: `"${p}" is not OS/ARCH[/VARIANT]`, hint: '--custom-platform=linux/arm64 or --custom-platform=linux/amd64,linux/arm64' });
    }
  }
  return [...new Set(list)];
}

function envEnum<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (!value) return fallback;
  const v = value.trim().toLowerCase();
  const hit = allowed.find((a) => a === v);
  if (!hit) throw fail('BAD_FLAG_VALUE', { flag: name, reason: `"${value}" is not one of ${allowed.join(', ')}`, hint: `${name}=${allowed[0]}` });
  return hit;
}

export function toRequest(raw: Raw, env: Env, forBuild: boolean): BuildRequest {
  const home = env.HOME || '/home/kimia';
  const notes: string[] = [];
  for (const key of raw.keys()) {
    if (key.startsWith('noop:')) {
      const name = key.slice(5);
      notes.push(`--${name} accepted for Kaniko compatibility; it has no effect: ${KANIKO_NOOPS[name]!.note}`);
    }
  }
  const verbosityRaw = last(raw, 'verbosity');
  let verbosity: Verbosity = 'info';
  if (verbosityRaw !== undefined) {
    try {
      const lvl = parseLevel(verbosityRaw);
      verbosity = lvl === 'off' ? 'error' : lvl;
    } catch {
      throw fail('BAD_FLAG_VALUE', { flag: '--verbosity', reason: `"${verbosityRaw}" is not a level`, hint: '--verbosity=debug|info|warn|error' });
    }
  }
  const logFormat: LogFormat = oneOf('--log-format', last(raw, 'log-format') ?? 'text', ['text', 'json'] as const, { color: 'text' });
  const storageDriver: StorageDriver = last(raw, 'storage-driver') !== undefined
    ? oneOf('--storage-driver', last(raw, 'storage-driver')!, ['vfs', 'overlay'] as const, { overlay2: 'overlay' })
    : envEnum('STORAGE_DRIVER', env.STORAGE_DRIVER === 'overlay2' ? 'overlay' : env.STORAGE_DRIVER, ['vfs', 'overlay'] as const, 'vfs');
  const format: ImageFormat = last(raw, 'format') !== undefined
    ? oneOf('--format', last(raw, 'format')!, ['oci', 'docker'] as const)
    : envEnum('BUILDAH_FORMAT', env.BUILDAH_FORMAT, ['oci', 'docker'] as const, 'oci');
  const formatSource = last(raw, 'format') !== undefined ? 'flag' : env.BUILDAH_FORMAT ? 'env' : 'default';
  const isolation: Isolation = last(raw, 'isolation') !== undefined
    ? oneOf('--isolation', last(raw, 'isolation')!, ['chroot', 'oci', 'rootless'] as const)
    : envEnum('BUILDAH_ISOLATION', env.BUILDAH_ISOLATION, ['chroot', 'oci', 'rootless'] as const, 'chroot');

  const kanikoGit = last(raw, 'git') !== undefined ? parseKanikoGit(last(raw, 'git')!) : {};
  const contextRaw = last(raw, 'context');
  const context = contextRaw !== undefined ? expandVars(contextRaw, env) : '.';
  const subPath = last(raw, 'context-sub-path');
  if (subPath !== undefined && (subPath.startsWith('/') || subPath.split('/').includes('..'))) {
    throw fail('BAD_FLAG_VALUE', { flag: '--context-sub-path', reason: `"${subPath}" leaves the context`, hint: '--context-sub-path=path/inside/the/context' });
  }

  const reproducible = bool(raw, 'reproducible');
  // SOURCE_DATE_EPOCH is honoured with or without --reproducible, so a malformed value is an error either way
  // (silently building with the current time would defeat the point of setting it)
  const sde = env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && sde !== '' && !/^\d+$/.test(sde)) {
    throw fail('BAD_FLAG_VALUE', { flag: 'SOURCE_DATE_EPOCH', reason: `"${sde}" is not epoch seconds`, hint: 'SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)' });
  }
  let timestamp: number | undefined;
  if (last(raw, 'timestamp') !== undefined) timestamp = int(raw, 'timestamp', 0);
  else if (sde) timestamp = Number(sde);
  else if (reproducible) timestamp = 0;

  const certificates = all(raw, 'registry-certificate').map((v) => {
    const eq = v.indexOf('=');
    return eq > 0 ? { host: v.slice(0, eq), path: v.slice(eq + 1) } : { path: v };
  });

  const request: BuildRequest = {
    context,
    dockerfile: last(raw, 'dockerfile') ?? 'Dockerfile',
    destinations: all(raw, 'destination').flatMap((d) => d.split(',')).map((d) => d.trim()).filter(Boolean),
    buildArgs: all(raw, 'build-arg').map((b) => parseBuildArg(b, env)),
    buildSecrets: all(raw, 'secret').map((t) => parseSecret(t, env)),
    labels: all(raw, 'label').map(parseLabel),
    cache: !bool(raw, 'no-cache') && (bool(raw, 'cache') || last(raw, 'cache-repo') !== undefined && last(raw, 'cache') !== 'false'),
    noBuildKey: bool(raw, 'no-build-key'),
    storageDriver,
    noPush: bool(raw, 'no-push'),
    insecure: bool(raw, 'insecure'),
    insecurePull: bool(raw, 'insecure-pull'),
    insecureRegistries: [...all(raw, 'insecure-registry'), ...all(raw, 'skip-tls-verify-registry')],
    skipTlsVerify: bool(raw, 'skip-tls-verify'),
    skipTlsVerifyPull: bool(raw, 'skip-tls-verify-pull'),
    registryCertificates: certificates,
    platforms: all(raw, 'custom-platform').flatMap(parsePlatforms),
    registryClientCerts: all(raw, 'registry-client-cert').map((v) => {
      const m = /^([^=]+)=([^,]+),(.+)$/.exec(v);
      if (!m) throw fail('BAD_FLAG_VALUE', { flag: '--registry-client-cert', reason: `"${v}" is not HOST=CERT,KEY`, hint: '--registry-client-cert=my.registry:5000=/certs/client.cert,/certs/client.key' });
      return { host: m[1]!, cert: m[2]!, key: m[3]! };
    }),
    registryMirrors: all(raw, 'registry-mirror'),
    pushRetry: int(raw, 'push-retry', 0),
    imageDownloadRetry: int(raw, 'image-download-retry', 0),
    git: {
      tokenUser: last(raw, 'git-token-user') ?? 'oauth2',
      recurseSubmodules: kanikoGit.recurseSubmodules ?? true,
    },
    reproducible,
    squash: bool(raw, 'single-snapshot'),
    format,
    formatSource,
    isolation,
    verbosity,
    logFormat,
    logTimestamp: bool(raw, 'log-timestamp'),
    dryRun: bool(raw, 'dry-run'),
    skipPreflight: bool(raw, 'skip-preflight'),
    notes,
    home,
    dockerConfigDir: env.DOCKER_CONFIG || '/home/kimia/.docker',
  };
  const optional: [keyof BuildRequest, string | undefined][] = [
    ['contextSubPath', subPath],
    ['target', last(raw, 'target')],
    ['cacheDir', last(raw, 'cache-dir')],
    ['cacheRepo', last(raw, 'cache-repo')],
    ['tarPath', last(raw, 'tar-path')],
    ['ociLayoutPath', last(raw, 'oci-layout-path')],
    ['digestFile', last(raw, 'digest-file')],
    ['imageNameWithDigestFile', last(raw, 'image-name-with-digest-file')],
    ['imageNameTagWithDigestFile', last(raw, 'image-name-tag-with-digest-file')],
    ['compression', last(raw, 'compression')],
    ['storageRoot', last(raw, 'storage-root')],
  ];
  const target = request as unknown as Record<string, unknown>;
  for (const [k, v] of optional) if (v !== undefined) target[k] = v;
  if (request.platforms.length > 1 && request.tarPath) {
    throw fail('BAD_FLAG_VALUE', { flag: '--tar-path', reason: 'a docker-archive tarball holds one platform, not a multi-platform list', hint: 'use --oci-layout-path=DIR for a multi-platform build, or one --custom-platform' });
  }
  if (timestamp !== undefined) request.timestamp = timestamp;
  if (last(raw, 'compression-level') !== undefined) request.compressionLevel = int(raw, 'compression-level', 0);
  const branch = last(raw, 'git-branch') ?? kanikoGit.branch;
  if (branch !== undefined) request.git.branch = branch;
  const revision = last(raw, 'git-revision');
  if (revision !== undefined) request.git.revision = revision;
  const tokenFile = last(raw, 'git-token-file');
  if (tokenFile !== undefined) request.git.tokenFile = tokenFile;

  for (const name of all(raw, 'secret-arg')) {
    const args = request.buildArgs.filter((a) => a.name === name);
    if (!args.length) notes.push(`--secret-arg ${name} names no --build-arg: nothing to mask`);
    for (const a of args) a.secret = true;
  }
  const ids = request.buildSecrets.map((s) => s.id);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice) throw fail('BAD_FLAG_VALUE', { flag: '--secret', reason: `id "${twice}" is given twice`, hint: 'give each secret its own id' });
  if (forBuild && !request.dryRun && request.destinations.length === 0 && !request.noPush && !request.tarPath && !request.ociLayoutPath) {
    throw fail('NO_DESTINATION');
  }
  if (request.destinations.length === 0 && !request.noPush) request.noPush = true;
  for (const d of request.destinations) validateImageRef(d);
  // combinations where a flag cannot act: say so instead of silently doing nothing
  if (request.cacheDir && !request.cache) notes.push('--cache-dir without --cache: the image storage lives there, but layers are not reused (add --cache)');
  if (request.noPush && request.pushRetry > 0) notes.push('--push-retry has no effect with --no-push');
  if (request.noPush && (request.digestFile || request.imageNameWithDigestFile || request.imageNameTagWithDigestFile)) {
    notes.push('digest files are written only for pushed images: nothing is pushed with --no-push');
  }
  return request;
}

export function validateImageRef(ref: string): void {
  if (!/^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9._/-]+)?(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/i.test(ref) || /[A-Z]/.test(ref.split(':')[0]!.split('/').slice(1).join('/'))) {
    throw fail('BAD_FLAG_VALUE', { flag: '--destination', reason: `"${ref}" is not an image reference`, hint: '--destination=registry.example.com/team/app:1.0' });
  }
}

/** Help text generated from the flag table. */
export function helpText(): string {
  const lines = [
    'kimia: rootless, daemonless OCI image builder (Kaniko drop-in) on Buildah',
    '',
    'usage: kimia [build] --context=DIR|URL --destination=IMAGE [flags]',
    '       kimia check-environment | version | help | lint',
    '',
    'flags (--flag=value and --flag value both work; booleans take --flag or --flag=false):',
  ];
  for (const f of FLAGS) {
    const names = [f.short ? `-${f.short}, ` : '    ', `--${f.name}`, f.value ? ` ${f.value}` : ''].join('');
    lines.push(`  ${names.padEnd(44)} ${f.help}`);
  }
  lines.push('', 'environment: BUILDAH_FORMAT, BUILDAH_ISOLATION, STORAGE_DRIVER, DOCKER_CONFIG (default /home/kimia/.docker),');
  lines.push('  DOCKER_USERNAME / DOCKER_PASSWORD / DOCKER_REGISTRY, SOURCE_DATE_EPOCH, HOME');
  lines.push('', 'Kaniko flags accepted with no effect: ' + Object.keys(KANIKO_NOOPS).map((n) => `--${n}`).join(' '));
  lines.push('exit codes: 0 ok, 2 usage/config, 3 build, 4 push, 5 auth, 6 environment');
  return lines.join('\n') + '\n';
}
