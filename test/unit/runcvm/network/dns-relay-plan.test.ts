/**
 * The DNS relay decision for Docker's embedded DNS (plan.ts: planDnsRelay, isRelaySource, the guest's
 * runcvm.net.dnsrelay / runcvm.net.resolvconf parameters), on the pod fixtures captured with real `ip -json`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  describePlan,
  DOCKER_DNS_IP,
  guestNetCmdline,
  IDENTITY_IP,
  isRelaySource,
  parseGuestNetCmdline,
  planNetwork,
  RESOLV_CONF_MAX,
  type IpLink,
  type IpRoute,
  type NetworkFacts,
  type NetworkPlan,
} from '../../../../src/runcvm/network/plan.js';

const FIX = join(__dirname, '../../../fixtures/network');
const load = <T>(name: string): T => JSON.parse(readFileSync(join(FIX, name), 'utf8')) as T;

/** what dockerd writes for a container on a user-defined network (its prestart hook, after runcvm's create) */
const DOCKER_RESOLV = 'nameserver 127.0.0.11\noptions ndots:0\n';
const K8S_RESOLV = 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n';

function facts(resolvConf: string | undefined, fixture = 'pod'): NetworkFacts {
  const f: NetworkFacts = { addrs: load<IpLink[]>(`${fixture}-addr.json`), routes: load<IpRoute[]>(`${fixture}-route.json`) };
  if (resolvConf !== undefined) f.resolvConf = resolvConf;
  return f;
}

function bridged(plan: NetworkPlan) {
  if (plan.mode !== 'bridged') throw new Error(`expected a bridged plan, got ${plan.mode}`);
  return plan;
}

describe('planDnsRelay: only for a resolv.conf naming Docker embedded DNS', () => {
  it('Docker user-defined network: launcher relays the identity IP to 127.0.0.11, only for the VM addresses', () => {
    const plan = bridged(planNetwork(facts(DOCKER_RESOLV), { mode: 'auto' }));
    const podIps = plan.interfaces.flatMap((h) => h.addresses.filter((a) => a.family === 'inet').map((a) => a.cidr.split('/')[0]));
    expect(podIps).toContain('10.88.0.2');
    expect(plan.dnsRelay).toEqual({ listen: IDENTITY_IP, port: 53, upstream: DOCKER_DNS_IP, upstreamPort: 53, allowedSources: podIps });
    expect(plan.guest.dnsRelay).toEqual({ listen: '127.0.0.11', via: '169.254.1.254' });
    // the guest gets the engine's file verbatim (the copy made at create predates Docker's rewrite)
    expect(plan.guest.resolvConf).toBe(DOCKER_RESOLV);
    expect(describePlan(plan)).toContain('dns relay: VM 127.0.0.11:53 → 169.254.1.254:53 (launcher) → 127.0.0.11:53 (the engine\'s DNS)');
  });

  it('round-trips through the kernel command line, without spaces or newlines in any parameter', () => {
    const plan = bridged(planNetwork(facts(DOCKER_RESOLV), { mode: 'auto' }));
    const cmdline = guestNetCmdline(plan.guest);
    expect(cmdline).toContain('runcvm.net.dnsrelay=127.0.0.11,169.254.1.254');
    const words = cmdline.split(' ');
    const rc = words.find((w) => w.startsWith('runcvm.net.resolvconf='));
    expect(rc).toBe(`runcvm.net.resolvconf=${Buffer.from(DOCKER_RESOLV).toString('base64')}`);
    expect(parseGuestNetCmdline(cmdline)).toEqual(plan.guest);
  });

  it.each([
    ['Kubernetes (cluster DNS)', K8S_RESOLV],
    ['the host resolvers', 'nameserver 10.255.255.53\n'],
    ['no resolv.conf', undefined],
    ['127.0.0.11 only in a comment', '# nameserver 127.0.0.11\nnameserver 192.0.2.53\n'],
  ])('%s: no relay, and the guest parameters are unchanged', (_name, resolvConf) => {
    const plan = bridged(planNetwork(facts(resolvConf), { mode: 'auto' }));
    expect(plan.dnsRelay).toBeUndefined();
    expect(plan.guest.dnsRelay).toBeUndefined();
    expect(plan.guest.resolvConf).toBeUndefined();
    const cmdline = guestNetCmdline(plan.guest);
    expect(cmdline).not.toContain('dnsrelay');
    expect(cmdline).not.toContain('resolvconf');
  });

  it('127.0.0.11 next to other nameservers still gets the relay (only that nameserver is relayed)', () => {
    const plan = bridged(planNetwork(facts('nameserver 192.0.2.53\nnameserver 127.0.0.11\n'), { mode: 'auto' }));
    expect(plan.dnsRelay?.upstream).toBe('127.0.0.11');
  });

  it('--network none or a namespace runcvm must not touch: no relay', () => {
    expect(planNetwork(facts(DOCKER_RESOLV, 'none'), { mode: 'auto' })).not.toHaveProperty('dnsRelay');
    const none = planNetwork(facts(DOCKER_RESOLV), { mode: 'none' });
    expect(none).not.toHaveProperty('dnsRelay');
    expect(none.guest.dnsRelay).toBeUndefined();
  });

  it('an eth0 without an IPv4 address: no relay (the guest could not send from an address the launcher accepts)', () => {
    const f = facts(DOCKER_RESOLV);
    f.addrs = f.addrs.map((l) => (l.ifname.startsWith('eth') ? { ...l, addr_info: (l.addr_info ?? []).filter((a) => a.family !== 'inet') } : l));
    const plan = bridged(planNetwork(f, { mode: 'auto' }));
    expect(plan.dnsRelay).toBeUndefined();
    expect(guestNetCmdline(plan.guest)).not.toContain('dnsrelay');
  });

  it('a resolv.conf too long for the kernel command line: relay kept, the VM keeps its copy, and a warning says so', () => {
    const long = `${DOCKER_RESOLV}search ${'a'.repeat(RESOLV_CONF_MAX)}.example\n`;
    const plan = bridged(planNetwork(facts(long), { mode: 'auto' }));
    expect(plan.dnsRelay).toBeDefined();
    expect(plan.guest.resolvConf).toBeUndefined();
    expect(plan.warnings.join('\n')).toMatch(/resolv\.conf is \d+ bytes .*the VM keeps the copy made at create/);
  });
});

describe('isRelaySource', () => {
  const relay = { allowedSources: ['10.88.0.2'] };
  it.each([
    ['10.88.0.2', true],
    ['::ffff:10.88.0.2', true],
    ['10.88.0.3', false],
    ['127.0.0.1', false],
    ['169.254.1.254', false],
    ['', false],
  ])('%s → %s', (address, want) => {
    expect(isRelaySource(relay, address)).toBe(want);
  });
});
