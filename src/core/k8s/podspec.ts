/**
 * Pod-spec extractor: finds the pod template inside Pod, Job, CronJob, Deployment, StatefulSet, DaemonSet and
 * ReplicaSet objects and returns its containers, init containers, volumes and security context, each with the path
 * (and so the line) it came from. Pure.
 */
import { isRecord, type K8sPath, type ManifestObject } from './manifest.js';

/** Where each workload kind keeps its pod spec. */
export const POD_SPEC_PATHS: Readonly<Record<string, K8sPath>> = {
  Pod: ['spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
};

export interface Located<T> {
  readonly value: T;
  readonly path: K8sPath;
  readonly line: number;
}

export interface EnvVarInfo {
  readonly name: string;
  /** undefined when the value comes from valueFrom */
  readonly value: string | undefined;
  readonly path: K8sPath;
  readonly line: number;
}

export interface VolumeMountInfo {
  readonly name: string;
  readonly mountPath: string;
  readonly subPath: string | undefined;
  readonly mountPropagation: string | undefined;
  readonly readOnly: boolean;
  readonly path: K8sPath;
  readonly line: number;
}

export interface ContainerInfo {
  readonly name: string;
  readonly image: string;
  readonly init: boolean;
  readonly index: number;
  readonly path: K8sPath;
  readonly line: number;
  readonly value: Record<string, unknown>;
  readonly command: string[];
  readonly args: string[];
  readonly env: EnvVarInfo[];
  readonly volumeMounts: VolumeMountInfo[];
  readonly volumeDevices: Located<Record<string, unknown>>[];
  readonly securityContext: Located<Record<string, unknown>> | undefined;
  readonly limits: Record<string, string>;
  readonly requests: Record<string, string>;
}

export interface VolumeInfo {
  readonly name: string;
  readonly value: Record<string, unknown>;
  readonly path: K8sPath;
  readonly line: number;
}

export interface PodSpecInfo {
  readonly object: ManifestObject;
  readonly kind: string;
  readonly name: string;
  readonly path: K8sPath;
  readonly line: number;
  readonly spec: Record<string, unknown>;
  readonly runtimeClassName: Located<string> | undefined;
  readonly securityContext: Located<Record<string, unknown>> | undefined;
  readonly containers: ContainerInfo[];
  readonly initContainers: ContainerInfo[];
  readonly volumes: VolumeInfo[];
  /** line of a path relative to the pod spec */
  lineOf(rel: K8sPath): number;
}

export function getIn(value: unknown, path: K8sPath): unknown {
  let node: unknown = value;
  for (const segment of path) {
    if (Array.isArray(node) && typeof segment === 'number') node = node[segment];
    else if (isRecord(node)) node = node[String(segment)];
    else return undefined;
  }
  return node;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map((v) => (typeof v === 'string' ? v : String(v))) : [];
}

function stringRecord(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(value)) for (const [k, v] of Object.entries(value)) out[k] = String(v);
  return out;
}

export function extractPodSpec(object: ManifestObject): PodSpecInfo | undefined {
  const specPath = POD_SPEC_PATHS[object.kind];
  if (!specPath) return undefined;
  const spec = getIn(object.value, specPath);
  if (!isRecord(spec)) return undefined;
  const at = (rel: K8sPath): K8sPath => [...specPath, ...rel];
  const lineOf = (rel: K8sPath): number => object.lineOf(at(rel));
  const located = <T>(value: T, rel: K8sPath): Located<T> => ({ value, path: at(rel), line: lineOf(rel) });

  const container = (raw: unknown, index: number, init: boolean): ContainerInfo | undefined => {
    if (!isRecord(raw)) return undefined;
    const key = init ? 'initContainers' : 'containers';
    const rel: K8sPath = [key, index];
    const env: EnvVarInfo[] = (Array.isArray(raw.env) ? raw.env : []).flatMap((e: unknown, i: number) =>
      isRecord(e) && typeof e.name === 'string'
        ? [{ name: e.name, value: e.value === undefined ? undefined : String(e.value), path: at([...rel, 'env', i]), line: lineOf([...rel, 'env', i]) }]
        : [],
    );
    const volumeMounts: VolumeMountInfo[] = (Array.isArray(raw.volumeMounts) ? raw.volumeMounts : []).flatMap((m: unknown, i: number) =>
      isRecord(m)
        ? [{
            name: String(m.name ?? ''),
            mountPath: String(m.mountPath ?? ''),
            subPath: typeof m.subPath === 'string' ? m.subPath : typeof m.subPathExpr === 'string' ? m.subPathExpr : undefined,
            mountPropagation: typeof m.mountPropagation === 'string' ? m.mountPropagation : undefined,
            readOnly: m.readOnly === true,
            path: at([...rel, 'volumeMounts', i]),
            line: lineOf([...rel, 'volumeMounts', i]),
          }]
        : [],
    );
    const volumeDevices = (Array.isArray(raw.volumeDevices) ? raw.volumeDevices : []).flatMap((d: unknown, i: number) =>
      isRecord(d) ? [located(d, [...rel, 'volumeDevices', i])] : [],
    );
    const resources = isRecord(raw.resources) ? raw.resources : {};
    return {
      name: String(raw.name ?? ''),
      image: String(raw.image ?? ''),
      init,
      index,
      path: at(rel),
      line: lineOf(rel),
      value: raw,
      command: strings(raw.command),
      args: strings(raw.args),
      env,
      volumeMounts,
      volumeDevices,
      securityContext: isRecord(raw.securityContext) ? located(raw.securityContext, [...rel, 'securityContext']) : undefined,
      limits: stringRecord(resources.limits),
      requests: stringRecord(resources.requests),
    };
  };
  const list = (key: 'containers' | 'initContainers'): ContainerInfo[] =>
    (Array.isArray(spec[key]) ? (spec[key] as unknown[]) : []).flatMap((c, i) => container(c, i, key === 'initContainers') ?? []);

  const volumes: VolumeInfo[] = (Array.isArray(spec.volumes) ? spec.volumes : []).flatMap((v: unknown, i: number) =>
    isRecord(v) ? [{ name: String(v.name ?? ''), value: v, path: at(['volumes', i]), line: lineOf(['volumes', i]) }] : [],
  );

  return {
    object,
    kind: object.kind,
    name: object.name,
    path: specPath,
    line: object.lineOf(specPath),
    spec,
    runtimeClassName: typeof spec.runtimeClassName === 'string' ? located(spec.runtimeClassName, ['runtimeClassName']) : undefined,
    securityContext: isRecord(spec.securityContext) ? located(spec.securityContext, ['securityContext']) : undefined,
    containers: list('containers'),
    initContainers: list('initContainers'),
    volumes,
    lineOf,
  };
}

export function extractPodSpecs(objects: readonly ManifestObject[]): PodSpecInfo[] {
  return objects.flatMap((o) => extractPodSpec(o) ?? []);
}
