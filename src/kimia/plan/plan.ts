/**
 * BuildRequest + resolved facts → BuildPlan: the exact buildah argv lists, the private config files kimia writes,
 * and the environment buildah runs with. Pure. The real run and `--dry-run` both print/execute this same plan.
 */
import type { BuildRequest } from '../cli/request.js';
import { stringify as stringifyToml } from 'smol-toml';
import { budBuildArgs, budSecrets, secretArgsInHistory } from './build-args.js';
import type { ParsedDockerfile } from '../dockerfile/parse.js';
import { decideFormat, type FormatDecision } from '../dockerfile/format.js';
import type { EngineVersion } from '../dockerfile/check.js';

export interface PlanFacts {
  /** resolved local folder of the build context (after fetching and --context-sub-path) */
  contextDir: string;
  /** private 0700 folder for containers.conf, registries.conf, auth.json, digests */
  privateDir: string;
  /** auth.json written by the auth step (undefined when there are no credentials) */
  authFile?: string;
  /** folder passed as --cert-dir (undefined when no certificates were given) */
  certDir?: string;
  /** the parsed Dockerfile: the format decision and the step → line map read it */
  dockerfile?: ParsedDockerfile;
  buildahPath?: string;
}

export interface PlannedFile {
  path: string;
  content: string;
  mode: number;
}

export interface PushStep {
  destination: string;
  argv: string[];
  digestFile: string;
}

export interface BuildPlan {
  buildah: string;
  env: Record<string, string>;
  files: PlannedFile[];
  storage: { root: string; runroot: string; driver: string };
  /** run before bud, failures ignored: a multi-platform build starts from a fresh manifest list, never appends */
  prepare: string[][];
  bud: string[];
  pushes: PushStep[];
  exports: { kind: 'tar' | 'oci'; path: string; argv: string[] }[];
  /** the local name of the built image (a manifest list when several platforms are built) */
  localImage: string;
  multiPlatform: boolean;
  dockerfilePath: string;
  /** the Dockerfile as parsed (undefined in a dry run of a remote context): failures are mapped to its lines */
  dockerfile?: ParsedDockerfile;
  target?: string;
  /** the Buildah that runs the plan (set once it is known: from preflight or `buildah --version`) */
  engine?: EngineVersion;
  format: FormatDecision;
  /** after bud, on every outcome: working containers this build left are removed (`rm` + their IDs) */
  cleanup: { containersFile: string; rm: string[] };
  /** info lines (why a format was chosen) */
  notes: string[];
  warnings: string[];
  /** values that must never be printed */
  secrets: string[];
  /**
   * secret build args whose values Buildah writes into the history of the built image: masked after `bud`, before
   * anything leaves the local storage (history/ does it); absent when there is nothing to mask
   */
  historyMask?: { args: { name: string; value: string }[] };
}

export const DEFAULT_LOCAL_IMAGE = 'localhost/kimia-build:latest';

export function containersConf(): string {
  // Rootless buildah 1.28 needs the host network namespace (no slirp4netns) and runc (crun refuses hybrid cgroups).
  return stringifyToml({ containers: { netns: 'host' }, engine: { runtime: 'runc' } });
}

export function registriesConf(request: Pick<BuildRequest, 'insecureRegistries' | 'registryMirrors'>): string {
  const registry: Record<string, unknown>[] = [];
  if (request.registryMirrors.length) {
    const mirror = request.registryMirrors.map((m) => ({ location: m.replace(/^https?:\/\//, ''), ...(request.insecureRegistries.includes(m) ? { insecure: true } : {}) }));
    registry.push({ prefix: 'docker.io', location: 'docker.io', mirror });
  }
  for (const host of request.insecureRegistries) {
    if (!request.registryMirrors.includes(host)) registry.push({ location: host, insecure: true });
  }
  return stringifyToml({ 'unqualified-search-registries': ['docker.io'], ...(registry.length ? { registry } : {}) });
}

export function storageFor(request: BuildRequest): { root: string; runroot: string; driver: string } {
  const root = request.cacheDir
    ? `${request.cacheDir.replace(/\/+$/, '')}/storage`
    : request.storageRoot ?? `${request.home}/.local/share/containers/storage`;
  const runroot = request.cacheDir
    ? `${request.cacheDir.replace(/\/+$/, '')}/run`
    : `${request.home}/.local/share/containers/run`;
  return { root, runroot, driver: request.storageDriver };
}

function hostOf(ref: string): string {
  const first = ref.split('/')[0]!;
  return ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}

export function planBuild(request: BuildRequest, facts: PlanFacts): BuildPlan {
  const storage = storageFor(request);
  const global = ['--root', storage.root, '--runroot', storage.runroot, '--storage-driver', storage.driver];
  const dockerfilePath = request.dockerfile.startsWith('/') ? request.dockerfile : `${facts.contextDir}/${request.dockerfile}`;
  const localImage = request.destinations[0] ?? DEFAULT_LOCAL_IMAGE;
  const secrets = request.buildArgs.filter((a) => a.secret).map((a) => a.value).filter((v) => v.length > 0);

  const auth = facts.authFile ? ['--authfile', facts.authFile] : [];
  const certs = facts.certDir ? ['--cert-dir', facts.certDir] : [];

  const multi = request.platforms.length > 1;
  const format = decideFormat(request.format, request.formatSource, facts.dockerfile);
  // pushes convert to OCI when the build ran in Docker format for SHELL/ONBUILD's sake (see dockerfile/format.ts)
  const convert = format.build !== format.output ? ['--format', format.output] : [];
  const bud = [...global, 'bud', '--isolation', request.isolation, '--format', format.build, '-f', dockerfilePath];
  if (multi) bud.push('--manifest', localImage);
  else for (const d of request.destinations.length ? request.destinations : [DEFAULT_LOCAL_IMAGE]) bud.push('-t', d);
  if (request.target) bud.push('--target', request.target);
  // values travel in buildah's environment, never in its argv (see build-args.ts)
  const args = budBuildArgs(request.buildArgs);
  bud.push(...args.argv, ...budSecrets(request.buildSecrets));
  for (const l of request.labels) bud.push('--label', `${l.key}=${l.value}`);
  bud.push(request.cache ? '--layers' : '--layers=false');
  const warnings: string[] = [];
  const inHistory = secretArgsInHistory(request.buildArgs, facts.dockerfile);
  const names = inHistory.map((a) => a.name).join(', ');
  if (request.cacheRepo) {
    bud.push('--cache-from', request.cacheRepo);
    // cache images carry the history of every step, secret build-arg values included: read the cache, never write it
    if (inHistory.length) warnings.push(`the cache repository ${request.cacheRepo} is read but not written: its images would record the value of secret build arg(s) ${names} in their history. Pass secrets with --secret and RUN --mount=type=secret instead.`);
    else bud.push('--cache-to', request.cacheRepo);
  }
  // one image per platform in a manifest list: no per-image masking, so no history at all (RUN steps are then not
  // found in the layer cache: Buildah compares histories)
  if (inHistory.length && multi) {
    bud.push('--omit-history');
    warnings.push(`the images are built without history: Buildah would record the value of secret build arg(s) ${names} in it. Pass secrets with --secret and RUN --mount=type=secret instead.`);
  }
  if (request.platforms.length) bud.push('--platform', request.platforms.join(','));
  if (request.timestamp !== undefined) bud.push('--timestamp', String(request.timestamp));
  // no io.buildah.version label: docker build and Kaniko add no builder label, and a base image's own label stays
  bud.push('--identity-label=false');
  if (request.squash) bud.push('--squash');
  const pullInsecure = request.insecurePull || request.skipTlsVerifyPull || (Boolean(request.cacheRepo) && (request.insecure || request.skipTlsVerify));
  if (pullInsecure) bud.push('--tls-verify=false');
  bud.push('--retry', String(request.imageDownloadRetry));
  bud.push(...auth, ...certs);
  if (!multi) bud.push('--iidfile', `${facts.privateDir}/image-id`);
  bud.push(facts.contextDir);

  const pushes: PushStep[] = [];
  if (!request.noPush) {
    request.destinations.forEach((destination, i) => {
      const digestFile = `${facts.privateDir}/digest-${i}`;
      const argv = multi ? [...global, 'manifest', 'push', '--all', ...convert, ...auth, ...certs] : [...global, 'push', ...convert, ...auth, ...certs];
      const insecureHost = request.insecureRegistries.includes(hostOf(destination));
      if (request.insecure || request.skipTlsVerify || insecureHost) argv.push('--tls-verify=false');
      if (!multi) {
        // kimia owns retries (with backoff and no retry on 401), so buildah's own retry is off.
        argv.push('--retry', '0');
        if (request.compression) argv.push('--compression-format', request.compression);
        if (request.compressionLevel !== undefined) argv.push('--compression-level', String(request.compressionLevel));
      }
      argv.push('--digestfile', digestFile, localImage, `docker://${destination}`);
      pushes.push({ destination, argv, digestFile });
    });
  }

  const exports: BuildPlan['exports'] = [];
  const refName = request.destinations[0] ?? DEFAULT_LOCAL_IMAGE;
  if (request.tarPath) exports.push({ kind: 'tar', path: request.tarPath, argv: [...global, 'push', localImage, `docker-archive:${request.tarPath}:${refName}`] });
  if (request.ociLayoutPath) {
    const verb = multi ? ['manifest', 'push', '--all'] : ['push'];
    exports.push({ kind: 'oci', path: request.ociLayoutPath, argv: [...global, ...verb, localImage, `oci:${request.ociLayoutPath}`] });
  }

  if (format.warning) warnings.push(format.warning);
  const notes = format.note ? [format.note] : [];

  const containersConfPath = `${facts.privateDir}/containers.conf`;
  const registriesConfPath = `${facts.privateDir}/registries.conf`;
  return {
    buildah: facts.buildahPath ?? 'buildah',
    env: {
      CONTAINERS_CONF: containersConfPath,
      CONTAINERS_REGISTRIES_CONF: registriesConfPath,
      BUILDAH_ISOLATION: request.isolation,
      HOME: request.home,
      ...args.env,
    },
    files: [
      { path: containersConfPath, content: containersConf(), mode: 0o600 },
      { path: registriesConfPath, content: registriesConf(request), mode: 0o600 },
    ],
    storage,
    prepare: multi ? [[...global, 'manifest', 'rm', localImage], [...global, 'rmi', '-f', localImage]] : [],
    bud,
    pushes,
    exports,
    localImage,
    multiPlatform: multi,
    dockerfilePath,
    ...(facts.dockerfile ? { dockerfile: facts.dockerfile } : {}),
    ...(request.target ? { target: request.target } : {}),
    format,
    cleanup: { containersFile: `${storage.root}/${storage.driver}-containers/containers.json`, rm: [...global, 'rm'] },
    notes,
    warnings,
    secrets,
    ...(inHistory.length && !multi ? { historyMask: { args: inHistory.map((a) => ({ name: a.name, value: a.value })) } } : {}),
  };
}

/** The plan as the shell commands it stands for (redaction is applied by the caller's formatter). */
export function planCommands(plan: BuildPlan): string[][] {
  return [
    ...plan.prepare.map((p) => [plan.buildah, ...p]),
    [plan.buildah, ...plan.bud],
    ...plan.pushes.map((p) => [plan.buildah, ...p.argv]),
    ...plan.exports.map((e) => [plan.buildah, ...e.argv]),
  ];
}
