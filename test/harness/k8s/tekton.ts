/**
 * What Tekton Pipelines' controller does with a TaskRun, reduced to what a build Task uses, re-expressed from
 * Tekton's documented behaviour (tekton.dev/v1): parameters are substituted ($(params.X), $(params.X[*]) for an
 * array as whole arguments), each step becomes a container named step-<name>, results live in /tekton/results
 * ($(results.X.path)), workspaces are volumes mounted at their mountPath or /workspace/<name>
 * ($(workspaces.X.path); an unbound optional workspace gives ""), and the TaskRun's podTemplate supplies the pod's
 * securityContext and runtimeClassName.
 * Tekton's injected entrypoint runs the steps one after the other; here the steps before the last are init
 * containers, which the kubelet runs in the same order and which stop the pod at the first failure, as Tekton does.
 * Results are read from the results volume after the run (Tekton reads them from the termination message, which
 * its entrypoint fills from the same files).
 */
import type { Container, EnvVar, Pod, Task, TaskRun, Volume } from './objects.js';

export const RESULTS_DIR = '/tekton/results';
export const RESULTS_VOLUME = 'tekton-internal-results';

export function taskRunPod(task: Task, run: TaskRun): Pod {
  const strings = new Map<string, string>();
  const arrays = new Map<string, string[]>();
  for (const p of task.spec.params ?? []) {
    const given = run.spec.params?.find((x) => x.name === p.name)?.value ?? p.default;
    if (given === undefined) throw new Error(`TaskRun ${run.metadata.name}: missing parameter ${p.name} (no default)`);
    if ((p.type ?? 'string') === 'array') {
      if (!Array.isArray(given)) throw new Error(`TaskRun ${run.metadata.name}: parameter ${p.name} must be an array`);
      arrays.set(p.name, given);
    } else {
      if (Array.isArray(given)) throw new Error(`TaskRun ${run.metadata.name}: parameter ${p.name} must be a string`);
      strings.set(p.name, given);
    }
  }
  for (const r of task.spec.results ?? []) strings.set(`results.${r.name}.path`, `${RESULTS_DIR}/${r.name}`);
  const volumes: Volume[] = [{ name: RESULTS_VOLUME, emptyDir: {} }];
  const mounts = [{ name: RESULTS_VOLUME, mountPath: RESULTS_DIR }];
  for (const w of task.spec.workspaces ?? []) {
    const bound = run.spec.workspaces?.find((x) => x.name === w.name);
    if (!bound) {
      if (!w.optional) throw new Error(`TaskRun ${run.metadata.name}: workspace ${w.name} is not bound`);
      strings.set(`workspaces.${w.name}.path`, '');
      strings.set(`workspaces.${w.name}.bound`, 'false');
      continue;
    }
    const path = w.mountPath ?? `/workspace/${w.name}`;
    strings.set(`workspaces.${w.name}.path`, path);
    strings.set(`workspaces.${w.name}.bound`, 'true');
    const name = `ws-${w.name}`;
    if (bound.secret) volumes.push({ name, secret: bound.secret });
    else if (bound.persistentVolumeClaim) volumes.push({ name, persistentVolumeClaim: bound.persistentVolumeClaim });
    else volumes.push({ name, emptyDir: {} });
    mounts.push({ name, mountPath: path, ...(w.readOnly ? { readOnly: true } : {}) } as { name: string; mountPath: string });
  }
  const sub = (text: string): string => text.replace(/\$\((params|results|workspaces)\.([A-Za-z0-9_.-]+)\)/g, (m, kind: string, key: string) => {
    const k = kind === 'params' ? key : `${kind}.${key}`;
    return strings.has(k) ? strings.get(k)! : m;
  });
  const subArgs = (list: readonly string[] | undefined): string[] | undefined => list?.flatMap((a) => {
    const whole = /^\$\(params\.([A-Za-z0-9_-]+)\[\*\]\)$/.exec(a);
    if (whole && arrays.has(whole[1]!)) return arrays.get(whole[1]!)!;
    return [sub(a)];
  });
  const containers: Container[] = task.spec.steps.map((s) => {
    const c: Container = { name: `step-${s.name}`, image: sub(s.image), volumeMounts: [...mounts, ...(s.volumeMounts ?? [])] };
    const command = subArgs(s.command);
    const args = subArgs(s.args);
    if (command) c.command = command;
    if (args) c.args = args;
    const wd = s.workingDir !== undefined ? sub(s.workingDir) : '';
    if (wd) c.workingDir = wd;
    if (s.env) c.env = s.env.map((e): EnvVar => (e.value !== undefined ? { ...e, value: sub(e.value) } : e));
    if (s.securityContext) c.securityContext = s.securityContext;
    if (s.computeResources) c.resources = s.computeResources;
    return c;
  });
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${run.metadata.name}-pod`, labels: { 'tekton.dev/task': task.metadata.name, 'tekton.dev/taskRun': run.metadata.name } },
    spec: {
      restartPolicy: 'Never',
      initContainers: containers.slice(0, -1),
      containers: containers.slice(-1),
      volumes: [...volumes, ...(task.spec.volumes ?? [])],
      ...(run.spec.podTemplate?.securityContext ? { securityContext: run.spec.podTemplate.securityContext } : {}),
      ...(run.spec.podTemplate?.runtimeClassName ? { runtimeClassName: run.spec.podTemplate.runtimeClassName } : {}),
    },
  };
  if (run.metadata.namespace) pod.metadata.namespace = run.metadata.namespace;
  return pod;
}
