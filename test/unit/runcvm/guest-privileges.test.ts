import { describe, expect, it } from 'vitest';
import { parseGuestPrivileges, withGuestPrivileges } from '../../../src/runcvm/launch/guest-privileges.js';
import type { LaunchSpec } from '../../../src/runcvm/launch/schema.js';

const restricted = {
  process: {
    args: ['kimia'], env: [], cwd: '/', user: { uid: 1000, gid: 1000, additionalGids: [1000] }, terminal: false, rlimits: [],
    noNewPrivileges: true,
    capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
  },
} as unknown as LaunchSpec; // only the process part matters here

describe('RUNCVM_GUEST_PRIVILEGES', () => {
  it('pod (the default) leaves the guest process as the container asked (runc parity)', () => {
    expect(parseGuestPrivileges(undefined)).toBe('pod');
    expect(withGuestPrivileges(restricted, 'pod')).toBe(restricted);
  });

  it('userns adds SETUID/SETGID to the bounding set only and turns no_new_privs off; the user stays', () => {
    const p = withGuestPrivileges(restricted, parseGuestPrivileges('userns') as 'userns').process;
    expect(p.capabilities).toEqual({ bounding: ['CAP_SETUID', 'CAP_SETGID'], effective: [], permitted: [], inheritable: [], ambient: [] });
    expect(p.noNewPrivileges).toBe(false);
    expect(p.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000] });
  });

  it('anything else is refused', () => {
    expect(parseGuestPrivileges('root')).toEqual({ error: 'RUNCVM_GUEST_PRIVILEGES=root is not pod or userns' });
  });
});
