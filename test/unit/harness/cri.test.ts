/**
 * The CRI test client's pure parts: the CRI log format parser, the kubelet-like config builders, and the proto
 * subset (it loads, and declares the RPCs the e2e test calls).
 */
import { describe, expect, it } from 'vitest';
import * as protoLoader from '@grpc/proto-loader';
import { CRI_PROTO, containerConfig, criLogText, parseCriLog, podConfig } from '../../harness/cri.js';

describe('parseCriLog / criLogText', () => {
  const text = [
    '2026-11-22T03:33:41.123456789Z stdout F out-1',
    '2026-11-22T03:33:41.2Z stderr F err-1',
    '2026-11-22T03:33:41.3+00:00 stdout P part-',
    '2026-11-22T03:33:41.4Z stdout F end',
    '2026-11-22T03:33:41.5Z stdout F ',
    '',
  ].join('\n');

  it('reads time, stream, tag and content, keeping an empty line', () => {
    const lines = parseCriLog(text);
    expect(lines).toHaveLength(5);
    expect(lines[0]).toEqual({ time: '2026-11-22T03:33:41.123456789Z', stream: 'stdout', tag: 'F', content: 'out-1' });
    expect(lines[4]?.content).toBe('');
  });

  it('joins partial lines per stream and keeps streams apart', () => {
    const lines = parseCriLog(text);
    expect(criLogText(lines, 'stdout')).toEqual(['out-1', 'part-end', '']);
    expect(criLogText(lines, 'stderr')).toEqual(['err-1']);
  });

  it('rejects a line that is not in the CRI format', () => {
    expect(() => parseCriLog('plain text\n')).toThrow(/not a CRI log line: "plain text"/);
  });
});

describe('config builders', () => {
  it('a host-network pod: NODE network namespace and no hostname, as the kubelet sends', () => {
    const p = podConfig({ name: 'p', uid: 'u1', logDirectory: '/logs/p', hostNetwork: true });
    expect(p.hostname).toBe('');
    expect(p.linux?.security_context?.namespace_options?.network).toBe('NODE');
    expect(p.labels).toMatchObject({ 'io.kubernetes.pod.name': 'p', 'io.kubernetes.pod.uid': 'u1', 'io.kubernetes.pod.namespace': 'default' });
    expect(podConfig({ name: 'q', logDirectory: '/l' }).linux?.security_context?.namespace_options?.network).toBe('POD');
  });

  it('a container: log path <name>/0.log, env as key/value, int64 as strings', () => {
    const c = containerConfig({ name: 'app', image: 'img', command: ['sh'], env: { A: '1' }, memoryBytes: 1024, hostNetwork: true });
    expect(c.log_path).toBe('app/0.log');
    expect(c.envs).toEqual([{ key: 'A', value: '1' }]);
    expect(c.linux?.resources?.memory_limit_in_bytes).toBe('1024');
    expect(c.linux?.security_context?.namespace_options?.network).toBe('NODE');
  });
});

describe('proto subset', () => {
  it('loads as package runtime.v1 with the services and methods the test uses', () => {
    const def = protoLoader.loadSync(CRI_PROTO, { keepCase: true });
    const methods = (svc: string) => Object.keys(def[`runtime.v1.${svc}`] ?? {}).sort();
    expect(methods('RuntimeService')).toEqual([
      'ContainerStatus', 'CreateContainer', 'ExecSync', 'ListContainers', 'PodSandboxStatus', 'RemoveContainer',
      'RemovePodSandbox', 'RunPodSandbox', 'StartContainer', 'Status', 'StopContainer', 'StopPodSandbox', 'Version',
    ]);
    expect(methods('ImageService')).toEqual(['ImageStatus', 'PullImage']);
  });
});
