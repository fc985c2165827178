import { describe, expect, it } from 'vitest';
import { entrypointLogLine, kubernetesLogLine, kubernetesMetadata } from '../../../src/runcvm/runtime/describe.js';

describe('create\'s debug-log lines (guides 1 and 8)', () => {
  it('names the pod from containerd CRI annotations', () => {
    const m = kubernetesMetadata({
      'io.kubernetes.cri.container-type': 'container',
      'io.kubernetes.cri.sandbox-name': 'mysql-0',
      'io.kubernetes.cri.sandbox-namespace': 'db',
      'io.kubernetes.cri.container-name': 'mysql',
      'io.kubernetes.cri.sandbox-uid': '1f2e',
      'io.kubernetes.cri.sandbox-id': 'abc123',
    });
    expect(m).toEqual({ namespace: 'db', pod: 'mysql-0', container: 'mysql', podUid: '1f2e', sandbox: 'abc123' });
    expect(kubernetesLogLine(m!)).toBe('kubernetes: pod db/mysql-0 container mysql (pod uid 1f2e, sandbox abc123)');
  });

  it('names the pod from CRI-O annotations, and nothing outside Kubernetes', () => {
    const m = kubernetesMetadata({ 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.container.name': 'nginx' });
    expect(kubernetesLogLine(m!)).toBe('kubernetes: pod default/web container nginx');
    expect(kubernetesMetadata({ 'org.opencontainers.image.title': 'x' })).toBeUndefined();
    expect(kubernetesMetadata(undefined)).toBeUndefined();
  });

  it('an empty command warns with the guest\'s own line; otherwise the path, argument count and program, never the arguments', () => {
    const empty = entrypointLogLine([]);
    expect(empty.level).toBe('warn');
    expect(empty.line).toContain('/.runcvm/entrypoint is empty');
    expect(empty.line).toContain('[VM-START] No entrypoint found, sleeping');
    const full = entrypointLogLine(['/usr/bin/app', '--token', 's3cr3t']);
    expect(full).toEqual({ level: 'info', line: 'entrypoint: /.runcvm/entrypoint holds 3 argument(s), program /usr/bin/app' });
    expect(full.line).not.toContain('s3cr3t');
  });
});
