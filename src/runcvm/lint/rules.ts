/**
 * `runcvm lint` rules: pure functions over the parsed manifest set. Each rule names the troubleshooting-guide
 * section it comes from (spec/runcvm-kubernetes-troubleshooting.md) in docs/troubleshooting-map.md.
 */
import { extractPodSpecs, getIn, isRecord, type ContainerInfo, type Finding, type PodSpecInfo } from '../../core/k8s/index.js';
import type { LoadedManifest } from '../../core/k8s/cli.js';
import { judgeSetting } from './settings.js';

export const RUNTIME_CLASS = 'runcvm';
export const LOG_LEVELS = ['OFF', 'ERROR', 'INFO', 'DEBUG'] as const;
/** What the VM gets when the container has no limits (keep in sync with the runtime's defaults). */
export const DEFAULT_VM_MEMORY = '512Mi';
export const DEFAULT_VM_CPUS = 1;

export const RULES = {
  'runcvm/runtimeclass-missing': 'a pod uses runtimeClassName: runcvm but no RuntimeClass runcvm is in the files (guide 9)',
  'runcvm/runtimeclass-handler': 'RuntimeClass runcvm has a handler other than runcvm (guide 9)',
  'runcvm/runtimeclass-overhead': 'RuntimeClass runcvm declares no overhead.podFixed for the VM',
  'runcvm/shell-and-chain': '`&&` in a pod command hides a failing first step (guide 1)',
  'runcvm/volume-unsupported': 'a volume the microVM cannot share',
  'runcvm/network-volume': 'a network volume is redirected to /.runcvm/vols/<id> and shared over NFS (guide 3)',
  'runcvm/no-resource-limits': 'no resources.limits: the VM gets the default memory and vCPUs',
  'runcvm/log-level': 'RUNCVM_LOG_LEVEL has a value the runtime does not know (guide 4)',
  'runcvm/rootfs-size': 'RUNCVM_ROOTFS_SIZE is not a size the runtime accepts (guide 6)',
  'runcvm/setting-invalid': 'another RUNCVM_* setting has a value the runtime refuses at create',
  'runcvm/setting-unknown': 'a RUNCVM_* name the runtime does not read from a container (misspelt, or a node-side setting)',
  'runcvm/kernel-unapproved': 'RUNCVM_KERNEL names a file outside the default approved kernel folder (create refuses it unless the node approves a folder holding it)',
  'runcvm/host-network-loopback': 'hostNetwork: the workload\'s 127.0.0.1 is the VM\'s own loopback, not the node\'s (docs/conformance.md)',
} as const;
export type RuleId = keyof typeof RULES;

type Out = Finding & { rule: RuleId };

const NETWORK_VOLUME_KEYS = ['persistentVolumeClaim', 'nfs', 'iscsi', 'cephfs', 'rbd', 'glusterfs', 'csi', 'ephemeral', 'awsElasticBlockStore', 'gcePersistentDisk', 'azureDisk', 'azureFile', 'fc', 'cinder'];

export function lintRuncvm(files: readonly LoadedManifest[]): Finding[] {
  const out: Out[] = [];
  const runtimeClasses = files.flatMap((f) => f.objects.filter((o) => o.kind === 'RuntimeClass').map((o) => ({ file: f.file, o })));

  for (const { file, o } of runtimeClasses) {
    if (o.name !== RUNTIME_CLASS) continue;
    const handler = o.value.handler;
    if (handler !== RUNTIME_CLASS) {
      out.push({
        file, line: o.lineOf(['handler']), level: 'error', rule: 'runcvm/runtimeclass-handler',
        message: `RuntimeClass runcvm has handler ${JSON.stringify(handler ?? null)}; containerd only knows the runtime entry "runcvm", so pods fail with 'no runtime for "runcvm" is configured'`,
        fix: 'set `handler: runcvm` (it must equal the name in [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm])',
      });
    }
    const podFixed = getIn(o.value, ['overhead', 'podFixed']);
    if (!isRecord(podFixed) || (podFixed.memory === undefined && podFixed.cpu === undefined)) {
      out.push({
        file, line: o.lineOf(['overhead']), level: 'warn', rule: 'runcvm/runtimeclass-overhead',
        message: 'RuntimeClass runcvm has no overhead.podFixed: the scheduler does not count the hypervisor and guest kernel memory',
        fix: 'add `overhead: {podFixed: {memory: "160Mi", cpu: "250m"}}` (see deploy/kubernetes/runtimeclass.yaml)',
      });
    }
  }
  const hasRuntimeClass = runtimeClasses.some(({ o }) => o.name === RUNTIME_CLASS);

  for (const { file, objects } of files) {
    for (const pod of extractPodSpecs(objects)) {
      if (pod.runtimeClassName?.value !== RUNTIME_CLASS) continue;
      if (!hasRuntimeClass) {
        out.push({
          file, line: pod.runtimeClassName.line, level: 'warn', rule: 'runcvm/runtimeclass-missing',
          message: `${pod.kind} ${pod.name} uses runtimeClassName: runcvm but no RuntimeClass runcvm is in these files; without it the pod is rejected (FailedCreatePodSandBox: no runtime for "runcvm" is configured)`,
          fix: 'ensure `kubectl get runtimeclass runcvm` exists, or apply deploy/kubernetes/runtimeclass.yaml',
        });
      }
      if (pod.spec.hostNetwork === true) {
        // a design choice of runcvm (issue 16): the VM has its own kernel, hence its own loopback device
        out.push({
          file, line: pod.lineOf(['hostNetwork']), level: 'info', rule: 'runcvm/host-network-loopback',
          message: `${pod.kind} ${pod.name} uses hostNetwork: inside the microVM, 127.0.0.1 is the VM's own loopback, so a service listening on the node's 127.0.0.1 (a node-local agent, a cache) is unreachable, and the node cannot reach the pod's 127.0.0.1 either`,
          fix: 'reach node services by the node\'s address (env from the downward API: `valueFrom: {fieldRef: {fieldPath: status.hostIP}}`) with the service listening there, or run this pod without runtimeClassName: runcvm',
        });
      }
      for (const c of [...pod.initContainers, ...pod.containers]) out.push(...containerRules(file, pod, c));
      out.push(...volumeRules(file, pod));
    }
  }
  return out;
}

function containerRules(file: string, pod: PodSpecInfo, c: ContainerInfo): Out[] {
  const out: Out[] = [];
  const where = `container ${c.name}`;
  // guide 1: `sh -c "a && b"` — a failing first step ends the container before anyone can look.
  const argv = [...c.command, ...c.args];
  const script = shellScript(argv);
  if (script && /&&/.test(script.text)) {
    const inArgs = script.index >= c.command.length;
    const rel = inArgs ? 'args' : 'command';
    const idx = script.index - (inArgs ? c.command.length : 0);
    out.push({
      file, line: pod.lineOf([c.init ? 'initContainers' : 'containers', c.index, rel, idx]), level: 'warn', rule: 'runcvm/shell-and-chain',
      message: `${where}: \`&&\` in \`sh -c\` stops at the first failing step, so the VM exits (or logs "[VM-START] No entrypoint found, sleeping") without showing why`,
      fix: `use \`;\` while debugging to keep the container alive: ${JSON.stringify(script.text.replace(/\s*&&\s*/g, '; '))}, and set RUNCVM_LOG_LEVEL=DEBUG`,
    });
  }
  for (const e of c.env) {
    // valueFrom (secrets, field refs) is only known in the cluster
    if (e.value === undefined) continue;
    const verdict = judgeSetting(e.name, e.value);
    if (!verdict) continue;
    if (e.name === 'RUNCVM_LOG_LEVEL') {
      out.push({
        file, line: e.line, level: 'error', rule: 'runcvm/log-level',
        message: `${where}: RUNCVM_LOG_LEVEL=${JSON.stringify(e.value)} is not one of ${LOG_LEVELS.join(', ')}: the runtime refuses to create the container`,
        fix: '`- name: RUNCVM_LOG_LEVEL\n  value: "DEBUG"` (or OFF, ERROR, INFO)',
      });
    } else if (e.name === 'RUNCVM_ROOTFS_SIZE') {
      out.push({
        file, line: e.line, level: 'error', rule: 'runcvm/rootfs-size',
        message: `${where}: RUNCVM_ROOTFS_SIZE=${JSON.stringify(e.value)} is not valid (${verdict.problem}): the runtime refuses to create the container`,
        fix: 'use a size such as "2G" or "512M" (at least 16M); the root filesystem is never made smaller than the image content',
      });
    } else if (verdict.kind === 'node-approval') {
      out.push({ file, line: e.line, level: 'warn', rule: 'runcvm/kernel-unapproved', message: `${where}: ${verdict.problem}`, fix: verdict.fix });
    } else if (verdict.kind === 'invalid') {
      out.push({
        file, line: e.line, level: 'error', rule: 'runcvm/setting-invalid',
        message: `${where}: ${e.name}=${JSON.stringify(e.value)} is not valid (${verdict.problem}): the runtime refuses to create the container`,
        fix: verdict.fix,
      });
    } else {
      out.push({ file, line: e.line, level: 'warn', rule: 'runcvm/setting-unknown', message: `${where}: ${verdict.problem}`, fix: verdict.fix });
    }
  }
  if (!c.init && c.limits.memory === undefined && c.limits.cpu === undefined) {
    out.push({
      file, line: c.line, level: 'info', rule: 'runcvm/no-resource-limits',
      message: `${where}: no resources.limits, so the microVM gets the defaults (${DEFAULT_VM_MEMORY} memory, ${DEFAULT_VM_CPUS} vCPU); the VM's memory and vCPUs come from limits.memory and limits.cpu`,
      fix: 'set `resources: {limits: {memory: "1Gi", cpu: "1"}}` to size the VM',
    });
  }
  for (const d of c.volumeDevices) {
    out.push({
      file, line: d.line, level: 'warn', rule: 'runcvm/volume-unsupported',
      message: `${where}: volumeDevices (raw block volume ${String(d.value.name ?? '')} at ${String(d.value.devicePath ?? '')}) are not passed into the microVM`,
      fix: 'use a filesystem volume (volumeMounts) instead, or RUNCVM_DISKS for a VM disk',
    });
  }
  for (const m of c.volumeMounts) {
    if (m.subPath !== undefined) {
      out.push({
        file, line: m.line, level: 'warn', rule: 'runcvm/volume-unsupported',
        message: `${where}: subPath mount of ${m.name} at ${m.mountPath}: runc bind-mounts a single path inside the container, which the VM shares as a whole directory; a file subPath cannot be shared`,
        fix: 'mount the whole volume at a directory and point the application at the file inside it',
      });
    }
    if (m.mountPropagation === 'Bidirectional') {
      out.push({
        file, line: m.line, level: 'warn', rule: 'runcvm/volume-unsupported',
        message: `${where}: mountPropagation: Bidirectional on ${m.mountPath}: mounts made inside the microVM never propagate back to the node`,
        fix: 'remove mountPropagation (or use None); run mount-creating agents under plain runc',
      });
    }
  }
  return out;
}

function volumeRules(file: string, pod: PodSpecInfo): Out[] {
  const out: Out[] = [];
  const all = [...pod.initContainers, ...pod.containers];
  for (const v of pod.volumes) {
    const mounted = all.flatMap((c) => c.volumeMounts.filter((m) => m.name === v.name).map((m) => m.mountPath));
    const hostPath = isRecord(v.value.hostPath) ? v.value.hostPath : undefined;
    if (hostPath) {
      const p = String(hostPath.path ?? '');
      const type = String(hostPath.type ?? '');
      if (['CharDevice', 'BlockDevice', 'Socket'].includes(type) || /^\/dev\//.test(p) || /\.sock$/.test(p) || /^\/(var\/)?run\/.*\.sock/.test(p)) {
        out.push({
          file, line: v.line, level: 'warn', rule: 'runcvm/volume-unsupported',
          message: `volume ${v.name}: hostPath ${p}${type ? ` (${type})` : ''} is a device or socket on the node; the microVM has its own kernel and cannot use it`,
          fix: 'run this pod without runtimeClassName: runcvm, or talk to the service over the network',
        });
      }
      continue;
    }
    const netKey = NETWORK_VOLUME_KEYS.find((k) => k in v.value);
    if (netKey) {
      out.push({
        file, line: v.line, level: 'info', rule: 'runcvm/network-volume',
        message: `volume ${v.name} (${netKey}) at ${mounted.join(', ') || '(not mounted)'} is redirected to /.runcvm/vols/<id> and exported to the VM over NFS from 169.254.1.254`,
        fix: 'nothing to change; if the mount fails ("✗ Failed to mount … via NFS"), run `runcvm doctor --inside` in the container and look for "PVC Redirect" in /tmp/runcvm-<id>.debug',
      });
    }
  }
  return out;
}

/** The script of `sh -c SCRIPT` (or bash/ash), found in command+args, with its index in that joined list. */
function shellScript(argv: readonly string[]): { text: string; index: number } | undefined {
  const shellAt = argv.findIndex((a) => /(^|\/)(sh|bash|ash|dash)$/.test(a));
  if (shellAt < 0) return undefined;
  const cAt = argv.findIndex((a, i) => i > shellAt && /^-\w*c\w*$/.test(a));
  if (cAt < 0 || argv[cAt + 1] === undefined) return undefined;
  return { text: argv[cAt + 1]!, index: cAt + 1 };
}
