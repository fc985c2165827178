import { describe, expect, it } from 'vitest';
import { joinsHostNetwork } from '../../../../src/runcvm/network/host.js';
import { networkModeFromSpec } from '../../../../src/runcvm/launch/build.js';

const withNet = (path?: string) => ({ linux: { namespaces: [{ type: 'pid' }, { type: 'network', ...(path ? { path } : {}) }] } }) as never;

describe('joinsHostNetwork: never bridge the node', () => {
  it('a namespace joined by a path that is our own namespace is the host network (Kubernetes hostNetwork pods)', async () => {
    expect(await joinsHostNetwork(withNet('/proc/self/ns/net'))).toBe(true);
  });
  it('another namespace by path, or a new one, is not', async () => {
    // any other nsfs inode stands for "another namespace" here
    expect(await joinsHostNetwork(withNet('/proc/self/ns/uts'))).toBe(false);
    expect(await joinsHostNetwork(withNet())).toBe(false);
  });
  it('no network namespace at all, or an unreadable path, counts as the host (never risk it)', async () => {
    expect(await joinsHostNetwork({ linux: { namespaces: [{ type: 'pid' }] } } as never)).toBe(true);
    expect(await joinsHostNetwork(withNet('/nonexistent/ns/net'))).toBe(true);
  });
  it('the LaunchSpec network mode follows it', () => {
    expect(networkModeFromSpec(withNet('/proc/123/ns/net'), true)).toBe('none');
    expect(networkModeFromSpec(withNet('/var/run/netns/pod'), false)).toBe('auto');
  });
});
