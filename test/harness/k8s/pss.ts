/**
 * The Pod Security Standard "restricted" (kubernetes.io/docs/concepts/security/pod-security-standards, the policy the
 * API server's PodSecurity admission enforces with `pod-security.kubernetes.io/enforce: restricted`), for the pod
 * fields the test kubelet models (objects.ts refuses any other field, so nothing here can be skipped silently).
 * The API server is the one part that cannot run here; this is its documented policy, checked as it checks it:
 * every control of the baseline and restricted levels, one reason per control, named as the admission names it
 * ("allowPrivilegeEscalation != false", "unrestricted capabilities", …). Pure.
 */
import type { Container, PodSpec } from './objects.js';

/** Capabilities the baseline level lets a container add (restricted: NET_BIND_SERVICE only). */
const BASELINE_CAPS = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
/** The volume types of the restricted level that the test kubelet models (configMap, csi, downwardAPI, ephemeral, projected are allowed too). */
const RESTRICTED_VOLUMES = ['secret', 'emptyDir', 'persistentVolumeClaim'] as const;

const cap = (c: string) => c.toUpperCase().replace(/^CAP_/, '');
const quoted = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ');
const containers = (s: PodSpec): Container[] => [...(s.initContainers ?? []), ...s.containers];

/** The restricted level's violations of a pod spec, as "<control> (<what must change>)"; empty when it passes. */
export function restrictedViolations(spec: PodSpec): string[] {
  const out: string[] = [];
  const all = containers(spec);
  const psc = spec.securityContext ?? {};
  const which = (pred: (c: Container) => boolean) => all.filter(pred).map((c) => c.name);

  // baseline
  const hostNs = [spec.hostNetwork && 'hostNetwork=true', spec.hostPID && 'hostPID=true'].filter(Boolean);
  if (hostNs.length) out.push(`host namespaces (${hostNs.join(', ')})`);
  const privileged = which((c) => c.securityContext?.privileged === true);
  if (privileged.length) out.push(`privileged (containers ${quoted(privileged)} must not set securityContext.privileged=true)`);
  const nonDefault = which((c) => (c.securityContext?.capabilities?.add ?? []).some((a) => !BASELINE_CAPS.has(cap(a))));
  if (nonDefault.length) out.push(`non-default capabilities (containers ${quoted(nonDefault)} must not include capabilities beyond the baseline set in securityContext.capabilities.add)`);
  const hostPath = (spec.volumes ?? []).filter((v) => v.hostPath).map((v) => v.name);
  if (hostPath.length) out.push(`hostPath volumes (volumes ${quoted(hostPath)})`);
  const unconfined = [psc.seccompProfile?.type === 'Unconfined' ? 'pod' : '', ...which((c) => c.securityContext?.seccompProfile?.type === 'Unconfined')].filter(Boolean);
  if (unconfined.length) out.push(`seccompProfile (${unconfined.join(', ')} must not set securityContext.seccompProfile.type to "Unconfined")`);

  // restricted
  const badVolumes = (spec.volumes ?? []).filter((v) => !RESTRICTED_VOLUMES.some((k) => v[k] !== undefined)).map((v) => v.name);
  if (badVolumes.length) out.push(`restricted volume types (volumes ${quoted(badVolumes)} use a type other than ${RESTRICTED_VOLUMES.join(', ')}, configMap, csi, downwardAPI, ephemeral, projected)`);
  const escalates = which((c) => c.securityContext?.allowPrivilegeEscalation !== false);
  if (escalates.length) out.push(`allowPrivilegeEscalation != false (containers ${quoted(escalates)} must set securityContext.allowPrivilegeEscalation=false)`);
  const caps = which((c) => {
    const k = c.securityContext?.capabilities;
    return !(k?.drop ?? []).some((d) => cap(d) === 'ALL') || (k?.add ?? []).some((a) => cap(a) !== 'NET_BIND_SERVICE');
  });
  if (caps.length) out.push(`unrestricted capabilities (containers ${quoted(caps)} must set securityContext.capabilities.drop=["ALL"] and may add only NET_BIND_SERVICE)`);
  const rootAllowed = which((c) => (c.securityContext?.runAsNonRoot ?? psc.runAsNonRoot) !== true);
  if (psc.runAsNonRoot === false || rootAllowed.length) out.push(`runAsNonRoot != true (pod or containers ${quoted(rootAllowed)} must set securityContext.runAsNonRoot=true)`);
  const uid0 = [psc.runAsUser === 0 ? 'pod' : '', ...which((c) => c.securityContext?.runAsUser === 0)].filter(Boolean);
  if (uid0.length) out.push(`runAsUser=0 (${uid0.join(', ')} must not set runAsUser=0)`);
  const noSeccomp = which((c) => {
    const t = c.securityContext?.seccompProfile?.type ?? psc.seccompProfile?.type;
    return t !== 'RuntimeDefault' && t !== 'Localhost';
  });
  if (noSeccomp.length) out.push(`seccompProfile (pod or containers ${quoted(noSeccomp)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`);
  return out;
}
