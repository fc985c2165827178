/**
 * `kimia lint` rules: pure functions over the parsed manifests (and the Dockerfile text when the caller could read
 * it). Every rule comes from a heading of spec/kimia-troubleshooting.md; docs/troubleshooting-map.md lists them.
 */
import { extractPodSpecs, isRecord, type ContainerInfo, type Finding, type PodSpecInfo } from '../../core/k8s/index.js';
import type { LoadedManifest } from '../../core/k8s/cli.js';
import { dockerOnlyInstructions, parseDockerfile, type ParsedDockerfile } from '../dockerfile/parse.js';
import { syntaxProblems } from '../dockerfile/check.js';

export const KIMIA_UID = 1000;
export const KIMIA_DOCKER_CONFIG = '/home/kimia/.docker';
export const KANIKO_DOCKER_CONFIG = '/kaniko/.docker';
/** Below this ephemeral-storage limit a build of an ordinary image may hit "no space left on device". */
export const MIN_EPHEMERAL_STORAGE = '5Gi';

export const RULES = {
  'kimia/missing-fsgroup': 'pod securityContext has no fsGroup (Common Mistakes: Missing fsGroup)',
  'kimia/missing-capabilities': 'SETUID/SETGID not added (Common Mistakes: Missing Capabilities)',
  'kimia/allow-privilege-escalation': 'allowPrivilegeEscalation is not true (Permission Denied: "Required!")',
  'kimia/run-as-user': 'not running as UID 1000 / runAsNonRoot (Permission Denied)',
  'kimia/kaniko-docker-path': 'docker config mounted at /kaniko/.docker (Common Mistakes: Wrong Volume Mount Path)',
  'kimia/registry-auth-mount': 'pushes but no registry secret at /home/kimia/.docker (Unauthorized)',
  'kimia/ephemeral-storage': `ephemeral-storage limit missing or below ${MIN_EPHEMERAL_STORAGE} (No Space Left on Device)`,
  'kimia/git-token': 'Git context without --git-token-file (Git Clone Failed)',
  'kimia/dockerfile-format': 'HEALTHCHECK/SHELL/ONBUILD with BUILDAH_FORMAT=oci forced (HEALTHCHECK Instruction Ignored)',
  'kimia/dockerfile-syntax': 'the Dockerfile does not parse (unknown instruction, flag, or an instruction outside a stage)',
  'kimia/cache-permissions': '--cache-dir on a volume that UID 1000 cannot write (Cache Directory Permission Denied)',
} as const;
export type RuleId = keyof typeof RULES;
type Out = Finding & { rule: RuleId };

/** One flag occurrence in command+args, with the line it sits on. */
export interface KimiaArg {
  readonly flag: string;
  readonly value: string | undefined;
  readonly line: number;
}

export interface KimiaTarget {
  readonly file: string;
  readonly pod: PodSpecInfo;
  readonly container: ContainerInfo;
  readonly args: KimiaArg[];
}

export interface DockerfileFact {
  /** path as shown to the user */
  readonly path: string;
  readonly text: string;
}

const ALIASES: Record<string, string> = { '-c': '--context', '-f': '--dockerfile', '-d': '--destination', '-t': '--target' };
const VALUE_FLAGS = new Set(['--context', '--dockerfile', '--destination', '--cache-dir', '--git-token-file', '--git-token-user', '--context-sub-path', '--target', '--tar-path', '--storage-driver', '--cache-repo', '--dockerfile-content', '--format']);

export function parseKimiaArgs(pod: PodSpecInfo, c: ContainerInfo): KimiaArg[] {
  const key = c.init ? 'initContainers' : 'containers';
  const argv = [...c.command.map((a, i) => ({ a, line: pod.lineOf([key, c.index, 'command', i]) })), ...c.args.map((a, i) => ({ a, line: pod.lineOf([key, c.index, 'args', i]) }))];
  const out: KimiaArg[] = [];
  for (let i = 0; i < argv.length; i++) {
    const { a, line } = argv[i]!;
    if (!a.startsWith('-')) continue;
    const eq = a.indexOf('=');
    const raw = eq > 0 ? a.slice(0, eq) : a;
    const flag = ALIASES[raw] ?? raw;
    if (eq > 0) out.push({ flag, value: a.slice(eq + 1), line });
    else if (VALUE_FLAGS.has(flag) && argv[i + 1] !== undefined && !argv[i + 1]!.a.startsWith('-')) out.push({ flag, value: argv[++i]!.a, line });
    else out.push({ flag, value: undefined, line });
  }
  return out;
}

/** Runs kimia: the image name says so, or the long build flags are there (short ones like `sh -c` prove nothing). */
export function isKimiaContainer(c: ContainerInfo): boolean {
  return /kimia/i.test(c.image) || [...c.command, ...c.args].some((a) => /^--(context|destination)(=|$)/.test(a));
}

export function kimiaTargets(files: readonly LoadedManifest[]): KimiaTarget[] {
  return files.flatMap(({ file, objects }) =>
    extractPodSpecs(objects).flatMap((pod) =>
      [...pod.initContainers, ...pod.containers].flatMap((container) => {
        return isKimiaContainer(container) ? [{ file, pod, container, args: parseKimiaArgs(pod, container) }] : [];
      }),
    ),
  );
}

/** Kubernetes quantity ("20Gi", "5G", "500M", "1e9") → bytes; undefined when unparsable. */
export function parseQuantity(q: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?\s*$/.exec(q);
  if (!m) return undefined;
  const mult: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, m: 1e-3 };
  return Number(m[1]) * mult[m[2] ?? '']!;
}

export function isGitContext(context: string): boolean {
  return /^git:\/\//.test(context) || /^git@/.test(context) || /^https?:\/\/[^#]+\.git(#.*)?$/.test(context);
}

/**
 * Lines of Docker-format-only instructions in a Dockerfile: HEALTHCHECK, SHELL and ONBUILD, which the OCI format
 * cannot carry. STOPSIGNAL is kept (the OCI config has StopSignal), so it is not flagged. Read from the same parse
 * the build uses.
 */
export function dockerOnlyLines(df: ParsedDockerfile): { instruction: string; line: number }[] {
  return dockerOnlyInstructions(df).map((i) => ({ instruction: i.keyword, line: i.line }));
}

function sc(pod: PodSpecInfo): Record<string, unknown> {
  return pod.securityContext?.value ?? {};
}

export function lintKimiaTarget(t: KimiaTarget, dockerfile?: DockerfileFact): Finding[] {
  const { file, pod, container: c, args } = t;
  const out: Out[] = [];
  const who = `container ${c.name}`;
  const key = c.init ? 'initContainers' : 'containers';
  const cLine = (...rel: (string | number)[]): number => pod.lineOf([key, c.index, ...rel]);
  const csc = c.securityContext?.value ?? {};
  const scLine = c.securityContext?.line ?? c.line;
  const podScLine = pod.securityContext?.line ?? pod.line;
  const flag = (name: string): KimiaArg | undefined => args.find((a) => a.flag === name);
  const fsGroup = sc(pod).fsGroup;

  if (fsGroup === undefined) {
    out.push({
      file, line: podScLine, level: 'error', rule: 'kimia/missing-fsgroup',
      message: `${pod.kind} ${pod.name}: the pod securityContext has no fsGroup, so volumes (cache, workspace) are not writable by UID 1000 and cache permissions will fail`,
      fix: 'spec:\n  securityContext:\n    runAsUser: 1000\n    fsGroup: 1000  # Required for volume permissions!',
    });
  }

  const caps = isRecord(csc.capabilities) ? csc.capabilities : {};
  const add = Array.isArray(caps.add) ? caps.add.map((x) => String(x).toUpperCase().replace(/^CAP_/, '')) : [];
  const missing = ['SETUID', 'SETGID'].filter((cap) => !add.includes(cap));
  if (missing.length > 0) {
    out.push({
      file, line: isRecord(csc.capabilities) ? cLine('securityContext', 'capabilities') : scLine, level: 'error', rule: 'kimia/missing-capabilities',
      message: `${who}: capabilities.add lacks ${missing.join(' and ')}; user namespaces won't work ("failed to create user namespace" / "permission denied")`,
      fix: 'securityContext:\n  capabilities:\n    drop: [ALL]\n    add: [SETUID, SETGID]  # Required!',
    });
  }
  if (csc.allowPrivilegeEscalation !== true) {
    out.push({
      file, line: csc.allowPrivilegeEscalation !== undefined ? cLine('securityContext', 'allowPrivilegeEscalation') : scLine, level: 'error', rule: 'kimia/allow-privilege-escalation',
      message: `${who}: allowPrivilegeEscalation is ${csc.allowPrivilegeEscalation === undefined ? 'not set' : String(csc.allowPrivilegeEscalation)}; kimia needs it true (newuidmap/newgidmap are setuid helpers)`,
      fix: 'securityContext:\n  allowPrivilegeEscalation: true  # Required!',
    });
  }

  const runAsUser = csc.runAsUser ?? sc(pod).runAsUser;
  const runAsNonRoot = csc.runAsNonRoot ?? sc(pod).runAsNonRoot;
  if (runAsUser !== KIMIA_UID || runAsNonRoot !== true) {
    const wrongUser = runAsUser !== undefined && runAsUser !== KIMIA_UID;
    const line = csc.runAsUser !== undefined ? cLine('securityContext', 'runAsUser') : sc(pod).runAsUser !== undefined ? pod.lineOf(['securityContext', 'runAsUser']) : podScLine;
    out.push({
      file, line, level: wrongUser ? 'error' : 'warn', rule: 'kimia/run-as-user',
      message: wrongUser
        ? `${who}: runAsUser is ${String(runAsUser)}; kimia runs as UID 1000 (user kimia, HOME /home/kimia) and maps UID 0 in its user namespace to it`
        : `${who}: ${runAsUser === undefined ? 'runAsUser is not set' : 'runAsNonRoot is not true'}; the security context should pin UID 1000 and runAsNonRoot`,
      fix: 'spec:\n  securityContext:\n    runAsNonRoot: true\n    runAsUser: 1000\n    runAsGroup: 1000\n    fsGroup: 1000',
    });
  }

  const kaniko = c.volumeMounts.filter((m) => m.mountPath.replace(/\/+$/, '') === KANIKO_DOCKER_CONFIG);
  for (const m of kaniko) {
    out.push({
      file, line: m.line, level: 'error', rule: 'kimia/kaniko-docker-path',
      message: `${who}: volume ${m.name} is mounted at ${KANIKO_DOCKER_CONFIG} (Kaniko path, not Kimia!); kimia reads ${KIMIA_DOCKER_CONFIG}, so the push fails with "unauthorized: authentication required"`,
      fix: `volumeMounts:\n- name: ${m.name}\n  mountPath: ${KIMIA_DOCKER_CONFIG}  # Kimia path`,
    });
  }

  const pushes = args.some((a) => a.flag === '--destination') && !args.some((a) => a.flag === '--no-push' && a.value !== 'false');
  const envOf = (name: string) => c.env.find((e) => e.name === name);
  const dockerConfig = envOf('DOCKER_CONFIG')?.value?.replace(/\/+$/, '') || KIMIA_DOCKER_CONFIG;
  const hasEnvCreds = envOf('DOCKER_USERNAME') !== undefined && envOf('DOCKER_PASSWORD') !== undefined;
  if (pushes && kaniko.length === 0 && !hasEnvCreds && !c.volumeMounts.some((m) => m.mountPath.replace(/\/+$/, '') === dockerConfig)) {
    const secretVol = pod.volumes.find((v) => isRecord(v.value.secret) || isRecord(v.value.projected));
    out.push({
      file, line: flag('--destination')!.line, level: 'warn', rule: 'kimia/registry-auth-mount',
      message: `${who}: pushes to ${flag('--destination')!.value ?? '?'} but no registry secret is mounted at ${dockerConfig} (and no DOCKER_USERNAME/DOCKER_PASSWORD); a private registry answers "unauthorized: authentication required"`,
      fix: `volumeMounts:\n- name: ${secretVol?.name ?? 'docker-config'}\n  mountPath: ${KIMIA_DOCKER_CONFIG}  # Must be this path\nvolumes:\n- name: docker-config\n  secret:\n    secretName: registry-credentials\n    items: [{key: .dockerconfigjson, path: config.json}]`,
    });
  }

  const eph = c.limits['ephemeral-storage'];
  const ephBytes = eph === undefined ? undefined : parseQuantity(eph);
  if (ephBytes === undefined || ephBytes < parseQuantity(MIN_EPHEMERAL_STORAGE)!) {
    out.push({
      file, line: eph !== undefined ? cLine('resources', 'limits', 'ephemeral-storage') : isRecord(c.value.resources) ? cLine('resources') : c.line, level: 'warn', rule: 'kimia/ephemeral-storage',
      message: `${who}: ${eph === undefined ? 'no ephemeral-storage limit' : `ephemeral-storage limit ${eph} is below ${MIN_EPHEMERAL_STORAGE}`}; image layers and the build store live there ("error building: no space left on device")`,
      fix: 'resources:\n  limits:\n    ephemeral-storage: "20Gi"  # Increase as needed',
    });
  }

  const context = flag('--context');
  if (context?.value && isGitContext(context.value) && !flag('--git-token-file')) {
    out.push({
      file, line: context.line, level: 'warn', rule: 'kimia/git-token',
      message: `${who}: Git context ${context.value} without --git-token-file; a private repository fails with "fatal: could not read Username"`,
      fix: 'args:\n  - --git-token-file=/secrets/git-token\n  - --git-token-user=oauth2\nvolumeMounts:\n- name: git-token\n  mountPath: /secrets\n  readOnly: true\nvolumes:\n- name: git-token\n  secret:\n    secretName: github-token',
    });
  }

  if (dockerfile) {
    const df = parseDockerfile(dockerfile.text, dockerfile.path);
    const where = flag('--dockerfile')?.line ?? context?.line ?? c.line;
    for (const p of syntaxProblems(df)) {
      out.push({
        file, line: where, level: 'error', rule: 'kimia/dockerfile-syntax',
        message: `${who}: ${dockerfile.path}:${p.line}: ${p.message} (\`${p.instruction}\`)`,
        fix: p.hint,
      });
    }
    const found = dockerOnlyLines(df);
    // kimia builds a Dockerfile with these in Docker format unless OCI is forced: only then is anything lost
    const format = envOf('BUILDAH_FORMAT');
    const formatFlag = flag('--format');
    const forced = formatFlag?.value ? { line: formatFlag.line, how: `--format=${formatFlag.value}` } : format?.value ? { line: format.line, how: `BUILDAH_FORMAT=${format.value}` } : undefined;
    if (found.length > 0 && forced && /^oci$/i.test(forced.how.split('=')[1]!)) {
      const list = found.map((f) => `${f.instruction} (${dockerfile.path}:${f.line})`).join(', ');
      out.push({
        file, line: forced.line, level: 'warn', rule: 'kimia/dockerfile-format',
        message: `${who}: the Dockerfile uses ${list} but ${forced.how} forces the OCI format, which has no field for them ("Warning: HEALTHCHECK instruction ignored")`,
        fix: 'remove BUILDAH_FORMAT=oci (kimia then builds this Dockerfile in Docker format), or set:\nenv:\n- name: BUILDAH_FORMAT\n  value: "docker"',
      });
    }
  }

  const cacheDir = flag('--cache-dir')?.value;
  if (cacheDir && fsGroup === undefined) {
    const mount = c.volumeMounts
      .filter((m) => cacheDir === m.mountPath || cacheDir.startsWith(m.mountPath.replace(/\/+$/, '') + '/'))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    const fixedByInit = mount !== undefined && pod.initContainers.some((ic) => ic.volumeMounts.some((m) => m.name === mount.name) && /chown/.test([...ic.command, ...ic.args].join(' ')));
    if (mount && !fixedByInit) {
      out.push({
        file, line: mount.line, level: 'error', rule: 'kimia/cache-permissions',
        message: `${who}: --cache-dir=${cacheDir} is on volume ${mount.name} but the pod has no fsGroup and no init container chowns it; UID 1000 cannot write ("failed to write to cache directory: permission denied")`,
        fix: 'spec:\n  securityContext:\n    fsGroup: 1000  # Automatically sets ownership\n(or an init container running `chown -R 1000:1000 ' + mount.mountPath + '` as UID 0)',
      });
    }
  }
  return out;
}

/** Where the Dockerfile of a target would be, relative to the lint's cwd, if it is local at all. */
export function dockerfileLocation(t: KimiaTarget): { context: string; dockerfile: string } | undefined {
  const context = t.args.find((a) => a.flag === '--context')?.value;
  if (!context || /^[a-z][a-z0-9+.-]*:\/\//i.test(context) || context.startsWith('git@') || /\.(tar\.gz|tgz)$/.test(context)) return undefined;
  const local = context.replace(/^dir:\/\//, '');
  const sub = t.args.find((a) => a.flag === '--context-sub-path')?.value;
  return { context: sub ? `${local.replace(/\/+$/, '')}/${sub}` : local, dockerfile: t.args.find((a) => a.flag === '--dockerfile')?.value ?? 'Dockerfile' };
}

export function lintKimia(targets: readonly KimiaTarget[], dockerfiles: ReadonlyMap<KimiaTarget, DockerfileFact> = new Map()): Finding[] {
  return targets.flatMap((t) => lintKimiaTarget(t, dockerfiles.get(t)));
}

