/** The set-up the runcvm start-up phase benches share: runtime fixture, registry, containerd, busybox pulled. */
import { run } from '../../src/core/exec/index.js';
import type { CloserStack } from '../../src/core/fsx/index.js';
import { startContainerd } from '../../test/harness/services/containerd.js';
import { startRegistry } from '../../test/harness/services/registry.js';
import { pushBusyboxImage } from '../../test/harness/images.js';
import { runtimeFixture } from '../../test/e2e/runcvm/setup.js';

/** Everything is stopped by `closers`; `up0` is the load before the set-up, for the report. */
export async function busyboxRuntime(closers: CloserStack) {
  const up0 = (await run('uptime', [])).stdout.trim();
  const fx = await runtimeFixture(closers);
  const reg = await startRegistry();
  closers.push('registry', () => reg.stop());
  const cd = await startContainerd();
  closers.push('containerd', () => cd.stop());
  const busybox = await pushBusyboxImage(reg);
  await cd.ctr(['images', 'pull', '--plain-http', busybox], { timeoutMs: 900_000 });
  return { up0, fx, reg, cd, busybox };
}
