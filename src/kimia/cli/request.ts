/** The typed result of parsing argv + environment: everything a build needs to know, before any effect. */

export type StorageDriver = 'vfs' | 'overlay';
export type ImageFormat = 'oci' | 'docker';
export type Isolation = 'chroot' | 'oci' | 'rootless';
export type LogFormat = 'text' | 'json';
export type Verbosity = 'debug' | 'info' | 'warn' | 'error';

export interface GitOptions {
  branch?: string;
  revision?: string;
  tokenFile?: string;
  tokenUser: string;
  recurseSubmodules: boolean;
}

export interface BuildArg {
  name: string;
  value: string;
  /** value came from the environment (`--build-arg NAME`) */
  fromEnv: boolean;
  /** `--build-arg NAME` whose NAME is not in the environment: not passed, so the ARG default applies */
  unset?: boolean;
  secret: boolean;
}

/** `--secret id=ID,src=FILE|env=VAR`: mounted at /run/secrets/ID by `RUN --mount=type=secret,id=ID`. */
export interface BuildSecret {
  id: string;
  source: { kind: 'file'; path: string } | { kind: 'env'; name: string };
}

export interface BuildRequest {
  context: string;
  contextSubPath?: string;
  dockerfile: string;
  destinations: string[];
  target?: string;
  buildArgs: BuildArg[];
  buildSecrets: BuildSecret[];
  labels: { key: string; value: string }[];
  cache: boolean;
  /** never answer a build from its build key (--no-build-key) */
  noBuildKey: boolean;
  cacheDir?: string;
  cacheRepo?: string;
  storageDriver: StorageDriver;
  /** target platforms (OS/ARCH[/VARIANT]); more than one builds a manifest list */
  platforms: string[];
  noPush: boolean;
  tarPath?: string;
  ociLayoutPath?: string;
  digestFile?: string;
  imageNameWithDigestFile?: string;
  imageNameTagWithDigestFile?: string;
  insecure: boolean;
  insecurePull: boolean;
  insecureRegistries: string[];
  skipTlsVerify: boolean;
  skipTlsVerifyPull: boolean;
  registryCertificates: { host?: string; path: string }[];
  registryClientCerts: { host: string; cert: string; key: string }[];
  registryMirrors: string[];
  pushRetry: number;
  imageDownloadRetry: number;
  git: GitOptions;
  reproducible: boolean;
  timestamp?: number;
  squash: boolean;
  compression?: string;
  compressionLevel?: number;
  format: ImageFormat;
  /** where the format came from: only an explicit OCI request keeps OCI for a Dockerfile with HEALTHCHECK/SHELL/ONBUILD */
  formatSource: 'flag' | 'env' | 'default';
  isolation: Isolation;
  verbosity: Verbosity;
  logFormat: LogFormat;
  logTimestamp: boolean;
  dryRun: boolean;
  skipPreflight: boolean;
  /** notes about accepted Kaniko flags that have no effect (printed at info level) */
  notes: string[];
  home: string;
  dockerConfigDir: string;
  /** where buildah keeps images when no --cache-dir is given */
  storageRoot?: string;
}

export type Command =
  | { kind: 'build'; request: BuildRequest }
  | { kind: 'check-environment'; request: BuildRequest }
  | { kind: 'version' }
  | { kind: 'help'; topic?: string }
  | { kind: 'lint'; argv: string[] };
