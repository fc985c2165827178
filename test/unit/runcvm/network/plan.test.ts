import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  IDENTITY_CIDR,
  NetworkPlanError,
  decodeStash,
  describePlan,
  encodeStash,
  dummyMacFor,
  guestNetCmdline,
  isLocallyAdministered,
  isUnicast,
  parseGuestNetCmdline,
  parseResolvConf,
  planNetwork,
  type IpLink,
  type IpRoute,
  type NetworkFacts,
  type NetworkPlan,
} from '../../../../src/runcvm/network/plan.js';

const FIX = join(__dirname, '../../../fixtures/network');
const load = <T>(name: string): T => JSON.parse(readFileSync(join(FIX, name), 'utf8')) as T;

const K8S_RESOLV = 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n';

function podFacts(): NetworkFacts {
  return { addrs: load<IpLink[]>('pod-addr.json'), routes: load<IpRoute[]>('pod-route.json'), routes6: load<IpRoute[]>('pod-route6.json'), resolvConf: K8S_RESOLV };
}

function bridged(plan: NetworkPlan) {
  if (plan.mode !== 'bridged') throw new Error(`expected a bridged plan, got ${plan.mode}`);
  return plan;
}

describe('planNetwork: pod namespace (eth0 10.88.0.2/24 + IPv6, eth1)', () => {
  const plan = bridged(planNetwork(podFacts(), { mode: 'auto' }));
  const eth0 = plan.interfaces[0]!;
  const podMac = load<IpLink[]>('pod-addr.json').find((l) => l.ifname === 'eth0')!.address!;

  it('bridges every ethN through br-ethN with tap-ethN, the identity IP on br-eth0 only', () => {
    expect(plan.bridge).toBe('br-eth0');
    expect(plan.identityIp).toBe('169.254.1.254/32');
    expect(plan.interfaces.map((i) => [i.name, i.bridge, i.tap, i.bridgeAddress])).toEqual([
      ['eth0', 'br-eth0', 'tap-eth0', IDENTITY_CIDR],
      ['eth1', 'br-eth1', 'tap-eth1', undefined],
    ]);
  });

  it('never puts the pod IP on the bridge', () => {
    const bridgeAddrs = plan.steps.filter((s) => s.args[0] === 'addr' && s.args[1] === 'add' && s.args.includes('br-eth0'));
    expect(bridgeAddrs.map((s) => s.args)).toEqual([['addr', 'add', '169.254.1.254/32', 'dev', 'br-eth0']]);
  });

  it('swaps MACs: the VM NIC carries the real MAC, eth0 a locally administered unicast dummy', () => {
    expect(eth0.podMac).toBe(podMac);
    expect(plan.nics[0]).toEqual({ id: 'net0', tap: 'tap-eth0', mac: podMac });
    expect(eth0.dummyMac).not.toBe(podMac);
    expect(isLocallyAdministered(eth0.dummyMac) && isUnicast(eth0.dummyMac)).toBe(true);
    expect(plan.steps.find((s) => s.args.join(' ') === `link set eth0 address ${eth0.dummyMac}`)?.undo).toEqual([['link', 'set', 'eth0', 'address', podMac]]);
  });

  it('gives the guest the pod IPs (v4 and global v6, not link-local) and the MTU', () => {
    expect(plan.guest.interfaces[0]).toEqual({
      name: 'eth0',
      mac: podMac,
      mtu: 1450,
      addresses: [
        { family: 'inet', cidr: '10.88.0.2/24' },
        { family: 'inet6', cidr: 'fd00:88::2/64' },
      ],
    });
    expect(plan.guest.interfaces[1]!.addresses).toEqual([{ family: 'inet', cidr: '192.168.77.5/28' }]);
  });

  it('routes the identity IP via eth0 first, then the pod routes, without kernel (connected) routes', () => {
    expect(plan.guest.routes).toEqual([
      { dst: '169.254.1.254', family: 'inet', dev: 'eth0' },
      { dst: '10.200.0.0/16', family: 'inet', via: '10.88.0.1', dev: 'eth0' },
      { dst: 'default', family: 'inet', via: '10.88.0.1', dev: 'eth0' },
      { dst: 'default', family: 'inet6', via: 'fd00:88::1', dev: 'eth0' },
    ]);
  });

  it('orders the container-side steps: bridge and tap, flush eth0, MAC swap, enslave, identity IP, up, route back', () => {
    const eth0Steps = plan.steps.filter((s) => s.args.some((a) => a.endsWith('eth0'))).map((s) => s.args.join(' '));
    expect(eth0Steps).toEqual([
      'link add br-eth0 type bridge',
      `link set br-eth0 address ${eth0.dummyMac} mtu 1450`,
      'tuntap add dev tap-eth0 mode tap',
      'link set tap-eth0 mtu 1450',
      'link set br-eth0 addrgenmode none',
      'link set tap-eth0 addrgenmode none',
      `link set eth0 alias runcvm1 mac=${podMac} mtu=1450 a=10.88.0.2/24,fd00:88::2/64 r=10.200.0.0/16,10.88.0.1,eth0|default,10.88.0.1,eth0|default,fd00:88::1,eth0`,
      'addr flush dev eth0',
      'link set eth0 down',
      'link set eth0 addrgenmode none',
      `link set eth0 address ${eth0.dummyMac}`,
      'link set eth0 master br-eth0',
      'link set tap-eth0 master br-eth0',
      'addr add 169.254.1.254/32 dev br-eth0',
      'link set eth0 up',
      'link set tap-eth0 up',
      'link set br-eth0 up',
      'route add 10.88.0.2/32 dev br-eth0 src 169.254.1.254',
    ]);
  });

  it('undo of the flush restores the addresses, then the routes in a working order', () => {
    const flush = plan.steps.find((s) => s.args.join(' ') === 'addr flush dev eth0')!;
    expect(flush.undo).toEqual([
      ['addr', 'add', '10.88.0.2/24', 'dev', 'eth0'],
      ['-6', 'addr', 'add', 'fd00:88::2/64', 'dev', 'eth0', 'nodad'],
      ['route', 'add', '10.200.0.0/16', 'via', '10.88.0.1', 'dev', 'eth0'],
      ['route', 'add', 'default', 'via', '10.88.0.1', 'dev', 'eth0'],
      ['-6', 'route', 'add', 'default', 'via', 'fd00:88::1', 'dev', 'eth0'],
    ]);
  });

  it('owns the tap by the hypervisor user when it is not root', () => {
    const p = bridged(planNetwork(podFacts(), { mode: 'auto', tapOwner: { uid: 1000, gid: 1000 } }));
    expect(p.steps.find((s) => s.args[0] === 'tuntap')!.args).toEqual(['tuntap', 'add', 'dev', 'tap-eth0', 'mode', 'tap', 'user', '1000', 'group', '1000']);
  });

  it('takes DNS from resolv.conf', () => {
    expect(plan.guest.dns).toEqual({ nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], options: ['ndots:5'] });
    expect(plan.guest.waitMs).toBe(10_000);
  });

  it('prints a readable summary', () => {
    const text = describePlan(plan).join('\n');
    expect(text).toContain(`network: eth0 → VM (mac ${podMac}, mtu 1450, 10.88.0.2/24 fd00:88::2/64)`);
    expect(text).toContain('guest route: 169.254.1.254 dev eth0');
    expect(text).toContain('guest route: default via 10.88.0.1 dev eth0');
  });
});

describe('planNetwork: Calico-style /32 pod with a link-scope gateway', () => {
  const plan = bridged(planNetwork({ addrs: load('calico-addr.json'), routes: load('calico-route.json') }, { mode: 'auto' }));

  it('adds the link route to the gateway before the default route that uses it', () => {
    expect(plan.guest.routes).toEqual([
      { dst: '169.254.1.254', family: 'inet', dev: 'eth0' },
      { dst: '169.254.1.1', family: 'inet', dev: 'eth0' },
      { dst: 'default', family: 'inet', via: '169.254.1.1', dev: 'eth0' },
    ]);
    expect(plan.guest.interfaces[0]!.addresses).toEqual([{ family: 'inet', cidr: '10.244.1.17/32' }]);
  });
});

describe('planNetwork: --network none and refusals', () => {
  it('loopback only → mode none, no NIC, no steps', () => {
    const plan = planNetwork({ addrs: load('none-addr.json'), routes: load('none-route.json') }, { mode: 'auto' });
    expect(plan.mode).toBe('none');
    expect(plan.nics).toEqual([]);
    expect(plan.steps).toEqual([]);
    expect(plan.mode === 'none' && plan.reason).toContain('--network none');
    expect(guestNetCmdline(plan.guest)).toBe('');
  });

  it('mode none never touches the namespace, whatever is in it', () => {
    const plan = planNetwork(podFacts(), { mode: 'none' });
    expect(plan.mode).toBe('none');
    expect(plan.steps).toEqual([]);
  });

  it('refuses a namespace another VM already bridged, with the fix', () => {
    const addrs = load<IpLink[]>('pod-addr.json').map((l) => (l.ifname === 'eth0' ? { ...l, master: 'br-eth0' } : l));
    expect(() => planNetwork({ addrs, routes: [] }, { mode: 'auto' })).toThrow(NetworkPlanError);
    expect(() => planNetwork({ addrs, routes: [] }, { mode: 'auto' })).toThrow(/already bridged \(eth0 is a member of br-eth0\) and holds no runcvm record/);
  });

  it('skips non-Ethernet eth* links with a warning', () => {
    const addrs = load<IpLink[]>('pod-addr.json').map((l) => (l.ifname === 'eth1' ? { ...l, link_type: 'none' } : l));
    const plan = bridged(planNetwork({ addrs, routes: [] }, { mode: 'auto' }));
    expect(plan.interfaces.map((i) => i.name)).toEqual(['eth0']);
    expect(plan.warnings).toEqual(['eth1 is not an Ethernet interface (none); not handed to the VM']);
  });
});

describe('dummy MAC', () => {
  it('is deterministic, per interface, locally administered and unicast', () => {
    const a = dummyMacFor('fa:0d:1f:38:0c:ca', 'eth0');
    expect(a).toBe(dummyMacFor('FA:0D:1F:38:0C:CA', 'eth0'));
    expect(a).not.toBe(dummyMacFor('fa:0d:1f:38:0c:ca', 'eth1'));
    for (let i = 0; i < 200; i++) {
      const mac = `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      const d = dummyMacFor(mac, 'eth0');
      expect(d).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(isLocallyAdministered(d) && isUnicast(d) && d !== mac).toBe(true);
    }
  });
});

describe('guest config on the kernel command line', () => {
  it('round-trips and stays short', () => {
    const plan = bridged(planNetwork(podFacts(), { mode: 'auto' }));
    const line = guestNetCmdline(plan.guest);
    expect(line).toContain(`runcvm.net.if=eth0,${plan.interfaces[0]!.podMac},1450,10.88.0.2/24,fd00:88::2/64`);
    expect(line).toContain('runcvm.net.route=169.254.1.254,-,eth0');
    expect(line).toContain('runcvm.net.route=default,10.88.0.1,eth0');
    expect(line).toContain('runcvm.net.dns=10.96.0.10 runcvm.net.search=default.svc.cluster.local,svc.cluster.local,cluster.local runcvm.net.dnsopt=ndots:5');
    expect(line).toMatch(/runcvm\.net\.wait=10000$/);
    expect(line.length).toBeLessThan(700);
    expect(parseGuestNetCmdline(`console=ttyS0 root=/dev/vda ${line} quiet`)).toEqual(plan.guest);
  });

  it('keeps onlink and metrics', () => {
    const plan = bridged(
      planNetwork(
        { addrs: load('calico-addr.json'), routes: [{ dst: 'default', gateway: '10.0.0.1', dev: 'eth0', flags: ['onlink'], metric: 100 }] },
        { mode: 'auto' },
      ),
    );
    expect(guestNetCmdline(plan.guest)).toContain('runcvm.net.route=default,10.0.0.1,eth0,onlink,metric=100');
    expect(parseGuestNetCmdline(guestNetCmdline(plan.guest)).routes[1]).toEqual({ dst: 'default', family: 'inet', via: '10.0.0.1', dev: 'eth0', onlink: true, metric: 100 });
  });
});

describe('parseResolvConf', () => {
  it('reads nameservers, the last search line, options; ignores comments', () => {
    expect(parseResolvConf('# generated\nnameserver 1.1.1.1 # primary\nsearch a b\ndomain c\nnameserver 8.8.8.8\noptions ndots:2 edns0\n')).toEqual({
      nameservers: ['1.1.1.1', '8.8.8.8'],
      search: ['c'],
      options: ['ndots:2', 'edns0'],
    });
    expect(parseResolvConf(undefined)).toEqual({ nameservers: [], search: [], options: [] });
  });
});

describe('crash recovery: a namespace left bridged by a killed launcher (fixtures captured after apply without undo)', () => {
  const before = load<IpLink[]>('stale-before-addr.json');
  const podMac = before.find((l) => l.ifname === 'eth0')!.address!;
  const stale: NetworkFacts = { addrs: load('stale-addr.json'), routes: load('stale-route.json'), routes6: load('stale-route6.json') };

  it('the stash in the alias round-trips and fits IFALIASZ', () => {
    const eth0 = stale.addrs.find((l) => l.ifname === 'eth0')!;
    expect(eth0.master).toBe('br-eth0');
    const stash = decodeStash(eth0.ifalias)!;
    expect(stash).toEqual({
      podMac,
      mtu: 1450,
      addresses: [
        { family: 'inet', cidr: '10.88.0.2/24' },
        { family: 'inet6', cidr: 'fd00:88::2/64' },
      ],
      routes: [
        { dst: '10.200.0.0/16', family: 'inet', via: '10.88.0.1', dev: 'eth0' },
        { dst: 'default', family: 'inet', via: '10.88.0.1', dev: 'eth0' },
      ],
    });
    expect(encodeStash(stash)).toBe(eth0.ifalias);
    const huge = { ...stash, routes: Array.from({ length: 20 }, (_v, i) => ({ dst: `10.${i}.0.0/16`, family: 'inet' as const, via: '10.88.0.1', dev: 'eth0' })) };
    expect(encodeStash(huge)).toBeUndefined();
    expect(decodeStash('something else')).toBeUndefined();
  });

  it('restores eth0 first (real MAC, addresses, routes), then plans the same as for a fresh pod', () => {
    const plan = bridged(planNetwork(stale, { mode: 'auto' }));
    expect(plan.warnings).toEqual(['eth0 was left bridged by a launcher that did not finish (killed?); restored it from its runcvm record first']);
    const recovery = plan.steps.filter((s) => s.why.startsWith('recover')).map((s) => s.args.join(' '));
    expect(recovery).toEqual([
      'link del tap-eth0',
      'link del br-eth0',
      'link set eth0 down',
      `link set eth0 address ${podMac}`,
      'link set eth0 addrgenmode eui64',
      'link set eth0 up',
      'addr add 10.88.0.2/24 dev eth0',
      '-6 addr add fd00:88::2/64 dev eth0 nodad',
      'route add 10.200.0.0/16 via 10.88.0.1 dev eth0',
      'route add default via 10.88.0.1 dev eth0',
    ]);
    const fresh = bridged(planNetwork({ addrs: before, routes: [] }, { mode: 'auto' }));
    expect(plan.nics).toEqual([{ id: 'net0', tap: 'tap-eth0', mac: podMac }]);
    expect(plan.guest.interfaces).toEqual(fresh.guest.interfaces);
    expect(plan.interfaces[0]!.dummyMac).toBe(fresh.interfaces[0]!.dummyMac);
    expect(plan.guest.routes).toEqual([
      { dst: '169.254.1.254', family: 'inet', dev: 'eth0' },
      { dst: '10.200.0.0/16', family: 'inet', via: '10.88.0.1', dev: 'eth0' },
      { dst: 'default', family: 'inet', via: '10.88.0.1', dev: 'eth0' },
    ]);
  });

  it('refuses when the tap has carrier: a live VM holds the namespace', () => {
    const live = { ...stale, addrs: stale.addrs.map((l) => (l.ifname === 'tap-eth0' ? { ...l, flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'] } : l)) };
    expect(() => planNetwork(live, { mode: 'auto' })).toThrow(/already handed to a running VM \(eth0 is a member of br-eth0, and tap-eth0 is in use\)/);
  });
});
