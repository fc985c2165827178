/**
 * kimia's error table. Messages that the troubleshooting guide prints are kept verbatim (they are a contract);
 * each entry says why it happens and the exact fix (YAML or command). Exit codes: 2 usage/config, 3 build,
 * 4 push, 5 auth, 6 environment (preflight), 7 base image not found.
 */
import { defineErrors } from '../core/errors.js';

export const EXIT = { ok: 0, usage: 2, build: 3, push: 4, auth: 5, environment: 6, baseImageNotFound: 7 } as const;

const SECURITY_CONTEXT_FIX = `add to the container spec:
securityContext:
  runAsUser: 1000
  allowPrivilegeEscalation: true
  capabilities:
    drop: [ALL]
    add: [SETUID, SETGID]`;

const REGISTRY_DNS_FIX = `check DNS from the pod: kubectl exec <kimia-pod> -- nslookup {host}
check the namespace's NetworkPolicy: kubectl get networkpolicy -n <namespace>
verify that egress rules allow DNS (port 53) and the registry`;

export const kimiaErrors = defineErrors({
  UNKNOWN_FLAG: {
    exit: EXIT.usage,
    message: 'unknown flag {flag}',
    cause: 'kimia does not know this flag, and it never ignores one silently.',
    fix: '{hint}',
  },
  KANIKO_FLAG_UNSUPPORTED: {
    exit: EXIT.usage,
    message: 'Kaniko flag {flag} is not supported by kimia',
    cause: '{reason}',
    fix: '{hint}',
  },
  BAD_FLAG_VALUE: {
    exit: EXIT.usage,
    message: 'invalid value for {flag}: {reason}',
    cause: 'the value does not have the expected form.',
    fix: '{hint}',
  },
  MISSING_VALUE: {
    exit: EXIT.usage,
    message: 'flag {flag} needs a value',
    cause: 'the flag was given last or followed by another flag.',
    fix: 'write {flag}=VALUE or {flag} VALUE',
  },
  NO_DESTINATION: {
    exit: EXIT.usage,
    message: 'no destination given',
    cause: 'a build pushes to at least one --destination unless --no-push or --tar-path is set.',
    fix: 'add --destination=REGISTRY/REPO:TAG (repeatable), or --no-push',
  },
  BAD_CONTEXT: {
    exit: EXIT.usage,
    message: 'build context {context}: {reason}',
    cause: 'the context must be a local folder, a Git URL, or a tar.gz file or URL.',
    fix: '{hint}',
  },
  DOCKERFILE_NOT_FOUND: {
    exit: EXIT.usage,
    message: 'Dockerfile not found: {path}',
    cause: '--dockerfile is relative to the context (after --context-sub-path).',
    fix: 'check --context, --context-sub-path and --dockerfile; for example --dockerfile=Dockerfile',
  },
  USERNS_DISABLED: {
    exit: EXIT.environment,
    message: 'failed to create user namespace: operation not permitted',
    cause: 'User namespaces are not enabled on the cluster nodes ({detail}).',
    fix: `on the node: sudo sysctl -w user.max_user_namespaces=15000
permanently: echo "user.max_user_namespaces=15000" | sudo tee -a /etc/sysctl.conf && sudo sysctl -p`,
  },
  USERNS_DENIED: {
    exit: EXIT.environment,
    message: 'failed to create user namespace: operation not permitted',
    cause: 'the kernel allows user namespaces but this pod may not create one ({detail}).',
    fix: `${SECURITY_CONTEXT_FIX}
  seccompProfile:
    type: Unconfined  # a runtime's default seccomp profile refuses unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN`,
  },
  CAPS_MISSING: {
    exit: EXIT.environment,
    message: 'permission denied while trying to connect',
    cause: 'Incorrect security context configuration: {detail}.',
    fix: SECURITY_CONTEXT_FIX,
  },
  NO_NEW_PRIVS: {
    exit: EXIT.environment,
    message: 'permission denied while trying to connect',
    cause: 'NoNewPrivs is set (allowPrivilegeEscalation: false), so newuidmap/newgidmap cannot map the subordinate IDs.',
    fix: SECURITY_CONTEXT_FIX,
  },
  IDMAP_TOOLS_MISSING: {
    exit: EXIT.environment,
    message: 'newuidmap/newgidmap not usable: {detail}',
    cause: 'rootless builds map subordinate IDs with the setuid helpers from the uidmap package.',
    fix: 'install them in the image: apt-get install -y uidmap (they must be setuid root or carry cap_setuid/cap_setgid)',
  },
  SUBID_MISSING: {
    exit: EXIT.environment,
    message: 'no subordinate ID range for {user} in {file}',
    cause: 'a rootless build maps container UIDs to a subordinate range of the build user.',
    fix: 'add a range, e.g. echo "{user}:100000:65536" >> /etc/subuid && echo "{user}:100000:65536" >> /etc/subgid (or: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user})',
  },
  STORAGE_DRIVER_UNUSABLE: {
    exit: EXIT.environment,
    message: 'storage driver {driver} is not usable here: {detail}',
    cause: 'the kernel refused an overlay mount inside a user namespace.',
    fix: 'use --storage-driver=vfs (or STORAGE_DRIVER=vfs), which works everywhere but is slower',
  },
  CACHE_NOT_WRITABLE: {
    exit: EXIT.environment,
    message: 'failed to write to cache directory: permission denied',
    cause: 'Cache directory {dir} is not writable by UID {uid}{where}.',
    fix: `spec:
  securityContext:
    fsGroup: 1000  # sets the volume's ownership
or an init container: chown -R 1000:1000 {dir} && chmod -R 755 {dir}`,
  },
  CACHE_SAVE_NOT_PERMITTED: {
    exit: EXIT.environment,
    message: 'unable to save layer to cache: operation not permitted',
    cause: 'the volume under {dir} refused a change by UID {uid} ({detail}): files there belong to another user, or the volume does not allow changing ownership (NFS with root_squash, some hostPath and CSI volumes).',
    fix: `spec:
  securityContext:
    fsGroup: 1000  # sets the volume's ownership
or an init container: chown -R 1000:1000 {dir}; or put --cache-dir on an emptyDir or a volume that allows chown`,
  },
  NO_SPACE: {
    exit: EXIT.environment,
    message: 'error building: no space left on device',
    cause: 'Insufficient ephemeral storage: only {free} free for the image storage at {dir} ({driver} driver); a build needs at least {need}{driverNote}.',
    fix: `resources:
  limits:
    ephemeral-storage: "20Gi"  # Increase as needed
or keep the image storage on a bigger volume: --cache-dir=/cache (KIMIA_MIN_FREE_SPACE sets the minimum)`,
  },
  NO_SPACE_DURING_BUILD: {
    exit: EXIT.environment,
    message: 'error building: no space left on device',
    cause: 'Insufficient ephemeral storage: {where} ran out of space during the {phase}, {free} left{driverNote}. Buildah reported: {detail}',
    fix: `resources:
  limits:
    ephemeral-storage: "20Gi"  # Increase as needed
or keep the image storage on a bigger volume: --cache-dir=/cache`,
  },
  KANIKO_DOCKER_CONFIG: {
    exit: EXIT.environment,
    message: 'docker config found at /kaniko/.docker (the Kaniko path), but kimia reads {expected}',
    cause: 'the registry secret is mounted where Kaniko looks, not where kimia looks.',
    fix: `volumeMounts:
- name: docker-config
  mountPath: /home/kimia/.docker  # Kimia path (or set DOCKER_CONFIG)`,
  },
  DOCKER_CONFIG_INVALID: {
    exit: EXIT.usage,
    message: 'cannot read docker config {path}: {reason}',
    cause: 'config.json must be the JSON of a docker-registry secret (.dockerconfigjson).',
    fix: 'kubectl create secret docker-registry registry-credentials --docker-server=REGISTRY --docker-username=USER --docker-password=PASSWORD',
  },
  GIT_AUTH: {
    exit: EXIT.auth,
    message: 'fatal: could not read Username',
    cause: 'Git authentication not configured for {url}.',
    fix: `args:
  - --git-token-file=/secrets/git-token
  - --git-token-user=oauth2
volumeMounts:
- name: git-token
  mountPath: /secrets
  readOnly: true`,
  },
  GIT_AUTH_OTHER_ORIGIN: {
    exit: EXIT.auth,
    message: 'fatal: could not read Username for {hosts}: the Git token is only sent to {origin}',
    cause: 'a submodule or a redirect of {url} leads to another host, which asks for credentials. kimia sends the --git-token-file token only to the context\'s origin (scheme, host and port), so that whoever can push to a repository cannot collect the token by naming their own server in .gitmodules.',
    fix: `put the submodule on the context's origin (a relative URL such as ../lib.git in .gitmodules), or make it readable without credentials,
or skip submodules: --git recurse-submodules=false`,
  },
  GIT_FAILED: {
    exit: EXIT.build,
    message: 'git {what} failed for {url}: {detail}',
    cause: 'the Git context could not be fetched.',
    fix: 'check the URL, --git-branch / --git-revision and network access to the Git server',
  },
  CONTEXT_FETCH_FAILED: {
    exit: EXIT.build,
    message: 'cannot fetch build context {url}: {detail}',
    cause: 'the tarball context could not be downloaded or unpacked.',
    fix: 'check the URL and that it serves a .tar.gz',
  },
  DOCKERFILE_SYNTAX: {
    exit: EXIT.usage,
    message: 'Dockerfile syntax error at {file}:{line}: {problem}',
    cause: 'line {line} reads `{instruction}`; kimia checks the Dockerfile before pulling anything.',
    fix: '{hint}',
  },
  DOCKERFILE_UNSUPPORTED: {
    exit: EXIT.usage,
    message: '{file}:{line}: {feature} is not supported by kimia\'s engines (it needs Buildah {needs} or later; kimia\'s image has Buildah {imageVersion}, this engine is Buildah {version})',
    cause: 'line {line} reads `{instruction}`; docker build (BuildKit) and Buildah {needs} or later build it.',
    fix: 'rewrite the instruction without {feature} (see docs/kimia.md, "Dockerfile support")',
  },
  ENGINE_TOO_OLD: {
    exit: EXIT.environment,
    message: '{file}:{line}: {feature} needs Buildah {needs} or later; this engine is Buildah {version}',
    cause: 'line {line} reads `{instruction}`; kimia here drives {buildah} (Buildah {version}), which predates the feature.',
    fix: 'build with kimia\'s image, which carries Buildah {imageVersion} from {imageDistribution}; or install Buildah {needs} or later',
  },
  GLOB_NAME: {
    exit: EXIT.build,
    message: '{step}: Buildah reads `{text}` as a pattern and finds no file',
    cause: 'the source name holds glob characters ([ ]); docker build copies a file of that literal name, Buildah only matches the pattern.',
    fix: 'escape each [ as [[] in the source (COPY arr[0].txt → COPY arr[[]0].txt), which docker build reads the same way',
  },
  OWNER_OUT_OF_RANGE: {
    exit: EXIT.environment,
    message: '{step}: owner {uid}:{gid} of {path} is outside the build user\'s subordinate ID range',
    cause: 'a rootless build maps container IDs 0-{max} onto the build user\'s subordinate range; an archive or --chown naming a larger ID cannot be stored.',
    fix: 'give the build user a larger range (e.g. kimia:100000:600000 in /etc/subuid and /etc/subgid), or set the owner with ADD --chown=0:0 / COPY --chown',
  },
  BUILD_STEP_FAILED: {
    exit: EXIT.build,
    message: '{step} exited {status}',
    cause: 'the command `{text}` returned status {status}{stage}.',
    fix: 'read the step\'s output above (indented under its step line); rerun with --verbosity=debug for the full buildah command',
  },
  BUILD_STEP_ERROR: {
    exit: EXIT.build,
    message: '{step} failed: {detail}',
    cause: 'Buildah could not carry out `{text}`{stage}.',
    fix: 'check the instruction and the files it names in the build context (and .dockerignore)',
  },
  BASE_IMAGE_NOT_FOUND: {
    exit: EXIT.baseImageNotFound,
    message: 'base image {image} not found in registry {registry}{where}',
    cause: 'the registry {registry} answered "{answer}": it has no {what}.',
    fix: 'check the FROM line and the build args that make it; list the tags the registry has: skopeo list-tags docker://{repository}',
  },
  BUILD_FAILED: {
    exit: EXIT.build,
    message: 'build failed: {detail}',
    cause: 'buildah exited with code {code}.',
    fix: 'read the step output above; rerun with --verbosity=debug for the full buildah command',
  },
  SECRET_IN_IMAGE: {
    exit: EXIT.build,
    message: 'the image would carry the value of secret build arg(s) {names}: {where}',
    cause: 'the Dockerfile copies a secret build arg into the image configuration (ENV, LABEL, CMD, …), which is pushed as is; kimia masks secret values only in the image history. Nothing was pushed.',
    fix: `pass the secret as a build secret, mounted only while a RUN step runs:
  kimia … --secret id=api_token,env=API_TOKEN      (or --secret id=api_token,src=/secrets/api_token)
  RUN --mount=type=secret,id=api_token API_TOKEN="$(cat /run/secrets/api_token)" make
or, if the value is not secret: drop --secret-arg for it, or rename a build arg whose name looks secret
(names with PASSWORD, TOKEN, SECRET, KEY, AUTH … are secret: docs/kimia.md, Secrets)`,
  },
  HISTORY_MASK_FAILED: {
    exit: EXIT.build,
    message: 'cannot mask secret build-arg values in the image history: {detail}',
    cause: 'Buildah records build-arg values in the history of each RUN step; kimia rewrites that history before pushing, and that step failed. Nothing was pushed.',
    fix: `pass the secret as a build secret instead of a build arg:
  kimia … --secret id=api_token,env=API_TOKEN
  RUN --mount=type=secret,id=api_token API_TOKEN="$(cat /run/secrets/api_token)" make`,
  },
  PULL_UNAUTHORIZED: {
    exit: EXIT.auth,
    message: 'unauthorized: authentication required',
    cause: 'the registry refused the credentials while pulling a base image ({detail}).',
    fix: `kubectl create secret docker-registry registry-credentials --docker-server=REGISTRY --docker-username=USER --docker-password=PASSWORD
volumeMounts:
- name: docker-config
  mountPath: /home/kimia/.docker  # Must be this path`,
  },
  PUSH_UNAUTHORIZED: {
    exit: EXIT.auth,
    message: 'unauthorized: authentication required',
    cause: 'the registry refused the credentials for {destination} ({detail}).',
    fix: `kubectl create secret docker-registry registry-credentials --docker-server=REGISTRY --docker-username=USER --docker-password=PASSWORD
volumeMounts:
- name: docker-config
  mountPath: /home/kimia/.docker  # Must be this path`,
  },
  PUSH_FAILED: {
    exit: EXIT.push,
    message: 'push of {destination} failed after {attempts} attempt(s): {detail}',
    cause: 'the registry could not be reached or answered with an error.',
    fix: 'check the registry address and TLS flags (--registry-certificate, --skip-tls-verify); raise --push-retry for flaky registries',
  },
  PULL_PLAIN_HTTP: {
    exit: EXIT.build,
    message: 'registry {host} answers in plain HTTP: {text}',
    cause: 'kimia (Buildah) speaks HTTPS to a registry unless told otherwise, and {host} answered in plain HTTP while the base image or the cache was pulled.',
    fix: `if {host} is meant to be plain HTTP (a registry inside the cluster): --insecure-registry={host} (this registry only)
or --insecure-pull (every pull); otherwise serve the registry over TLS`,
  },
  PUSH_PLAIN_HTTP: {
    exit: EXIT.push,
    message: 'registry {host} answers in plain HTTP: {text}',
    cause: 'kimia (Buildah) speaks HTTPS to a registry unless told otherwise, and {host} answered in plain HTTP when {destination} was pushed.',
    fix: `if {host} is meant to be plain HTTP (a registry inside the cluster): --insecure-registry={host} (this registry only)
or --insecure (every push); otherwise serve the registry over TLS`,
  },
  PULL_UNREACHABLE: {
    exit: EXIT.build,
    message: 'cannot reach registry {host}: {dns}',
    cause: 'the registry name {host} does not resolve from this pod, so the base image cannot be pulled.',
    fix: REGISTRY_DNS_FIX,
  },
  PUSH_UNREACHABLE: {
    exit: EXIT.push,
    message: 'cannot reach registry {host}: {dns}',
    cause: 'the registry name {host} does not resolve from this pod, so {destination} cannot be pushed.',
    fix: REGISTRY_DNS_FIX,
  },
  OUTPUT_FAILED: {
    exit: EXIT.push,
    message: 'cannot write {what} {path}: {detail}',
    cause: 'the output file or folder is not writable.',
    fix: 'point the flag at a writable path',
  },
  BUILDAH_MISSING: {
    exit: EXIT.environment,
    message: 'buildah not found in PATH',
    cause: 'kimia drives Buildah as its engine.',
    fix: 'apt-get install -y buildah uidmap',
  },
});

export const { fail } = kimiaErrors;
export type KimiaErrorCode = keyof typeof kimiaErrors.table;
