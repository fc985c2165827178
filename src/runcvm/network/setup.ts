/**
 * The launcher's network step, in one call: read the container namespace (`ip -json`, resolv.conf), plan, apply,
 * and return what the hypervisor needs (NICs, kernel command line) plus the undo. The launcher runs it before the
 * hypervisor starts and runs `undo()` on every path after (normal exit, QEMU crash, start-up failure).
 */
import { runcvmErrors } from '../errors.js';
import { applyNetwork, CONTAINER_IP, NOTHING_TO_UNDO, readNetworkFacts, type IpCommand, type NetLog, type NetworkUndo } from './apply.js';
import { startDnsRelay, type DnsRelay } from './dns-relay.js';
import { describePlan, guestNetCmdline, NetworkPlanError, planNetwork, type GuestNetwork, type NetworkPlan, type NetworkRequest, type NicPlan } from './plan.js';

const { fail } = runcvmErrors;

export interface NetworkSetup {
  plan: NetworkPlan;
  /** virtio-net NICs for the hypervisor (empty: loopback only) */
  nics: NicPlan[];
  /** kernel command line words for the guest init (empty when there is no NIC) */
  cmdline: string;
  undo(): Promise<void>;
}

export interface SetUpOptions {
  ip?: IpCommand;
  resolvConfPath?: string;
  tapOwner?: NetworkRequest['tapOwner'];
}

export async function setUpNetwork(mode: NetworkRequest['mode'], log: NetLog, options: SetUpOptions = {}): Promise<NetworkSetup> {
  const cmd = options.ip ?? CONTAINER_IP;
  const request: NetworkRequest = { mode };
  if (options.tapOwner) request.tapOwner = options.tapOwner;
  if (mode === 'none') {
    const plan = planNetwork({ addrs: [], routes: [] }, request);
    log.info('network: none (the container shares a namespace runcvm does not change); the VM gets loopback only');
    return { plan, nics: [], cmdline: '', undo: async () => undefined };
  }
  const started = Date.now();
  const facts = await readNetworkFacts(cmd, options.resolvConfPath);
  let plan: NetworkPlan;
  try {
    plan = planNetwork(facts, request);
  } catch (err) {
    if (err instanceof NetworkPlanError) throw fail('NETWORK_IN_USE', { problem: err.message, fix: err.fix });
    throw err;
  }
  for (const line of describePlan(plan)) {
    if (line.startsWith('warning:')) log.warn(line);
    else log.info(line);
  }
  let undo: NetworkUndo = NOTHING_TO_UNDO;
  let guest: GuestNetwork = plan.guest;
  let relay: DnsRelay | undefined;
  if (plan.mode === 'bridged') {
    undo = await applyNetwork(plan, cmd, log);
    log.info('network handed to the VM', { ms: Date.now() - started, steps: plan.steps.length });
    // after the apply: the relay listens on the identity IP, which br-eth0 carries from now on
    if (plan.dnsRelay) {
      try {
        relay = await startDnsRelay(plan.dnsRelay, log);
        log.info(`dns relay on ${plan.dnsRelay.listen}:${plan.dnsRelay.port} → ${plan.dnsRelay.upstream}:${plan.dnsRelay.upstreamPort}`);
      } catch (err) {
        // the workload then finds no server on 127.0.0.11, as before the relay existed; everything else works
        log.warn(`dns relay not started, so the VM cannot reach the engine's DNS on ${plan.dnsRelay.upstream}: ${(err as Error).message}`);
        const { dnsRelay: _unused, ...rest } = guest;
        guest = rest;
      }
    }
  }
  return {
    plan,
    nics: plan.nics,
    cmdline: guestNetCmdline(guest),
    undo: async () => {
      // the relay first: nothing may answer on the identity IP once the namespace goes back to the engine
      await relay?.close();
      const failures = await undo.undo();
      if (failures.length) log.warn('network undo left problems', { failures: failures.join('; ') });
      else if (undo.commands.length) log.info('network restored for the container', { steps: undo.commands.length });
    },
  };
}

/** x86 COMMAND_LINE_SIZE: a longer command line is cut by the kernel, silently. */
export const KERNEL_CMDLINE_MAX = 2048;

/** The VmPlan with the network's NICs and the guest's network parameters on the kernel command line. */
export function withNetwork<P extends { cmdline: string; nics?: NicPlan[] }>(plan: P, network: Pick<NetworkSetup, 'nics' | 'cmdline'>): P {
  if (network.nics.length === 0) return plan;
  const cmdline = `${plan.cmdline} ${network.cmdline}`;
  if (cmdline.length >= KERNEL_CMDLINE_MAX) {
    throw fail('NETWORK_SETUP', {
      step: 'guest network config on the kernel command line',
      problem: `${cmdline.length} bytes, the kernel keeps ${KERNEL_CMDLINE_MAX - 1} (too many addresses, routes or DNS entries; or a long RUNCVM_KERNEL_APPEND)`,
      command: `runcvm.net.* (${network.cmdline.length} bytes)`,
      undo: 'nothing was changed yet',
    });
  }
  return { ...plan, nics: network.nics, cmdline };
}
