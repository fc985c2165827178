/**
 * What `create` writes about a container into its per-container debug log (/tmp/runcvm-<id>.debug), for the
 * troubleshooting guide's sections 1 and 8: which Kubernetes pod the id belongs to (so `grep -l` finds the log of a
 * pod among many), and the command-injection file the guest will load. Pure: the runtime logs what this returns.
 * Never the command's arguments (they may carry tokens): only their number and the program.
 */
import { GUEST_PATHS } from '../launch/schema.js';

/** Pod identity annotations: containerd's CRI plugin first, then CRI-O's. */
const POD_KEYS = {
  namespace: ['io.kubernetes.cri.sandbox-namespace', 'io.kubernetes.pod.namespace'],
  pod: ['io.kubernetes.cri.sandbox-name', 'io.kubernetes.pod.name'],
  container: ['io.kubernetes.cri.container-name', 'io.kubernetes.container.name'],
  podUid: ['io.kubernetes.cri.sandbox-uid', 'io.kubernetes.pod.uid'],
  sandbox: ['io.kubernetes.cri.sandbox-id', 'io.kubernetes.cri-o.SandboxID'],
} as const;

export type KubernetesMetadata = Partial<Record<keyof typeof POD_KEYS, string>>;

/** The pod this container belongs to, from the annotations the CRI runtime put in config.json; undefined outside Kubernetes. */
export function kubernetesMetadata(annotations: Readonly<Record<string, string>> | undefined): KubernetesMetadata | undefined {
  if (!annotations) return undefined;
  const out: KubernetesMetadata = {};
  for (const [field, keys] of Object.entries(POD_KEYS) as [keyof typeof POD_KEYS, readonly string[]][]) {
    const value = keys.map((k) => annotations[k]).find((v) => typeof v === 'string' && v !== '');
    if (value !== undefined) out[field] = value;
  }
  return Object.keys(out).length ? out : undefined;
}

/** One log line naming the pod: `kubernetes: pod NS/NAME container C (pod uid U, sandbox S)`. */
export function kubernetesLogLine(m: KubernetesMetadata): string {
  const pod = m.pod ? `pod ${m.namespace ? `${m.namespace}/` : ''}${m.pod}` : '';
  const extra = [m.podUid ? `pod uid ${m.podUid}` : '', m.sandbox ? `sandbox ${m.sandbox}` : ''].filter(Boolean).join(', ');
  return ['kubernetes:', pod, m.container ? `container ${m.container}` : '', extra ? `(${extra})` : ''].filter(Boolean).join(' ');
}

export interface EntrypointLog {
  level: 'info' | 'warn';
  line: string;
}

/** What the guest will find in /.runcvm/entrypoint. */
export function entrypointLogLine(args: readonly string[]): EntrypointLog {
  const path = GUEST_PATHS.entrypoint;
  if (args.length === 0 || args[0] === '') {
    return {
      level: 'warn',
      line: `entrypoint: ${path} is empty (the image has no ENTRYPOINT/CMD and no command was given): the guest will log "[VM-START] No entrypoint found, sleeping"; give the container a command`,
    };
  }
  return { level: 'info', line: `entrypoint: ${path} holds ${args.length} argument(s), program ${args[0]}` };
}
