/**
 * The launcher's side of VM templates (issue 17, docs/dev/notes/templates.md §3.5–3.6): check that the key of this
 * VM (template/key.ts, from the launcher's own VmPlan) is the one create bound the template for, and the template
 * itself (template/store.ts verifyTemplate: manifest, key, sizes, state sha256); restore it; send RESUME (the clock read at send time, 64 fresh random bytes, the MACs in NIC order,
 * the network words); wait, bounded, for the guest's first frame. Any failure is a reason for a cold boot, which the
 * caller logs as `template: cold boot (<reason>)`: the restored VM is killed and its sockets removed first, so no
 * partial state is left.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../core/log/index.js';
import { isToolError } from '../../core/errors.js';
import { CONTAINER_PATHS } from '../launch/schema.js';
import type { Hypervisor, HypervisorPlan, RunningVm, StartOptions, VmPlan } from '../hypervisor/types.js';
import { readTemplateAssets } from '../template/facts.js';
import { launchKeyMismatch, type TemplateAssets } from '../template/key.js';
import { verifyTemplate, type VerifyResult } from '../template/store.js';
import { encodeResume, RESUME_SEED_BYTES } from '../template/resume.js';
import type { GuestChannel } from './channel.js';

/** RESUME → the guest's first frame (virtio_blk, the root mount, runcvm-init's phases up to its first LOG or READY) */
export const RESUME_ANSWER_MS = 30_000;

export interface RestorePlan {
  plan: HypervisorPlan;
  macs: string[];
  net: string[];
}

/** The bound template's checks (files, sha256) and the node's asset hashes: file reads only, no VM plan needed. */
export interface TemplateChecks {
  verified: VerifyResult;
  assets: TemplateAssets | undefined;
}

/**
 * Starts the checks of the template create bound for `key`; the launcher runs them while it sets up the network
 * and volumes (they need neither) and awaits them in planRestore. Never rejects.
 */
export function checkTemplate(key: string): Promise<TemplateChecks> {
  return Promise.all([verifyTemplate(CONTAINER_PATHS.template, key), readTemplateAssets(CONTAINER_PATHS.kernelDir, CONTAINER_PATHS.guest).catch(() => undefined)]).then(
    ([verified, assets]) => ({ verified, assets }),
  );
}

/**
 * The restore plan for `vm` (the launcher's VmPlan with NICs and volumes, the command line without the network
 * words), or undefined after logging why this VM boots cold.
 */
export async function planRestore(checks: Promise<TemplateChecks>, hv: Hypervisor, vm: VmPlan, net: string[], log: Logger): Promise<RestorePlan | undefined> {
  const cold = (reason: string) => {
    log.info(`template: cold boot (${reason})`);
    return undefined;
  };
  const { verified, assets } = await checks;
  if (!verified.ok) return cold(verified.reason);
  // the key of the VM this launcher really runs (its NICs are known only now: Docker, for one, joins the container
  // to its network after create), against the template create bound (a device the template lacks would be accepted
  // by QEMU silently and never seen by the guest)
  const facts = { setting: 'on' as const, assets };
  const mismatch = launchKeyMismatch(vm, hv, facts, { key: verified.manifest.key, shape: verified.manifest.shape });
  if (mismatch) return cold(mismatch);
  try {
    return { plan: hv.plan({ ...vm, template: verified.files }), macs: (vm.nics ?? []).map((n) => n.mac), net };
  } catch (err) {
    return cold((err as Error).message);
  }
}

export type Restored = { ok: true; vm: RunningVm } | { ok: false; reason: string };

/**
 * Starts the restored VM, sends RESUME, and resolves once the guest answered (any frame), or with the reason it did
 * not (the VM is then killed and gone). `onResumed` registers the callback the channel's `resumed` event calls.
 */
export async function startRestored(hv: Hypervisor, r: RestorePlan, channel: GuestChannel, opts: StartOptions, onResumed: (cb: () => void) => void): Promise<Restored> {
  channel.hold();
  let vm: RunningVm;
  try {
    vm = await hv.start(r.plan, opts);
  } catch (err) {
    const msg = isToolError(err) ? err.render().split('\n')[0]!.replace(/^error: /, '') : (err as Error).message;
    return { ok: false, reason: msg };
  }
  const answered = new Promise<void>((resolve) => onResumed(resolve));
  // the clock is read now: the guest sets it before anything else runs
  const clockNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  channel.resume(encodeResume({ clockNs, seed: randomBytes(RESUME_SEED_BYTES), macs: r.macs, net: r.net }));
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    answered.then(() => 'ok' as const),
    vm.exited.then((e) => `the restored VM exited (${e.signal ?? `code ${e.code}`}) before its guest answered RESUME`),
    new Promise<string>((res) => (timer = setTimeout(() => res(`no answer from the guest within ${RESUME_ANSWER_MS} ms of RESUME`), RESUME_ANSWER_MS))),
  ]);
  if (timer) clearTimeout(timer);
  if (outcome === 'ok') return { ok: true, vm };
  vm.kill();
  await vm.exited;
  return { ok: false, reason: outcome };
}
