import { describe, expect, it } from 'vitest';
import { withGuestPrivileges } from '../../../src/runcvm/launch/guest-privileges.js';
import { parseNodeSettings, SettingError } from '../../../src/runcvm/launch/settings.js';
import type { LaunchSpec } from '../../../src/runcvm/launch/schema.js';

const restricted = {
  process: {
    args: ['kimia'], env: [], cwd: '/', user: { uid: 1000, gid: 1000, additionalGids: [1000] }, terminal: false, rlimits: [],
    noNewPrivileges: true,
    capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
  },
} as unknown as LaunchSpec; // only the process part matters here

describe('RUNCVM_GUEST_PRIVILEGES (a node setting)', () => {
  it('pod (the default) leaves the guest process as the container asked (runc parity)', () => {
    expect(parseNodeSettings({}).guestPrivileges).toBe('pod');
    expect(withGuestPrivileges(restricted, 'pod')).toBe(restricted);
  });

  it('userns adds SETUID/SETGID to the bounding set only and turns no_new_privs off; the user stays', () => {
    const p = withGuestPrivileges(restricted, parseNodeSettings({ RUNCVM_GUEST_PRIVILEGES: 'userns' }).guestPrivileges).process;
    expect(p.capabilities).toEqual({ bounding: ['CAP_SETUID', 'CAP_SETGID'], effective: [], permitted: [], inheritable: [], ambient: [] });
    expect(p.noNewPrivileges).toBe(false);
    expect(p.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000] });
  });

  it('userns loads no seccomp profile in the guest (RuntimeDefault refuses unshare(CLONE_NEWUSER)); pod keeps it', () => {
    const withProfile = { ...restricted, seccomp: { defaultAction: 'SCMP_ACT_ERRNO' } } as unknown as LaunchSpec;
    expect(withGuestPrivileges(withProfile, 'userns').seccomp).toBeUndefined();
    expect(withGuestPrivileges(withProfile, 'pod').seccomp).toBeDefined();
  });

  it('anything else is refused, naming the setting and the fix', () => {
    let err: unknown;
    try {
      parseNodeSettings({ RUNCVM_GUEST_PRIVILEGES: 'root' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SettingError);
    expect((err as SettingError).fix).toMatch(/pod or userns/);
  });
});
