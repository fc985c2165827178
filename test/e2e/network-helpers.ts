/**
 * Network namespaces for the networking tests and bench: a pod-like namespace whose eth0 is one end of a veth pair
 * (pod IP 10.88.0.2/24, default route via the peer) and a peer namespace holding the other end (10.88.0.1/24).
 * These addresses exist only inside the namespaces created here; the host's root namespace only ever sees the veth
 * pair for the instant between `ip link add` and moving both ends away.
 *
 *   await using net = await podNetwork();
 *   await net.inPeer(['ping', '-c1', '10.88.0.2']);
 *   const json = await net.ipJson(net.pod, ['addr', 'show', 'br-eth0']);
 */
import { randomBytes } from 'node:crypto';
import { run, type RunOptions, type RunResult } from '../../src/core/exec/index.js';
import type { IpLink } from '../../src/runcvm/network/plan.js';

export const POD_IP = '10.88.0.2';
export const PEER_IP = '10.88.0.1';
export const POD_CIDR = `${POD_IP}/24`;

export interface PodNetwork extends AsyncDisposable {
  /** netns names (under /var/run/netns) */
  pod: string;
  peer: string;
  /** the MAC CNI gave the pod's eth0: the VM must carry it */
  podMac: string;
  nsPath: string;
  ip(ns: string, args: string[], opts?: RunOptions): Promise<RunResult>;
  ipJson<T = IpLink>(ns: string, args: string[]): Promise<T[]>;
  inNs(ns: string, argv: string[], opts?: RunOptions): Promise<RunResult>;
  inPeer(argv: string[], opts?: RunOptions): Promise<RunResult>;
  destroy(): Promise<void>;
}

const ip = (args: string[], opts: RunOptions = {}) => run('ip', args, opts);

/** Namespace names carry this prefix plus a random session id, so leftovers are easy to find (and to prove absent). */
export const NS_PREFIX = 'rcvmnet-';

// Namespaces created by this test file's process: test files run in parallel, so a leftover check must only look
// at its own (another file may hold live pod networks of its own at the same moment).
const createdHere = new Set<string>();

export async function podNetwork(options: { mtu?: number; ipv6?: boolean } = {}): Promise<PodNetwork> {
  const id = randomBytes(3).toString('hex');
  const pod = `${NS_PREFIX}${id}-pod`;
  const peer = `${NS_PREFIX}${id}-peer`;
  const vPod = `rn${id}a`;
  const vPeer = `rn${id}b`;
  const destroy = async () => {
    for (const ns of [pod, peer]) await ip(['netns', 'del', ns], { reject: false });
    for (const v of [vPod, vPeer]) await ip(['link', 'del', v], { reject: false });
  };
  try {
    createdHere.add(pod);
    createdHere.add(peer);
    await ip(['netns', 'add', pod]);
    await ip(['netns', 'add', peer]);
    await ip(['link', 'add', vPod, 'type', 'veth', 'peer', 'name', vPeer]);
    await ip(['link', 'set', vPod, 'netns', pod]);
    await ip(['link', 'set', vPeer, 'netns', peer]);
    await ip(['-n', pod, 'link', 'set', vPod, 'name', 'eth0']);
    await ip(['-n', peer, 'link', 'set', vPeer, 'name', 'eth0']);
    if (options.mtu) {
      await ip(['-n', pod, 'link', 'set', 'eth0', 'mtu', String(options.mtu)]);
      await ip(['-n', peer, 'link', 'set', 'eth0', 'mtu', String(options.mtu)]);
    }
    await ip(['-n', pod, 'addr', 'add', POD_CIDR, 'dev', 'eth0']);
    await ip(['-n', peer, 'addr', 'add', `${PEER_IP}/24`, 'dev', 'eth0']);
    if (options.ipv6) {
      await ip(['-n', pod, '-6', 'addr', 'add', 'fd00:88::2/64', 'dev', 'eth0', 'nodad']);
      await ip(['-n', peer, '-6', 'addr', 'add', 'fd00:88::1/64', 'dev', 'eth0', 'nodad']);
    }
    for (const ns of [pod, peer]) {
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
    await ip(['-n', pod, 'route', 'add', 'default', 'via', PEER_IP, 'dev', 'eth0']);
    const links = JSON.parse((await ip(['-n', pod, '-json', 'link', 'show', 'eth0'])).stdout) as IpLink[];
    const podMac = links[0]?.address ?? '';
    const net: PodNetwork = {
      pod,
      peer,
      podMac,
      nsPath: `/var/run/netns/${pod}`,
      ip: (ns, args, opts) => ip(['-n', ns, ...args], opts),
      ipJson: async <T>(ns: string, args: string[]) => {
        const r = await ip(['-n', ns, '-json', ...args], { reject: false });
        return r.exitCode === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as T[]) : [];
      },
      inNs: (ns, argv, opts) => run('ip', ['netns', 'exec', ns, ...argv], opts),
      inPeer: (argv, opts) => run('ip', ['netns', 'exec', peer, ...argv], opts),
      destroy,
      [Symbol.asyncDispose]: destroy,
    };
    return net;
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** Network namespaces this test file created that still exist (its leftovers). */
export async function leftoverNamespaces(): Promise<string[]> {
  const r = await ip(['netns', 'list'], { reject: false });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(NS_PREFIX) && createdHere.has(n));
}

/** The MAC the peer's neighbour table holds for an address (after traffic), if any. */
export async function neighbourMac(net: PodNetwork, ns: string, address: string): Promise<string | undefined> {
  const entries = await net.ipJson<{ dst: string; lladdr?: string }>(ns, ['neigh', 'show', address]);
  return entries.find((e) => e.dst === address)?.lladdr;
}
