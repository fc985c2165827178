/**
 * Network plan: the container's network namespace, as `ip -json` reported it, → NetworkPlan. Pure: the launcher
 * reads the facts (network/apply.ts) and passes them in, so `runcvm plan` and the unit tests use the same function.
 *
 * The contract (RunCVM guide §2, §3, §5): each `ethN` the engine or CNI configured is handed to the VM through a
 * bridge `br-ethN` whose members are `ethN` and the VM's `tap-ethN`. The VM carries the interface's real MAC and its
 * IP addresses, routes, MTU and DNS; the container side keeps a dummy MAC, and `br-eth0` carries only the identity
 * IP 169.254.1.254/32, never the pod IP. The guest routes 169.254.1.254 via eth0 so it can always reach the
 * container side (NFS exports), and the container side routes the pod IP via br-eth0 to answer it.
 */
import { createHash } from 'node:crypto';

export const IDENTITY_IP = '169.254.1.254';
export const IDENTITY_CIDR = `${IDENTITY_IP}/32`;
export const DEFAULT_MTU = 1500;
/** the guest waits this long for its eth* interfaces (guide §2) */
export const GUEST_IFACE_WAIT_MS = 10_000;

// ----- `ip -json` shapes (only the fields used; iproute2 6.x) -----

export interface IpAddrInfo {
  family: 'inet' | 'inet6' | string;
  local: string;
  prefixlen: number;
  scope?: string;
  broadcast?: string;
  [k: string]: unknown;
}

export interface IpLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu?: number;
  link_type?: string;
  address?: string;
  master?: string;
  /** `ip -d -json addr` shows it; runcvm keeps each handed interface's original config here (see encodeStash) */
  ifalias?: string;
  addr_info?: IpAddrInfo[];
  [k: string]: unknown;
}

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags?: string[];
  type?: string;
  [k: string]: unknown;
}

export interface NetworkFacts {
  /** `ip -json addr show` */
  addrs: readonly IpLink[];
  /** `ip -json route show` (IPv4, main table) */
  routes: readonly IpRoute[];
  /** `ip -json -6 route show`, when IPv6 is available */
  routes6?: readonly IpRoute[];
  /** the container's /etc/resolv.conf text, if any */
  resolvConf?: string;
}

export interface NetworkRequest {
  /**
   * 'auto': hand every ethN found to the VM (none found → loopback only, as `--network none`);
   * 'none': never touch the namespace (the container shares a namespace runcvm must not change, e.g. the host's).
   */
  mode: 'auto' | 'none';
  /** the owner of the taps, when the hypervisor does not run as root */
  tapOwner?: { uid: number; gid: number };
}

// ----- the plan -----

export interface PlannedAddress {
  family: 'inet' | 'inet6';
  /** address/prefix, e.g. 10.88.0.2/24 */
  cidr: string;
}

export interface GuestRoute {
  /** "default", a prefix or a host address */
  dst: string;
  family: 'inet' | 'inet6';
  via?: string;
  dev: string;
  onlink?: boolean;
  metric?: number;
}

export interface GuestInterface {
  name: string;
  /** the pod's real MAC */
  mac: string;
  mtu: number;
  addresses: PlannedAddress[];
}

export interface GuestDns {
  nameservers: string[];
  search: string[];
  options: string[];
}

export interface GuestNetwork {
  interfaces: GuestInterface[];
  /** in the order they must be added (link routes before the gateways that depend on them) */
  routes: GuestRoute[];
  dns: GuestDns;
  /** the guest relays DNS sent to `listen`:53 (its own loopback) to `via`:53 (the launcher); see planDnsRelay */
  dnsRelay?: { listen: string; via: string };
  /**
   * the engine's resolv.conf, verbatim, as the launcher reads it at start; the guest replaces its copy with it. Set
   * with the relay only: Docker rewrites the file for the embedded DNS in its prestart hook, after `create` copied
   * it into the VM's disk, so that copy still names the host's resolvers.
   */
  resolvConf?: string;
  /** how long the guest waits for its eth* interfaces */
  waitMs: number;
}

/** One container-side interface handed to the VM. */
export interface HandedInterface {
  name: string;
  bridge: string;
  tap: string;
  podMac: string;
  dummyMac: string;
  mtu: number;
  /** addresses removed from the container side (and restored on undo) */
  addresses: PlannedAddress[];
  /** non-kernel routes through this interface (restored on undo) */
  routes: GuestRoute[];
  /** the bridge's own address: IDENTITY_CIDR on br-eth0, none elsewhere */
  bridgeAddress?: string;
  /** the interface's alias before runcvm wrote its stash there ('' when none) */
  originalAlias: string;
}

/** One `ip` invocation (arguments after `ip`) with the commands that reverse it, in the order to run them. */
export interface IpStep {
  why: string;
  args: string[];
  undo: string[][];
  /** failure is logged, not fatal (e.g. IPv6 knobs on a kernel without IPv6) */
  optional?: boolean;
}

export interface NicPlan {
  /** QEMU id, e.g. net0 */
  id: string;
  tap: string;
  mac: string;
}

export type NetworkPlan =
  | { mode: 'none'; reason: string; guest: GuestNetwork; nics: []; steps: []; interfaces: []; warnings: string[] }
  | {
      mode: 'bridged';
      bridge: string;
      identityIp: string;
      interfaces: HandedInterface[];
      nics: NicPlan[];
      steps: IpStep[];
      guest: GuestNetwork;
      /** the launcher's half of the DNS relay (the guest's half is guest.dnsRelay) */
      dnsRelay?: DnsRelayPlan;
      warnings: string[];
    };

export class NetworkPlanError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'NetworkPlanError';
  }
}

// ----- helpers -----

const ETH = /^eth(\d+)$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function isEthName(name: string): boolean {
  return ETH.test(name);
}

function ethIndex(name: string): number {
  return Number(ETH.exec(name)?.[1] ?? 0);
}

export function normalizeMac(mac: string): string {
  return mac.trim().toLowerCase();
}

/**
 * The container-side MAC: derived from the pod MAC (so the same pod always gets the same one), locally administered
 * (bit 1 of the first octet set), unicast (bit 0 clear), and never equal to the pod MAC.
 */
export function dummyMacFor(podMac: string, ifname: string): string {
  const h = createHash('sha256').update(`runcvm-dummy-mac\n${normalizeMac(podMac)}\n${ifname}`).digest();
  const bytes = [...h.subarray(0, 6)];
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02;
  let mac = bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
  if (mac === normalizeMac(podMac)) {
    bytes[5] = (bytes[5] ?? 0) ^ 0x01;
    mac = bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
  }
  return mac;
}

export function isLocallyAdministered(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 0x02) === 0x02;
}

export function isUnicast(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 0x01) === 0;
}

/** resolv.conf → nameservers, search domains, options (later `search`/`domain` lines replace earlier ones, as libc does). */
export function parseResolvConf(text: string | undefined): GuestDns {
  const dns: GuestDns = { nameservers: [], search: [], options: [] };
  if (!text) return dns;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (!line) continue;
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver' && rest[0]) dns.nameservers.push(rest[0]);
    else if (key === 'search' || key === 'domain') dns.search = rest;
    else if (key === 'options') dns.options.push(...rest);
  }
  return dns;
}

function globalAddresses(link: IpLink): PlannedAddress[] {
  const out: PlannedAddress[] = [];
  for (const a of link.addr_info ?? []) {
    if (a.family !== 'inet' && a.family !== 'inet6') continue;
    if (a.scope === 'link' || a.scope === 'host') continue;
    out.push({ family: a.family, cidr: `${a.local}/${a.prefixlen}` });
  }
  return out;
}

function isKernelRoute(r: IpRoute): boolean {
  return r.protocol === 'kernel';
}

/** Routes through `dev` that the guest must add itself (connected routes come from its addresses). */
function routesVia(routes: readonly IpRoute[], family: 'inet' | 'inet6', dev: string): GuestRoute[] {
  const picked: GuestRoute[] = [];
  for (const r of routes) {
    if (r.dev !== dev || isKernelRoute(r)) continue;
    if (r.type && r.type !== 'unicast') continue;
    if (family === 'inet6' && (r.dst.startsWith('fe80:') || r.dst.startsWith('ff00:') || r.dst.startsWith('multicast'))) continue;
    const g: GuestRoute = { dst: r.dst, family, dev };
    if (r.gateway) g.via = r.gateway;
    if (r.flags?.includes('onlink')) g.onlink = true;
    if (family === 'inet6') {
      // the kernel's default metrics (256, 1024) are what the guest kernel picks too
      if (r.metric !== undefined && r.metric !== 256 && r.metric !== 1024) g.metric = r.metric;
    } else if (r.metric !== undefined && r.metric !== 0) g.metric = r.metric;
    picked.push(g);
  }
  // link routes (no gateway) first, then gateway routes, the default route last: a gateway is reachable only once
  // the route that leads to it exists (Calico: `169.254.1.1 dev eth0 scope link` before `default via 169.254.1.1`)
  const rank = (g: GuestRoute) => (g.via === undefined ? 0 : g.dst === 'default' ? 2 : 1);
  return picked.map((g, i) => ({ g, i })).sort((a, b) => rank(a.g) - rank(b.g) || a.i - b.i).map((x) => x.g);
}

export function routeArgs(r: GuestRoute, verb: 'add' | 'del' = 'add'): string[] {
  const args = r.family === 'inet6' ? ['-6', 'route', verb, r.dst] : ['route', verb, r.dst];
  if (r.via) args.push('via', r.via);
  args.push('dev', r.dev);
  if (r.onlink) args.push('onlink');
  if (r.metric !== undefined) args.push('metric', String(r.metric));
  return args;
}

export function addrArgs(a: PlannedAddress, dev: string): string[] {
  return a.family === 'inet6' ? ['-6', 'addr', 'add', a.cidr, 'dev', dev, 'nodad'] : ['addr', 'add', a.cidr, 'dev', dev];
}

function emptyGuest(dns: GuestDns): GuestNetwork {
  return { interfaces: [], routes: [], dns, waitMs: GUEST_IFACE_WAIT_MS };
}

// ----- the planner -----

export function planNetwork(observed: NetworkFacts, request: NetworkRequest): NetworkPlan {
  let facts = observed;
  const dns = parseResolvConf(facts.resolvConf);
  const warnings: string[] = [];
  if (request.mode === 'none') {
    return { mode: 'none', reason: 'networking disabled for this container', guest: emptyGuest(dns), nics: [], steps: [], interfaces: [], warnings };
  }

  // a namespace a previous launcher could not restore (SIGKILL): put it back first, then plan as usual
  const recovery = recoverStale(facts);
  facts = recovery.facts;
  warnings.push(...recovery.warnings);

  const eths = facts.addrs.filter((l) => isEthName(l.ifname)).sort((a, b) => ethIndex(a.ifname) - ethIndex(b.ifname));
  const handed: HandedInterface[] = [];
  for (const link of eths) {
    if (link.link_type !== undefined && link.link_type !== 'ether') {
      warnings.push(`${link.ifname} is not an Ethernet interface (${link.link_type}); not handed to the VM`);
      continue;
    }
    const podMac = normalizeMac(link.address ?? '');
    if (!MAC.test(podMac)) {
      warnings.push(`${link.ifname} has no usable MAC address (${link.address ?? 'none'}); not handed to the VM`);
      continue;
    }
    if (link.master) {
      warnings.push(`${link.ifname} is already a member of ${link.master}; not handed to the VM`);
      continue;
    }
    const n = ethIndex(link.ifname);
    const addresses = globalAddresses(link);
    const routes = [...routesVia(facts.routes, 'inet', link.ifname), ...routesVia(facts.routes6 ?? [], 'inet6', link.ifname)];
    const iface: HandedInterface = {
      name: link.ifname,
      bridge: `br-eth${n}`,
      tap: `tap-eth${n}`,
      podMac,
      dummyMac: dummyMacFor(podMac, link.ifname),
      mtu: link.mtu && link.mtu > 0 ? link.mtu : DEFAULT_MTU,
      addresses,
      routes,
      originalAlias: link.ifalias && !link.ifalias.startsWith(STASH_PREFIX) ? link.ifalias : '',
    };
    if (link.ifname === 'eth0') iface.bridgeAddress = IDENTITY_CIDR;
    if (addresses.length === 0) warnings.push(`${link.ifname} has no IP address; the VM gets the link only`);
    handed.push(iface);
  }

  if (handed.length === 0) {
    return {
      mode: 'none',
      reason: eths.length === 0 ? 'no eth* interface in the network namespace (--network none)' : 'no eth* interface could be handed to the VM',
      guest: emptyGuest(dns),
      nics: [],
      steps: [],
      interfaces: [],
      warnings,
    };
  }

  const guestRoutes: GuestRoute[] = [];
  if (handed.some((h) => h.name === 'eth0')) guestRoutes.push({ dst: IDENTITY_IP, family: 'inet', dev: 'eth0' });
  for (const h of handed) guestRoutes.push(...h.routes);

  const guest: GuestNetwork = {
    interfaces: handed.map((h) => ({ name: h.name, mac: h.podMac, mtu: h.mtu, addresses: h.addresses })),
    routes: guestRoutes,
    dns,
    waitMs: GUEST_IFACE_WAIT_MS,
  };
  const dnsRelay = planDnsRelay(dns, handed);
  if (dnsRelay) {
    guest.dnsRelay = { listen: DOCKER_DNS_IP, via: dnsRelay.listen };
    const text = facts.resolvConf ?? '';
    if (Buffer.byteLength(text) <= RESOLV_CONF_MAX) guest.resolvConf = text;
    else warnings.push(`resolv.conf is ${Buffer.byteLength(text)} bytes (more than ${RESOLV_CONF_MAX} for the kernel command line); the VM keeps the copy made at create`);
  }
  return {
    mode: 'bridged',
    bridge: 'br-eth0',
    identityIp: IDENTITY_CIDR,
    interfaces: handed,
    nics: handed.map((h) => ({ id: `net${ethIndex(h.name)}`, tap: h.tap, mac: h.podMac })),
    steps: [...recovery.steps, ...handed.flatMap((h) => stepsFor(h, request))],
    guest,
    ...(dnsRelay ? { dnsRelay } : {}),
    warnings,
  };
}

/**
 * The `ip` calls for one interface, in order, each with its undo. Undo runs in reverse step order, so the interface
 * comes back as it was: released from the bridge, its MAC and link state restored, then its addresses and routes.
 */
export function stepsFor(h: HandedInterface, request: Pick<NetworkRequest, 'tapOwner'>): IpStep[] {
  const { name: eth, bridge: br, tap } = h;
  const owner = request.tapOwner ? ['user', String(request.tapOwner.uid), 'group', String(request.tapOwner.gid)] : [];
  const restore = [...h.addresses.map((a) => addrArgs(a, eth)), ...h.routes.map((r) => routeArgs(r))];
  const steps: IpStep[] = [
    { why: `create the bridge ${br}`, args: ['link', 'add', br, 'type', 'bridge'], undo: [['link', 'del', br]] },
    { why: `${br}: dummy MAC and the pod MTU`, args: ['link', 'set', br, 'address', h.dummyMac, 'mtu', String(h.mtu)], undo: [] },
    { why: `create the VM's tap ${tap}`, args: ['tuntap', 'add', 'dev', tap, 'mode', 'tap', ...owner], undo: [['link', 'del', tap]] },
    { why: `${tap}: the pod MTU`, args: ['link', 'set', tap, 'mtu', String(h.mtu)], undo: [] },
    { why: `${br}, ${tap}: no IPv6 link-local address of their own`, args: ['link', 'set', br, 'addrgenmode', 'none'], undo: [], optional: true },
    { why: `${tap}: no IPv6 link-local address`, args: ['link', 'set', tap, 'addrgenmode', 'none'], undo: [], optional: true },
    ...stashStep(h),
    { why: `${eth}: hand its addresses to the VM`, args: ['addr', 'flush', 'dev', eth], undo: restore },
    { why: `${eth}: down for the MAC change`, args: ['link', 'set', eth, 'down'], undo: [['link', 'set', eth, 'up']] },
    { why: `${eth}: no IPv6 link-local address (the VM owns the pod's)`, args: ['link', 'set', eth, 'addrgenmode', 'none'], undo: [['link', 'set', eth, 'addrgenmode', 'eui64']], optional: true },
    { why: `${eth}: dummy MAC (the VM carries the real one)`, args: ['link', 'set', eth, 'address', h.dummyMac], undo: [['link', 'set', eth, 'address', h.podMac]] },
    { why: `${eth} joins ${br}`, args: ['link', 'set', eth, 'master', br], undo: [['link', 'set', eth, 'nomaster']] },
    { why: `${tap} joins ${br}`, args: ['link', 'set', tap, 'master', br], undo: [] },
  ];
  if (h.bridgeAddress) {
    steps.push({ why: `${br}: the identity IP (never the pod IP)`, args: ['addr', 'add', h.bridgeAddress, 'dev', br], undo: [] });
  }
  steps.push(
    // undone first: down, so that the later `up` (undo of the first down) regenerates its IPv6 link-local address
    { why: `${eth} up`, args: ['link', 'set', eth, 'up'], undo: [['link', 'set', eth, 'down']] },
    { why: `${tap} up`, args: ['link', 'set', tap, 'up'], undo: [] },
    { why: `${br} up`, args: ['link', 'set', br, 'up'], undo: [] },
  );
  if (h.bridgeAddress) {
    // the container side (NFS exports on the identity IP) answers the VM through the bridge
    for (const a of h.addresses.filter((x) => x.family === 'inet')) {
      const ip = a.cidr.split('/')[0]!;
      steps.push({ why: `route to the VM's ${ip} through ${br}`, args: ['route', 'add', `${ip}/32`, 'dev', br, 'src', IDENTITY_IP], undo: [] });
    }
  }
  return steps;
}

// ----- crash safety: the original config travels with the interface -----

/**
 * Each handed interface carries its original config in its alias (IFALIASZ: 255 bytes), so that when a launcher is
 * killed (SIGKILL, OOM) before its undo ran, the next container in the same pod (a Kubernetes restart) can restore
 * the namespace and start normally instead of failing on a half-bridged eth0:
 *   runcvm1 mac=MAC mtu=N a=CIDR,CIDR r=DST,VIA|-,DEV[,onlink][,metric=N]|…
 */
export const STASH_PREFIX = 'runcvm1 ';
const ALIAS_MAX = 255;

export interface Stash {
  podMac: string;
  mtu: number;
  addresses: PlannedAddress[];
  routes: GuestRoute[];
}

export function encodeStash(h: Pick<HandedInterface, 'podMac' | 'mtu' | 'addresses' | 'routes'>): string | undefined {
  const routes = h.routes.map((r) => [r.dst, r.via ?? '-', r.dev, ...(r.onlink ? ['onlink'] : []), ...(r.metric !== undefined ? [`metric=${r.metric}`] : [])].join(','));
  const text = `${STASH_PREFIX}mac=${h.podMac} mtu=${h.mtu} a=${h.addresses.map((a) => a.cidr).join(',')} r=${routes.join('|')}`;
  return text.length <= ALIAS_MAX ? text : undefined;
}

export function decodeStash(text: string | undefined): Stash | undefined {
  if (!text?.startsWith(STASH_PREFIX)) return undefined;
  const fields = new Map(text.slice(STASH_PREFIX.length).split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const podMac = normalizeMac(fields.get('mac') ?? '');
  if (!MAC.test(podMac)) return undefined;
  const addresses: PlannedAddress[] = (fields.get('a') ?? '').split(',').filter(Boolean).map((cidr) => ({ family: cidr.includes(':') ? 'inet6' : 'inet', cidr }));
  const routes = parseGuestNetCmdline((fields.get('r') ?? '').split('|').filter(Boolean).map((r) => `runcvm.net.route=${r}`).join(' ')).routes;
  return { podMac, mtu: Number(fields.get('mtu')) || DEFAULT_MTU, addresses, routes };
}

function stashStep(h: HandedInterface): IpStep[] {
  const stash = encodeStash(h);
  if (!stash) return [];
  return [{ why: `${h.name}: keep its original config in its alias (crash recovery)`, args: ['link', 'set', h.name, 'alias', stash], undo: [['link', 'set', h.name, 'alias', h.originalAlias]], optional: true }];
}

function hasCarrier(link: IpLink | undefined): boolean {
  return Boolean(link?.flags?.includes('LOWER_UP'));
}

/**
 * A namespace still bridged by a launcher that died: each ethN in br-ethN with a runcvm stash and a tap nobody holds
 * (no carrier) is put back as it was (steps without undo), and planning continues from the restored facts. A tap
 * with carrier means a live VM owns the namespace: refused. A bridge without a stash cannot be restored: refused.
 */
export function recoverStale(facts: NetworkFacts): { facts: NetworkFacts; steps: IpStep[]; warnings: string[] } {
  const byName = new Map(facts.addrs.map((l) => [l.ifname, l]));
  const bridgedEths = facts.addrs.filter((l) => isEthName(l.ifname) && l.master && /^br-eth\d+$/.test(l.master));
  const orphanBridges = facts.addrs.filter((l) => /^br-eth\d+$/.test(l.ifname) && !bridgedEths.some((e) => e.master === l.ifname));
  if (bridgedEths.length === 0 && orphanBridges.length === 0) return { facts, steps: [], warnings: [] };
  const fix =
    'run one runcvm container per network namespace (in a pod, one runcvm container; the others under runc); ' +
    'if no VM runs, recreate the pod (or in it: ip link del tap-eth0; ip link del br-eth0; and re-add the pod IP and MAC to eth0).';
  const steps: IpStep[] = [];
  const warnings: string[] = [];
  let addrs = [...facts.addrs];
  let routes = [...facts.routes];
  let routes6 = [...(facts.routes6 ?? [])];
  for (const eth of bridgedEths) {
    const n = ethIndex(eth.ifname);
    const tap = byName.get(`tap-eth${n}`);
    if (hasCarrier(tap)) throw new NetworkPlanError(`the network namespace is already handed to a running VM (${eth.ifname} is a member of ${eth.master}, and tap-eth${n} is in use)`, fix);
    const stash = decodeStash(eth.ifalias);
    if (!stash) throw new NetworkPlanError(`the network namespace is already bridged (${eth.ifname} is a member of ${eth.master}) and holds no runcvm record to restore it from`, fix);
    const name = eth.ifname;
    steps.push(
      { why: `recover ${name}: remove the stale tap-eth${n}`, args: ['link', 'del', `tap-eth${n}`], undo: [], optional: true },
      { why: `recover ${name}: remove the stale ${eth.master}`, args: ['link', 'del', eth.master!], undo: [], optional: true },
      { why: `recover ${name}: down`, args: ['link', 'set', name, 'down'], undo: [] },
      { why: `recover ${name}: its real MAC`, args: ['link', 'set', name, 'address', stash.podMac], undo: [] },
      { why: `recover ${name}: IPv6 link-local again`, args: ['link', 'set', name, 'addrgenmode', 'eui64'], undo: [], optional: true },
      { why: `recover ${name}: up`, args: ['link', 'set', name, 'up'], undo: [] },
      ...stash.addresses.map((a) => ({ why: `recover ${name}: address ${a.cidr}`, args: addrArgs(a, name), undo: [] })),
      ...stash.routes.map((r) => ({ why: `recover ${name}: route ${r.dst}`, args: routeArgs(r), undo: [] })),
    );
    warnings.push(`${name} was left bridged by a launcher that did not finish (killed?); restored it from its runcvm record first`);
    // the facts as they will be once restored
    addrs = addrs
      .filter((l) => l.ifname !== `tap-eth${n}` && l.ifname !== eth.master)
      .map((l) => {
        if (l.ifname !== name) return l;
        const { master: _master, ifalias: _alias, ...rest } = l;
        const addr_info: IpAddrInfo[] = stash.addresses.map((a) => {
          const [local = '', prefix = '32'] = a.cidr.split('/');
          return { family: a.family, local, prefixlen: Number(prefix), scope: 'global' };
        });
        return { ...rest, address: stash.podMac, mtu: stash.mtu, addr_info };
      });
    const asIpRoute = (r: GuestRoute): IpRoute => ({ dst: r.dst, dev: r.dev, ...(r.via ? { gateway: r.via } : {}), ...(r.metric !== undefined ? { metric: r.metric } : {}), flags: r.onlink ? ['onlink'] : [] });
    routes = [...routes.filter((r) => r.dev !== name), ...stash.routes.filter((r) => r.family === 'inet').map(asIpRoute)];
    routes6 = [...routes6.filter((r) => r.dev !== name), ...stash.routes.filter((r) => r.family === 'inet6').map(asIpRoute)];
  }
  for (const br of orphanBridges) {
    const n = ethIndex(br.ifname.slice(3));
    const tap = byName.get(`tap-eth${n}`);
    if (hasCarrier(tap)) throw new NetworkPlanError(`the network namespace is already handed to a running VM (${br.ifname} exists and tap-eth${n} is in use)`, fix);
    steps.push(
      { why: `remove the stale tap-eth${n}`, args: ['link', 'del', `tap-eth${n}`], undo: [], optional: true },
      { why: `remove the stale ${br.ifname}`, args: ['link', 'del', br.ifname], undo: [], optional: true },
    );
    addrs = addrs.filter((l) => l.ifname !== `tap-eth${n}` && l.ifname !== br.ifname);
    warnings.push(`${br.ifname} was left behind by a launcher that did not finish; removed it`);
  }
  const out: NetworkFacts = { ...facts, addrs, routes };
  if (facts.routes6) out.routes6 = routes6;
  return { facts: out, steps, warnings };
}

// ----- Docker's embedded DNS -----

/**
 * Docker's embedded DNS server. On a user-defined network the container's resolv.conf names it, and dockerd answers
 * it only inside the container's network namespace (an iptables DNAT there to its own listener). In the VM the same
 * address is the guest's own loopback, so runcvm relays it in two hops that keep the workload's view unchanged:
 * the guest listens on 127.0.0.11:53 and forwards to the identity IP; the launcher, which lives in the container's
 * namespace, listens on the identity IP:53 and forwards to 127.0.0.11:53, where dockerd answers as under runc.
 */
export const DOCKER_DNS_IP = '127.0.0.11';
export const DNS_PORT = 53;
/** resolv.conf bytes sent verbatim to the guest (base64 on the kernel command line, which holds 2047 bytes in all) */
export const RESOLV_CONF_MAX = 600;

export interface DnsRelayPlan {
  /** where the launcher listens (the identity IP on br-eth0: it exists only in the container's namespace) */
  listen: string;
  port: number;
  /** where the launcher forwards, in the container's namespace */
  upstream: string;
  upstreamPort: number;
  /** the VM's IPv4 addresses: the only sources the launcher relays for (the answers go back to the VM anyway) */
  allowedSources: string[];
}

/**
 * A DNS relay is planned only when the container's resolv.conf names Docker's embedded DNS and eth0 (the one with
 * the identity IP) goes to the VM with an IPv4 address the guest can send from. Any other resolv.conf: no relay,
 * nothing changes.
 */
export function planDnsRelay(dns: GuestDns, handed: readonly HandedInterface[]): DnsRelayPlan | undefined {
  if (!dns.nameservers.includes(DOCKER_DNS_IP)) return undefined;
  const eth0 = handed.find((h) => h.name === 'eth0' && h.bridgeAddress === IDENTITY_CIDR);
  if (!eth0) return undefined;
  const allowedSources = handed.flatMap((h) => h.addresses.filter((a) => a.family === 'inet').map((a) => a.cidr.split('/')[0]!));
  if (allowedSources.length === 0) return undefined;
  return { listen: IDENTITY_IP, port: DNS_PORT, upstream: DOCKER_DNS_IP, upstreamPort: DNS_PORT, allowedSources };
}

/**
 * The VM's own addresses (every address handed to it, without its prefix): the only peers the launcher's services
 * on the identity IP answer (the NFS server; the DNS relay keeps its IPv4 subset). None without a network.
 */
export function guestAddresses(plan: NetworkPlan): string[] {
  return plan.mode === 'bridged' ? plan.interfaces.flatMap((h) => h.addresses.map((a) => a.cidr.split('/')[0]!)) : [];
}

/** Whether the launcher's relay answers a query from this address (IPv4-mapped IPv6 forms count as IPv4). */
export function isRelaySource(relay: Pick<DnsRelayPlan, 'allowedSources'>, address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return relay.allowedSources.includes(v4);
}

// ----- the guest's view, on the kernel command line -----

/**
 * The guest network config as kernel command line parameters (read by the guest init from /proc/cmdline; dotted
 * names are never passed to init as arguments or environment). Works for every hypervisor that boots a kernel.
 *   runcvm.net.if=NAME,MAC,MTU[,ADDR/PREFIX...]
 *   runcvm.net.route=DST,VIA|-,DEV[,onlink][,metric=N]        (in order; IPv6 when DST or VIA holds ':')
 *   runcvm.net.dns=NS[,NS...]  runcvm.net.search=D[,D...]  runcvm.net.dnsopt=O[,O...]
 *   runcvm.net.dnsrelay=LISTEN,VIA                              (guest relays LISTEN:53 to VIA:53; see planDnsRelay)
 *   runcvm.net.resolvconf=BASE64                                (the guest writes it as /etc/resolv.conf)
 *   runcvm.net.wait=MS
 */
export function guestNetCmdline(g: GuestNetwork): string {
  if (g.interfaces.length === 0) return '';
  const parts: string[] = [];
  for (const i of g.interfaces) parts.push(`runcvm.net.if=${[i.name, i.mac, String(i.mtu), ...i.addresses.map((a) => a.cidr)].join(',')}`);
  for (const r of g.routes) {
    const f = [r.dst, r.via ?? '-', r.dev];
    if (r.onlink) f.push('onlink');
    if (r.metric !== undefined) f.push(`metric=${r.metric}`);
    parts.push(`runcvm.net.route=${f.join(',')}`);
  }
  const clean = (xs: string[]) => xs.filter((x) => /^[^\s,"]+$/.test(x));
  if (g.dns.nameservers.length) parts.push(`runcvm.net.dns=${clean(g.dns.nameservers).join(',')}`);
  if (g.dns.search.length) parts.push(`runcvm.net.search=${clean(g.dns.search).join(',')}`);
  if (g.dns.options.length) parts.push(`runcvm.net.dnsopt=${clean(g.dns.options).join(',')}`);
  if (g.dnsRelay) parts.push(`runcvm.net.dnsrelay=${g.dnsRelay.listen},${g.dnsRelay.via}`);
  // base64: the text holds spaces and newlines, which end a kernel parameter
  if (g.resolvConf !== undefined) parts.push(`runcvm.net.resolvconf=${Buffer.from(g.resolvConf, 'utf8').toString('base64')}`);
  parts.push(`runcvm.net.wait=${g.waitMs}`);
  return parts.join(' ');
}

/** The inverse of guestNetCmdline (tests; `runcvm plan` round trip). */
export function parseGuestNetCmdline(cmdline: string): GuestNetwork {
  const g: GuestNetwork = { interfaces: [], routes: [], dns: { nameservers: [], search: [], options: [] }, waitMs: GUEST_IFACE_WAIT_MS };
  for (const word of cmdline.split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq < 0) continue;
    const key = word.slice(0, eq);
    const f = word.slice(eq + 1).split(',');
    if (key === 'runcvm.net.if') {
      const [name = '', mac = '', mtu = '1500', ...addrs] = f;
      g.interfaces.push({ name, mac, mtu: Number(mtu), addresses: addrs.map((cidr) => ({ family: cidr.includes(':') ? 'inet6' : 'inet', cidr })) });
    } else if (key === 'runcvm.net.route') {
      const [dst = '', via = '-', dev = '', ...flags] = f;
      const r: GuestRoute = { dst, family: dst.includes(':') || via.includes(':') ? 'inet6' : 'inet', dev };
      if (via !== '-') r.via = via;
      for (const fl of flags) {
        if (fl === 'onlink') r.onlink = true;
        else if (fl.startsWith('metric=')) r.metric = Number(fl.slice(7));
      }
      g.routes.push(r);
    } else if (key === 'runcvm.net.dns') g.dns.nameservers = f;
    else if (key === 'runcvm.net.search') g.dns.search = f;
    else if (key === 'runcvm.net.dnsopt') g.dns.options = f;
    else if (key === 'runcvm.net.dnsrelay' && f[0] && f[1]) g.dnsRelay = { listen: f[0], via: f[1] };
    else if (key === 'runcvm.net.resolvconf') g.resolvConf = Buffer.from(word.slice(eq + 1), 'base64').toString('utf8');
    else if (key === 'runcvm.net.wait') g.waitMs = Number(f[0]);
  }
  return g;
}

/** The IPv4 default route "default" with family inet6 is "::/0" for busybox ip; kept as "default" (both accept it). */
export function describePlan(plan: NetworkPlan): string[] {
  if (plan.mode === 'none') return [`network: none (${plan.reason})`, ...plan.warnings.map((w) => `warning: ${w}`)];
  const lines: string[] = [];
  for (const h of plan.interfaces) {
    lines.push(
      `network: ${h.name} → VM (mac ${h.podMac}, mtu ${h.mtu}, ${h.addresses.map((a) => a.cidr).join(' ') || 'no address'}); ` +
        `container side: ${h.bridge}[${h.name} mac ${h.dummyMac}, ${h.tap}]${h.bridgeAddress ? ` ${h.bridgeAddress}` : ''}`,
    );
  }
  for (const r of plan.guest.routes) lines.push(`guest route: ${routeArgs(r).slice(r.family === 'inet6' ? 3 : 2).join(' ')}`);
  if (plan.guest.dns.nameservers.length) lines.push(`guest dns: ${plan.guest.dns.nameservers.join(' ')}`);
  if (plan.dnsRelay && plan.guest.dnsRelay) {
    const r = plan.dnsRelay;
    lines.push(`dns relay: VM ${plan.guest.dnsRelay.listen}:${DNS_PORT} → ${r.listen}:${r.port} (launcher) → ${r.upstream}:${r.upstreamPort} (the engine's DNS)`);
  }
  return [...lines, ...plan.warnings.map((w) => `warning: ${w}`)];
}
