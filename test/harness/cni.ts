/**
 * Pod networking for the CRI e2e test without touching the host's root network namespace.
 *
 *   const net = await installTestCni(cd);     // after startContainerd({ cri: true, ... })
 *   // pods created with NamespaceMode POD now get eth0 = 10.244.77.N/24, default route via 10.244.77.1
 *   await net.peer(['nc', '-w', '3', podIp, '8080']);   // runs in the "node side" namespace
 *   await net.close();                        // deletes the peer namespace (and every veth end in it)
 *
 * A tiny CNI plugin (POSIX sh, CNI spec 0.4.0) is written to the harness containerd's CNI bin_dir: on ADD it creates
 * a veth pair whose pod end is `eth0` in the pod's namespace and whose other end joins bridge `br0` (10.244.77.1/24)
 * in a network namespace this helper owns (the "node side"), so traffic between pods and the node side is real
 * without any interface, route or rule in the host's root namespace. containerd also needs the standard `loopback`
 * plugin (copied from /usr/lib/cni).
 */
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, type RunOptions, type RunResult } from '../../src/core/exec/index.js';
import type { StartedContainerd } from './services/containerd.js';

export interface TestCni extends AsyncDisposable {
  /** name of the node-side network namespace (/var/run/netns/<name>) */
  peerNetns: string;
  subnetPrefix: string;
  gateway: string;
  /** runs a command in the node-side namespace */
  peer(argv: string[], opts?: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

const SUBNET_PREFIX = '10.244.77';

function pluginScript(ip: string, peer: string, stateDir: string): string {
  return `#!/bin/sh
# test CNI plugin (CNI 0.4.0): veth pod eth0 <-> br0 in the node-side namespace ${peer}
IP=${ip}
PEER=${peer}
STATE=${stateDir}
PREFIX=${SUBNET_PREFIX}
cat >/dev/null
hostif=vp$(printf '%s' "$CNI_CONTAINERID" | cut -c1-11)
case "$CNI_COMMAND" in
VERSION)
  echo '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}'
  ;;
ADD)
  set -e
  ns=$(basename "$CNI_NETNS")
  mkdir -p "$STATE"
  n=$(cat "$STATE/next" 2>/dev/null || echo 2)
  echo $((n + 1)) >"$STATE/next"
  echo "$CNI_CONTAINERID" >"$STATE/ip-$n"
  $IP -n "$PEER" link add "$hostif" type veth peer name "$CNI_IFNAME" netns "$ns" >&2
  $IP -n "$PEER" link set "$hostif" master br0 up >&2
  $IP -n "$ns" addr add "$PREFIX.$n/24" dev "$CNI_IFNAME" >&2
  $IP -n "$ns" link set "$CNI_IFNAME" up >&2
  $IP -n "$ns" route add default via "$PREFIX.1" >&2
  mac=$($IP -n "$ns" link show "$CNI_IFNAME" | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p')
  printf '{"cniVersion":"0.4.0","interfaces":[{"name":"%s","mac":"%s","sandbox":"%s"}],"ips":[{"version":"4","address":"%s/24","gateway":"%s","interface":0}],"dns":{}}\\n' \\
    "$CNI_IFNAME" "$mac" "$CNI_NETNS" "$PREFIX.$n" "$PREFIX.1"
  ;;
DEL)
  $IP -n "$PEER" link del "$hostif" >/dev/null 2>&1 || true
  ;;
CHECK|*)
  ;;
esac
exit 0
`;
}

/** Installs the test CNI network into a CRI-enabled harness containerd (its cni/bin and cni/conf folders). */
export async function installTestCni(cd: Pick<StartedContainerd, 'dir'> & { cniDir?: string }): Promise<TestCni> {
  const ip = (await run('sh', ['-c', 'command -v ip'])).stdout.trim() || '/sbin/ip';
  const peerNetns = `cri-e2e-${randomBytes(4).toString('hex')}`;
  const gateway = `${SUBNET_PREFIX}.1`;
  await run(ip, ['netns', 'add', peerNetns]);
  const peer = (argv: string[], opts: RunOptions = {}) => run(ip, ['netns', 'exec', peerNetns, ...argv], opts);
  const close = async () => {
    await run(ip, ['netns', 'del', peerNetns], { reject: false });
  };
  try {
    await run(ip, ['-n', peerNetns, 'link', 'set', 'lo', 'up']);
    await run(ip, ['-n', peerNetns, 'link', 'add', 'br0', 'type', 'bridge']);
    await run(ip, ['-n', peerNetns, 'addr', 'add', `${gateway}/24`, 'dev', 'br0']);
    await run(ip, ['-n', peerNetns, 'link', 'set', 'br0', 'up']);

    const binDir = join(cd.cniDir ?? join(cd.dir, 'cni'), 'bin');
    const confDir = join(cd.cniDir ?? join(cd.dir, 'cni'), 'conf');
    await mkdir(binDir, { recursive: true });
    await mkdir(confDir, { recursive: true });
    await copyFile('/usr/lib/cni/loopback', join(binDir, 'loopback'));
    await chmod(join(binDir, 'loopback'), 0o755);
    await writeFile(join(binDir, 'testnet'), pluginScript(ip, peerNetns, join(cd.cniDir ?? join(cd.dir, 'cni'), 'state')), { mode: 0o755 });
    const conflist = { cniVersion: '0.4.0', name: 'cri-e2e', plugins: [{ type: 'testnet' }] };
    await writeFile(join(confDir, '10-testnet.conflist'), `${JSON.stringify(conflist, null, 2)}\n`);
    return { peerNetns, subnetPrefix: SUBNET_PREFIX, gateway, peer, close, [Symbol.asyncDispose]: close };
  } catch (err) {
    await close();
    throw err;
  }
}
