/**
 * The flag table: every kimia flag, the Kaniko executor flags that map onto one, and the Kaniko flags that have
 * no Buildah equivalent (accepted as no-ops with a note, or refused with what to use instead). Pure data.
 */

export type FlagType = 'string' | 'bool' | 'list' | 'int';

export interface FlagSpec {
  name: string;
  type: FlagType;
  short?: string;
  aliases?: string[];
  help: string;
  /** shown in help as the value name */
  value?: string;
}

export const FLAGS: FlagSpec[] = [
  { name: 'context', short: 'c', type: 'string', value: 'DIR|URL', help: 'build context: folder, Git URL (#ref:subdir), tar.gz file or http(s) URL; $VAR expanded' },
  { name: 'context-sub-path', type: 'string', value: 'PATH', help: 'sub-folder of the context to build from' },
  { name: 'dockerfile', short: 'f', type: 'string', value: 'PATH', help: 'Dockerfile path relative to the context (default Dockerfile)' },
  { name: 'destination', short: 'd', type: 'list', value: 'IMAGE', help: 'image reference to push (repeatable)' },
  { name: 'target', short: 't', type: 'string', value: 'STAGE', help: 'multi-stage target' },
  { name: 'build-arg', type: 'list', value: 'K=V|K', help: 'build argument (repeatable); K alone takes the value from the environment (keeps the value out of kimia\'s own command line)' },
  { name: 'secret-arg', type: 'list', value: 'NAME', help: 'treat build arg NAME as a secret whatever its name: masked in every output and in the pushed image history (repeatable)' },
  { name: 'secret', type: 'list', value: 'id=ID,src=FILE|env=VAR', help: 'build secret for RUN --mount=type=secret,id=ID: never in argv, output, image or history (repeatable)' },
  { name: 'label', type: 'list', value: 'K=V', help: 'image label (repeatable)' },
  { name: 'cache', type: 'bool', help: 'cache layers (--cache=false to disable); an unchanged build is then answered from its build key' },
  { name: 'no-cache', type: 'bool', help: 'build every step, as --cache=false' },
  { name: 'no-build-key', type: 'bool', help: 'with --cache, still run buildah when the build key says the build is unchanged' },
  { name: 'cache-dir', type: 'string', value: 'DIR', help: 'persistent layer cache folder (holds the image storage)' },
  { name: 'cache-repo', type: 'string', value: 'REPO', help: 'remote cache repository (layers pushed and pulled)' },
  { name: 'storage-driver', type: 'string', value: 'vfs|overlay', help: 'image storage driver (default vfs, or STORAGE_DRIVER); overlay is faster' },
  { name: 'custom-platform', aliases: ['platform', 'customPlatform'], type: 'list', value: 'OS/ARCH[,OS/ARCH]', help: 'target platform; several (comma list or repeated) build a multi-platform manifest list' },
  { name: 'no-push', type: 'bool', help: 'build only; the image stays in local storage' },
  { name: 'tar-path', type: 'string', value: 'FILE', help: 'also save the image as a docker-archive tarball' },
  { name: 'oci-layout-path', type: 'string', value: 'DIR', help: 'also save the image as an OCI layout folder' },
  { name: 'digest-file', type: 'string', value: 'FILE', help: 'write the pushed manifest digest' },
  { name: 'image-name-with-digest-file', type: 'string', value: 'FILE', help: 'write REPO@sha256:… per destination' },
  { name: 'image-name-tag-with-digest-file', type: 'string', value: 'FILE', help: 'write REPO:TAG@sha256:… per destination' },
  { name: 'insecure', type: 'bool', help: 'push over plain HTTP / without TLS verification' },
  { name: 'insecure-pull', type: 'bool', help: 'pull base images over plain HTTP / without TLS verification' },
  { name: 'insecure-registry', type: 'list', value: 'HOST', help: 'registry to use without TLS verification (repeatable)' },
  { name: 'skip-tls-verify', type: 'bool', help: 'do not verify registry certificates when pushing' },
  { name: 'skip-tls-verify-pull', type: 'bool', help: 'do not verify registry certificates when pulling' },
  { name: 'skip-tls-verify-registry', type: 'list', value: 'HOST', help: 'same as --insecure-registry (Kaniko name)' },
  { name: 'registry-certificate', type: 'list', value: 'DIR|HOST=FILE', help: 'CA certificate(s) for registries (folder with *.crt, or HOST=FILE)' },
  { name: 'registry-client-cert', type: 'list', value: 'HOST=CERT,KEY', help: 'client certificate and key for a registry (mutual TLS)' },
  { name: 'registry-mirror', type: 'list', value: 'HOST', help: 'mirror for docker.io (repeatable)' },
  { name: 'push-retry', type: 'int', value: 'N', help: 'retry a failed push N times with backoff (never on 401)' },
  { name: 'image-download-retry', type: 'int', value: 'N', help: 'retry base image pulls N times' },
  { name: 'git-branch', type: 'string', value: 'BRANCH', help: 'Git branch or tag to build' },
  { name: 'git-revision', type: 'string', value: 'SHA', help: 'Git commit to build' },
  { name: 'git-token-file', type: 'string', value: 'FILE', help: 'file holding a Git token (never put it in the URL)' },
  { name: 'git-token-user', type: 'string', value: 'USER', help: 'user name sent with the Git token (default oauth2)' },
  { name: 'git', type: 'string', value: 'branch=B,single-branch=BOOL,recurse-submodules=BOOL', help: 'Kaniko-style Git options' },
  { name: 'reproducible', type: 'bool', help: 'timestamps set to 0 (or SOURCE_DATE_EPOCH): same inputs give the same digest' },
  { name: 'timestamp', type: 'int', value: 'EPOCH', help: 'set image timestamps to EPOCH seconds' },
  { name: 'single-snapshot', aliases: ['squash'], type: 'bool', help: 'squash the new layers into one' },
  { name: 'compression', type: 'string', value: 'gzip|zstd', help: 'layer compression for the push' },
  { name: 'compression-level', type: 'int', value: 'N', help: 'layer compression level' },
  { name: 'verbosity', short: 'v', type: 'string', value: 'LEVEL', help: 'debug|info|warn|error' },
  { name: 'log-format', type: 'string', value: 'text|json', help: 'log format (json: one object per line)' },
  { name: 'log-timestamp', type: 'bool', help: 'prefix log lines with a timestamp' },
  { name: 'isolation', type: 'string', value: 'chroot|oci|rootless', help: 'RUN isolation (default chroot, or BUILDAH_ISOLATION)' },
  { name: 'format', type: 'string', value: 'oci|docker', help: 'image format (default BUILDAH_FORMAT or oci)' },
  { name: 'storage-root', type: 'string', value: 'DIR', help: 'image storage folder (default $HOME/.local/share/containers/storage)' },
  { name: 'dry-run', type: 'bool', help: 'print the redacted buildah commands and exit' },
  { name: 'skip-preflight', type: 'bool', help: 'do not run the environment checks (not recommended)' },
  { name: 'help', short: 'h', type: 'bool', help: 'show this help' },
];

/** Kaniko flags accepted because they are meaningless with Buildah: the note says why (printed at info level). */
export const KANIKO_NOOPS: Record<string, { type: FlagType; note: string }> = {
  'snapshot-mode': { type: 'string', note: 'Buildah commits layers by diffing the container; there is no snapshot mode to choose' },
  snapshotMode: { type: 'string', note: 'Buildah commits layers by diffing the container; there is no snapshot mode to choose (and --snapshotMode is Kaniko\'s old spelling)' },
  'force-build-metadata': { type: 'bool', note: 'Buildah records every instruction in the image history and config already' },
  'use-new-run': { type: 'bool', note: 'Buildah always runs RUN steps in a container' },
  cleanup: { type: 'bool', note: 'kimia always removes its temporary files and working containers' },
  'compressed-caching': { type: 'bool', note: 'Buildah keeps layers uncompressed in its storage' },
  'cache-copy-layers': { type: 'bool', note: 'with --cache every step (COPY included) is cached' },
  'cache-run-layers': { type: 'bool', note: 'with --cache every step (RUN included) is cached' },
  'skip-unused-stages': { type: 'bool', note: 'Buildah skips unused stages by default' },
  'ignore-var-run': { type: 'bool', note: 'Buildah never snapshots the build host\'s /var/run' },
  'whitelist-var-run': { type: 'bool', note: 'Buildah never snapshots the build host\'s /var/run' },
  'skip-push-permission-check': { type: 'bool', note: 'kimia checks credentials when it pushes' },
  force: { type: 'bool', note: 'kimia does not need to detect a container' },
  'no-push-cache': { type: 'bool', note: 'cache layers are pushed only with --cache-repo' },
  materialize: { type: 'bool', note: 'Buildah always materialises the root filesystem of each stage' },
  'preserve-context': { type: 'bool', note: 'kimia never modifies the build context' },
};

/** Kaniko flags refused, each with what to use instead. */
export const KANIKO_REFUSED: Record<string, { reason: string; hint: string }> = {
  'ignore-path': { reason: 'Buildah builds in a separate root, so there is nothing of the builder to ignore', hint: 'list build-context files to exclude in .dockerignore' },
  'cache-ttl': { reason: 'kimia\'s layer cache entries do not expire', hint: 'clear the --cache-dir folder (or use a fresh emptyDir) to drop old layers' },
  'kaniko-dir': { reason: 'kimia keeps its state in HOME and --cache-dir', hint: 'use --cache-dir=DIR and set HOME' },
  'registry-map': { reason: 'registry remapping is not supported', hint: 'use --registry-mirror=HOST for docker.io, or write the image names you want' },
  'image-fs-extract-retry': { reason: 'Buildah does not extract the base image filesystem the way Kaniko does', hint: 'use --image-download-retry=N' },
  'push-ignore-immutable-tag-errors': { reason: 'kimia reports every push error', hint: 'push to a new tag' },
  'digest-file-with-tag': { reason: 'not a Kaniko flag', hint: 'use --image-name-tag-with-digest-file=FILE' },
  'skip-default-registry-fallback': { reason: 'with --registry-mirror, Buildah always falls back to docker.io when every mirror fails', hint: 'make the mirror reliable, or write base images with the mirror host in FROM' },
  'tarPath': { reason: 'old Kaniko spelling', hint: 'use --tar-path=FILE' },
  bucket: { reason: 'Google Cloud Storage bucket contexts are not supported', hint: 'download the tarball first and pass --context=tar:///path/context.tar.gz, or serve it over https and pass --context=https://…/context.tar.gz' },
  'oci-layout': { reason: 'misspelt', hint: 'use --oci-layout-path=DIR' },
};

export function findFlag(name: string): FlagSpec | undefined {
  return FLAGS.find((f) => f.name === name || f.aliases?.includes(name));
}

/** Kaniko's short forms of refused flags (`-b BUCKET`), so that they get the same explanation as the long form. */
export const KANIKO_REFUSED_SHORT: Record<string, string> = { b: 'bucket' };

export function findShort(letter: string): FlagSpec | undefined {
  return FLAGS.find((f) => f.short === letter);
}

/** Closest known flag name by edit distance (for "did you mean"). */
export function suggestFlag(name: string): string | undefined {
  const names = [...FLAGS.flatMap((f) => [f.name, ...(f.aliases ?? [])]), ...Object.keys(KANIKO_NOOPS)];
  let best: { n: string; d: number } | undefined;
  for (const n of names) {
    const d = editDistance(name, n);
    if (!best || d < best.d) best = { n, d };
  }
  if (!best) return undefined;
  const limit = Math.max(2, Math.floor(name.length / 3));
  if (best.d <= limit) return best.n;
  const prefix = names.find((n) => n.startsWith(name) || name.startsWith(n));
  return prefix;
}

export function editDistance(a: string, b: string): number {
  const dp: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = dp[j]!;
      dp[j] = a[i - 1] === b[j - 1] ? prev : 1 + Math.min(prev, dp[j]!, dp[j - 1]!);
      prev = cur;
    }
  }
  return dp[b.length]!;
}
