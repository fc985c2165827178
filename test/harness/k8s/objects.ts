/**
 * The Kubernetes objects the test kubelet understands, as zod schemas re-expressed from the Kubernetes API reference
 * (core/v1 Pod, Secret; batch/v1 Job; apps/v1 DaemonSet; node.k8s.io/v1 RuntimeClass; tekton.dev/v1 Task and
 * TaskRun; kustomize.config.k8s.io/v1beta1 Kustomization). Field names and shapes are the API's; every object is
 * strict: a field the driver does not model is an error ("unknown field"), never silently ignored, so that a
 * manifest can only pass a test for what the driver really did with it. Fields that only matter to the scheduler on
 * a one-node cluster (nodeSelector, tolerations, affinity) and purely informative ones (ports, labels) are accepted
 * and have no effect; the README says so.
 */
import { z } from 'zod';

const quantity = z.union([z.string(), z.number()]).transform(String);

export const ObjectMeta = z.object({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a DNS-1123 name'),
  namespace: z.string().optional(),
  labels: z.record(z.string()).optional(),
  annotations: z.record(z.string()).optional(),
}).strict();

const SecretKeySelector = z.object({ name: z.string(), key: z.string(), optional: z.boolean().optional() }).strict();
const ObjectFieldSelector = z.object({ fieldPath: z.string(), apiVersion: z.string().optional() }).strict();

export const EnvVar = z.object({
  name: z.string().min(1),
  value: z.string().optional(),
  valueFrom: z.object({ secretKeyRef: SecretKeySelector.optional(), fieldRef: ObjectFieldSelector.optional() }).strict().optional(),
}).strict();

export const VolumeMount = z.object({
  name: z.string(),
  mountPath: z.string().startsWith('/'),
  readOnly: z.boolean().optional(),
  subPath: z.string().optional(),
}).strict();

const SeccompProfile = z.object({ type: z.enum(['RuntimeDefault', 'Unconfined', 'Localhost']), localhostProfile: z.string().optional() }).strict();

export const ContainerSecurityContext = z.object({
  runAsUser: z.number().int().nonnegative().optional(),
  runAsGroup: z.number().int().nonnegative().optional(),
  runAsNonRoot: z.boolean().optional(),
  allowPrivilegeEscalation: z.boolean().optional(),
  privileged: z.boolean().optional(),
  readOnlyRootFilesystem: z.boolean().optional(),
  capabilities: z.object({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() }).strict().optional(),
  seccompProfile: SeccompProfile.optional(),
}).strict();

export const PodSecurityContext = z.object({
  runAsUser: z.number().int().nonnegative().optional(),
  runAsGroup: z.number().int().nonnegative().optional(),
  runAsNonRoot: z.boolean().optional(),
  fsGroup: z.number().int().nonnegative().optional(),
  fsGroupChangePolicy: z.enum(['Always', 'OnRootMismatch']).optional(),
  supplementalGroups: z.array(z.number().int().nonnegative()).optional(),
  seccompProfile: SeccompProfile.optional(),
}).strict();

export const Resources = z.object({ requests: z.record(quantity).optional(), limits: z.record(quantity).optional() }).strict();

export const Container = z.object({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
  image: z.string().min(1),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  env: z.array(EnvVar).optional(),
  volumeMounts: z.array(VolumeMount).optional(),
  securityContext: ContainerSecurityContext.optional(),
  resources: Resources.optional(),
  /** informative only (no hostPort support) */
  ports: z.array(z.object({ containerPort: z.number(), name: z.string().optional(), protocol: z.string().optional() }).strict()).optional(),
  terminationMessagePath: z.string().optional(),
}).strict();

const KeyToPath = z.object({ key: z.string(), path: z.string(), mode: z.number().int().optional() }).strict();

export const Volume = z.object({
  name: z.string(),
  secret: z.object({ secretName: z.string(), items: z.array(KeyToPath).optional(), defaultMode: z.number().int().optional(), optional: z.boolean().optional() }).strict().optional(),
  emptyDir: z.object({ medium: z.enum(['', 'Memory']).optional(), sizeLimit: quantity.optional() }).strict().optional(),
  hostPath: z.object({
    path: z.string().startsWith('/'),
    type: z.enum(['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice']).optional(),
  }).strict().optional(),
  persistentVolumeClaim: z.object({ claimName: z.string(), readOnly: z.boolean().optional() }).strict().optional(),
}).strict().refine((v) => [v.secret, v.emptyDir, v.hostPath, v.persistentVolumeClaim].filter(Boolean).length === 1, {
  message: 'a volume has exactly one source (secret, emptyDir, hostPath or persistentVolumeClaim)',
});

export const PodSpec = z.object({
  containers: z.array(Container).min(1),
  initContainers: z.array(Container).optional(),
  volumes: z.array(Volume).optional(),
  securityContext: PodSecurityContext.optional(),
  runtimeClassName: z.string().optional(),
  restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
  hostNetwork: z.boolean().optional(),
  hostPID: z.boolean().optional(),
  terminationGracePeriodSeconds: z.number().int().nonnegative().optional(),
  imagePullSecrets: z.array(z.object({ name: z.string() }).strict()).optional(),
  serviceAccountName: z.string().optional(),
  automountServiceAccountToken: z.boolean().optional(),
  // scheduling on a one-node cluster: accepted, no effect
  nodeSelector: z.record(z.string()).optional(),
  tolerations: z.array(z.record(z.unknown())).optional(),
}).strict();

const PodTemplate = z.object({ metadata: ObjectMeta.partial({ name: true }).optional(), spec: PodSpec }).strict();

export const Pod = z.object({ apiVersion: z.literal('v1'), kind: z.literal('Pod'), metadata: ObjectMeta, spec: PodSpec }).strict();

export const Job = z.object({
  apiVersion: z.literal('batch/v1'),
  kind: z.literal('Job'),
  metadata: ObjectMeta,
  spec: z.object({
    template: PodTemplate,
    backoffLimit: z.number().int().nonnegative().optional(),
    ttlSecondsAfterFinished: z.number().int().nonnegative().optional(),
    activeDeadlineSeconds: z.number().int().positive().optional(),
  }).strict(),
}).strict();

export const DaemonSet = z.object({
  apiVersion: z.literal('apps/v1'),
  kind: z.literal('DaemonSet'),
  metadata: ObjectMeta,
  spec: z.object({
    selector: z.object({ matchLabels: z.record(z.string()) }).strict(),
    template: PodTemplate,
    updateStrategy: z.record(z.unknown()).optional(),
  }).strict(),
}).strict();

export const Secret = z.object({
  apiVersion: z.literal('v1'),
  kind: z.literal('Secret'),
  metadata: ObjectMeta,
  type: z.string().optional(),
  data: z.record(z.string()).optional(),
  stringData: z.record(z.string()).optional(),
}).strict();

export const RuntimeClass = z.object({
  apiVersion: z.literal('node.k8s.io/v1'),
  kind: z.literal('RuntimeClass'),
  metadata: ObjectMeta,
  handler: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
  overhead: z.object({ podFixed: z.record(quantity) }).strict().optional(),
}).strict();

// ---- Tekton Pipelines v1 (tekton.dev/v1): the subset a build Task uses

const ParamSpec = z.object({
  name: z.string(),
  type: z.enum(['string', 'array']).optional(),
  description: z.string().optional(),
  default: z.union([z.string(), z.array(z.string())]).optional(),
}).strict();

export const Step = z.object({
  name: z.string(),
  image: z.string(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  env: z.array(EnvVar).optional(),
  volumeMounts: z.array(VolumeMount).optional(),
  securityContext: ContainerSecurityContext.optional(),
  computeResources: Resources.optional(),
}).strict();

export const Task = z.object({
  apiVersion: z.literal('tekton.dev/v1'),
  kind: z.literal('Task'),
  metadata: ObjectMeta,
  spec: z.object({
    description: z.string().optional(),
    params: z.array(ParamSpec).optional(),
    workspaces: z.array(z.object({
      name: z.string(), description: z.string().optional(), mountPath: z.string().optional(), optional: z.boolean().optional(), readOnly: z.boolean().optional(),
    }).strict()).optional(),
    results: z.array(z.object({ name: z.string(), description: z.string().optional(), type: z.literal('string').optional() }).strict()).optional(),
    steps: z.array(Step).min(1),
    volumes: z.array(Volume).optional(),
  }).strict(),
}).strict();

export const TaskRun = z.object({
  apiVersion: z.literal('tekton.dev/v1'),
  kind: z.literal('TaskRun'),
  metadata: ObjectMeta,
  spec: z.object({
    taskRef: z.object({ name: z.string() }).strict(),
    params: z.array(z.object({ name: z.string(), value: z.union([z.string(), z.array(z.string())]) }).strict()).optional(),
    workspaces: z.array(z.object({
      name: z.string(),
      secret: z.object({ secretName: z.string(), items: z.array(KeyToPath).optional(), defaultMode: z.number().int().optional() }).strict().optional(),
      emptyDir: z.object({}).strict().optional(),
      persistentVolumeClaim: z.object({ claimName: z.string() }).strict().optional(),
    }).strict()).optional(),
    podTemplate: z.object({ securityContext: PodSecurityContext.optional(), runtimeClassName: z.string().optional() }).strict().optional(),
  }).strict(),
}).strict();

const KustomizeImage = z.object({ name: z.string(), newName: z.string().optional(), newTag: z.string().optional(), digest: z.string().optional() }).strict();

export const Kustomization = z.object({
  apiVersion: z.literal('kustomize.config.k8s.io/v1beta1'),
  kind: z.literal('Kustomization'),
  resources: z.array(z.string()).optional(),
  components: z.array(z.string()).optional(),
  configurations: z.array(z.string()).optional(),
  images: z.array(KustomizeImage).optional(),
}).strict();

export const KustomizeComponent = z.object({
  apiVersion: z.literal('kustomize.config.k8s.io/v1alpha1'),
  kind: z.literal('Component'),
  configurations: z.array(z.string()).optional(),
  images: z.array(KustomizeImage).optional(),
}).strict();

/** a `configurations` file: extra field specs for the images transformer */
export const KustomizeConfig = z.object({
  images: z.array(z.object({ path: z.string(), kind: z.string().optional() }).strict()).optional(),
}).strict();

export type PodSpec = z.infer<typeof PodSpec>;
export type Container = z.infer<typeof Container>;
export type Volume = z.infer<typeof Volume>;
export type Pod = z.infer<typeof Pod>;
export type Job = z.infer<typeof Job>;
export type DaemonSet = z.infer<typeof DaemonSet>;
export type Secret = z.infer<typeof Secret>;
export type RuntimeClass = z.infer<typeof RuntimeClass>;
export type Task = z.infer<typeof Task>;
export type TaskRun = z.infer<typeof TaskRun>;
export type Kustomization = z.infer<typeof Kustomization>;
export type KustomizeComponent = z.infer<typeof KustomizeComponent>;
export type EnvVar = z.infer<typeof EnvVar>;

const SCHEMAS = { Pod, Job, DaemonSet, Secret, RuntimeClass, Task, TaskRun, Kustomization } as const;
export type KnownKind = keyof typeof SCHEMAS;

/** Validate one parsed YAML document as the API server would (kind-specific schema; unknown fields refused). */
export function validateObject<K extends KnownKind>(kind: K, value: unknown, where = ''): z.infer<(typeof SCHEMAS)[K]> {
  const r = SCHEMAS[kind].safeParse(value);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`${where ? `${where}: ` : ''}${kind} is not valid: ${issues}`);
  }
  return r.data as z.infer<(typeof SCHEMAS)[K]>;
}

/** The pod template of a workload (Pod, Job, DaemonSet) with the pod's name. */
export function podOf(object: Pod | Job | DaemonSet): { name: string; namespace: string; labels: Record<string, string>; spec: PodSpec } {
  const namespace = object.metadata.namespace ?? 'default';
  if (object.kind === 'Pod') return { name: object.metadata.name, namespace, labels: object.metadata.labels ?? {}, spec: object.spec };
  // the controllers name pods NAME-<suffix>; a fixed suffix keeps runs readable
  const suffix = object.kind === 'Job' ? 'job0' : 'node0';
  return { name: `${object.metadata.name}-${suffix}`, namespace, labels: object.spec.template.metadata?.labels ?? {}, spec: object.spec.template.spec };
}

/** The user's own values in an example's args (e.g. --context, --destination): the first container's `--flag=value`. */
export function withArgs(pod: Pod, values: Record<string, string>): Pod {
  const c = pod.spec.containers[0]!;
  c.args = (c.args ?? []).map((a) => {
    const flag = a.split('=')[0]!;
    return flag in values ? `${flag}=${values[flag]}` : a;
  });
  return pod;
}
