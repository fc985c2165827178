/**
 * The whole Firecracker configuration of one microVM, composed from the per-device builders: the ordered API calls
 * (ending with InstanceStart) and the equivalent --config-file document, both schema-checked. Also the adapter from
 * the runtime core's backend-neutral VmPlan and the firecracker argv. Pure: `runcvm plan` prints exactly this.
 */
import { posix } from 'node:path';
import type { VmPlan } from '../types.js';
import { bootSource } from './boot.js';
import { drives } from './block.js';
import { machineConfig } from './machine.js';
import { networkInterfaces } from './net.js';
import { assertValid, CONFIG_FILE_DEFINITION } from './schema.js';
import type { ActionBody, ApiCall, DevicePlan, FirecrackerVmInput, LoggerBody, VmmConfigFile } from './types.js';
import { GUEST_CID, vsock } from './vsock.js';

export function logger(input: Pick<FirecrackerVmInput, 'logger'>): DevicePlan {
  if (!input.logger) return { calls: [], config: {} };
  const body: LoggerBody = { log_path: input.logger.path, level: input.logger.level, show_level: true, show_log_origin: false };
  assertValid('Logger', body, 'logger');
  return { calls: [{ method: 'PUT', path: '/logger', body }], config: { logger: body } };
}

export function metrics(input: Pick<FirecrackerVmInput, 'metrics'>): DevicePlan {
  if (!input.metrics) return { calls: [], config: {} };
  const body = { metrics_path: input.metrics.path };
  assertValid('Metrics', body, 'metrics');
  return { calls: [{ method: 'PUT', path: '/metrics', body }], config: { metrics: body } };
}

export function action(type: ActionBody['action_type']): ApiCall {
  const body: ActionBody = { action_type: type };
  assertValid('InstanceActionInfo', body, `action ${type}`);
  return { method: 'PUT', path: '/actions', body };
}

/** one API call as `runcvm plan` and the debug log show it */
export function callLine(c: ApiCall): string {
  return c.body === undefined ? `${c.method} ${c.path}` : `${c.method} ${c.path} ${JSON.stringify(c.body)}`;
}

export const INSTANCE_START: ApiCall = action('InstanceStart');
export const SEND_CTRL_ALT_DEL: ApiCall = action('SendCtrlAltDel');
export const DESCRIBE_INSTANCE: ApiCall = { method: 'GET', path: '/' };

export interface FirecrackerPlan {
  /** pre-boot configuration in a valid order, then InstanceStart */
  calls: ApiCall[];
  /** the same configuration for `firecracker --config-file` */
  configFile: VmmConfigFile;
}

export function planFirecracker(input: FirecrackerVmInput): FirecrackerPlan {
  // logger first so that Firecracker's own log covers the rest of the configuration
  const parts = [logger(input), metrics(input), machineConfig(input), bootSource(input), drives(input), networkInterfaces(input), vsock(input)];
  const configFile = Object.assign({}, ...parts.map((p) => p.config)) as VmmConfigFile;
  assertValid(CONFIG_FILE_DEFINITION, configFile, 'config file');
  return { calls: [...parts.flatMap((p) => p.calls), INSTANCE_START], configFile };
}

/** `root=/dev/vdX` in the shared command line → the index of the root disk. */
export function rootIndexFromCmdline(cmdline: string): number {
  const m = /(?:^|\s)root=\/dev\/vd([a-z])(?:\s|$)/.exec(cmdline);
  return m?.[1] === undefined ? 0 : m[1].charCodeAt(0) - 'a'.charCodeAt(0);
}

export interface FirecrackerExtras {
  /** defaults to the VmPlan's nics */
  nics?: FirecrackerVmInput['nics'];
  /** defaults to io.vsock next to the QEMU path's io socket */
  vsockPath?: string;
  logger?: FirecrackerVmInput['logger'];
}

/** The runtime core's backend-neutral VmPlan → this backend's input. */
export function fromVmPlan(plan: VmPlan, extras: FirecrackerExtras = {}): FirecrackerVmInput {
  const rootIndex = rootIndexFromCmdline(plan.cmdline);
  if (rootIndex !== 0) throw new Error(`firecracker: the root disk must be the first disk (the command line names disk ${rootIndex})`);
  const input: FirecrackerVmInput = {
    vcpus: plan.vcpus,
    memoryMiB: plan.memoryMiB,
    kernel: plan.kernel,
    cmdline: plan.cmdline,
    disks: plan.disks.map((d, i) => ({ id: d.id, path: d.path, readOnly: d.readOnly, root: i === rootIndex })),
    nics: extras.nics ?? (plan.nics ?? []).map((n) => ({ id: n.id, tap: n.tap, mac: n.mac })),
    vsock: { cid: GUEST_CID, udsPath: extras.vsockPath ?? posix.join(posix.dirname(plan.io.socket), 'io.vsock') },
  };
  if (plan.initrd) input.initrd = plan.initrd;
  if (extras.logger) input.logger = extras.logger;
  return input;
}

/** Firecracker's --id: letters, digits and '-', at most 64 characters. */
export function instanceId(containerId: string): string {
  const clean = containerId.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 64);
  return clean || 'runcvm';
}

export type LaunchMode =
  | { kind: 'api'; apiSocket: string }
  | { kind: 'config-file'; configFile: string; apiSocket?: string };

/**
 * firecracker's argv (without the binary). With --config-file and no API socket, --no-api is passed. `log`: without
 * a log target Firecracker writes its own log lines to stdout, which is the container's stdout; --log-path (created
 * by Firecracker) keeps them out of it from the first line on.
 */
export function firecrackerArgs(mode: LaunchMode, id: string, log?: { path: string; level: NonNullable<LoggerBody['level']> }): string[] {
  const args = ['--id', instanceId(id)];
  if (log) args.push('--log-path', log.path, '--level', log.level);
  if (mode.kind === 'api') return [...args, '--api-sock', mode.apiSocket];
  if (mode.apiSocket) return [...args, '--api-sock', mode.apiSocket, '--config-file', mode.configFile];
  return [...args, '--no-api', '--config-file', mode.configFile];
}
