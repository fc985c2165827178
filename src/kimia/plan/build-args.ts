/**
 * How build args and build secrets reach Buildah without their values on its command line. Pure.
 *
 * `/proc/<pid>/cmdline` is readable by every local user, `/proc/<pid>/environ` only by the process's own UID and
 * root. Buildah (1.28 and 1.39 alike) takes `--build-arg NAME` without `=` as "the value of NAME in my environment",
 * so kimia passes the name on the command line and the value in Buildah's environment. The environment of the RUN
 * steps is built from the image and the declared ARGs, never from Buildah's own, so nothing else reaches the build.
 *
 * The exception: names that Buildah itself (or the Go runtime and the containers libraries under it) reads from its
 * environment — PATH, HOME, TMPDIR, the proxy variables, BUILDAH_*, STORAGE_*… A value set there would change how
 * Buildah runs, so such an argument keeps `NAME=value` on the command line; one that is secret is refused.
 */
import type { BuildArg, BuildSecret } from '../cli/request.js';
import { fail } from '../errors.js';
import type { ParsedDockerfile } from '../dockerfile/parse.js';

// Names Buildah 1.28/1.39 or the libraries under it (containers/image, containers/storage, the Go runtime, gpgme,
// newuidmap) read from their environment. Exact names where a prefix would catch plausible build-arg names
// (STORAGE_ACCOUNT_KEY, REGISTRY_PASSWORD, DOCKER_PASSWORD, GOOGLE_API_KEY, GIT_TOKEN are ordinary build args).
const ENGINE_NAMES = new Set([
  'PATH', 'HOME', 'TMPDIR', 'USER', 'LOGNAME', 'NOTIFY_SOCKET', 'DBUS_SESSION_BUS_ADDRESS', 'SSH_AUTH_SOCK', 'GNUPGHOME',
  'SOURCE_DATE_EPOCH', 'STORAGE_DRIVER', 'STORAGE_OPTS', 'REGISTRY_AUTH_FILE', 'DOCKER_CONFIG', 'DOCKER_CERT_PATH',
  'SSL_CERT_FILE', 'SSL_CERT_DIR', 'HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY',
]);
const ENGINE_PREFIXES = ['BUILDAH_', '_BUILDAH', 'CONTAINERS_', '_CONTAINERS_', 'XDG_', 'LD_'];

/** Does Buildah (or what runs under it) read NAME from its own environment? Case-insensitive for the proxies. */
export function engineReadsEnv(name: string): boolean {
  if (/_PROXY$/i.test(name) && ENGINE_NAMES.has(name.toUpperCase())) return true;
  return ENGINE_NAMES.has(name) || /^GO[A-Z0-9]*$/.test(name) || ENGINE_PREFIXES.some((p) => name.startsWith(p));
}

export interface BudArgs {
  /** `--build-arg NAME` (value in env) or `--build-arg NAME=value` (names Buildah reads itself, not secret) */
  argv: string[];
  /** values Buildah reads for `--build-arg NAME` */
  env: Record<string, string>;
}

export function budBuildArgs(args: readonly BuildArg[]): BudArgs {
  const out: BudArgs = { argv: [], env: {} };
  for (const a of args) {
    // `--build-arg NAME` whose NAME is unset leaves the Dockerfile's ARG default alone (as docker does)
    if (a.unset) continue;
    if (engineReadsEnv(a.name)) {
      if (a.secret) {
        throw fail('BAD_FLAG_VALUE', {
          flag: '--build-arg',
          reason: `${a.name} is secret, but Buildah reads ${a.name} from its own environment, so its value would have to go on Buildah's command line (visible to every local user)`,
          hint: `give the argument another name (ARG ${a.name.replace(/^[_]+/, '')}_VALUE in the Dockerfile), or pass it as a build secret: --secret id=${a.name.toLowerCase()},env=${a.name}`,
        });
      }
      out.argv.push('--build-arg', `${a.name}=${a.value}`);
      continue;
    }
    out.argv.push('--build-arg', a.name);
    out.env[a.name] = a.value;
  }
  return out;
}

/** `--secret` for Buildah: a file by path, an env secret by variable name (its value stays in the environment). */
export function budSecrets(secrets: readonly BuildSecret[]): string[] {
  return secrets.flatMap((s) => ['--secret', s.source.kind === 'file' ? `id=${s.id},src=${s.source.path},type=file` : `id=${s.id},env=${s.source.name},type=env`]);
}

/** Names declared by `ARG NAME` (any stage, or before the first FROM) in a Dockerfile. */
export function declaredArgs(dockerfile: ParsedDockerfile): Set<string> {
  const out = new Set<string>();
  for (const i of dockerfile.instructions) {
    if (i.keyword !== 'ARG') continue;
    // a quoted default with spaces yields extra words: a name too many only masks more
    for (const word of i.text.replace(/^\S+\s*/, '').split(/\s+/)) {
      const name = /^([A-Za-z_][A-Za-z0-9_]*)/.exec(word)?.[1];
      if (name) out.add(name);
    }
  }
  return out;
}

/**
 * The secret build args whose values Buildah will write into the image history (`|2 API_TOKEN=… /bin/sh -c …` for
 * every RUN of a stage that declares them): secret, with a value, and declared (all of them when the Dockerfile is
 * not known yet, as in a dry run of a remote context).
 */
export function secretArgsInHistory(args: readonly BuildArg[], dockerfile: ParsedDockerfile | undefined): BuildArg[] {
  const declared = dockerfile === undefined ? undefined : declaredArgs(dockerfile);
  return args.filter((a) => a.secret && !a.unset && a.value.length > 0 && (!declared || declared.has(a.name)));
}
