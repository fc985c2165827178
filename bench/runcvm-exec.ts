/**
 * runcvm exec latency benchmark (not a test): `npx vite-node bench/runcvm-exec.ts` (BENCH_REPS, default 5)
 *
 * 1. `ctr task exec <ctr> true` into a running container: runc vs runcvm (the command runs inside the VM through
 *    the guest agent). Both containers run under the same containerd; variants interleaved.
 * 2. the runtime verb alone, without containerd: `runc exec ID true` vs `runcvm-runtime exec ID true`, with one bare
 *    Node start-up (`node -e 0`) as a reference: the exec verb is Node, the client and agent are static C.
 * 3. the guest round trip alone: OPEN → EXIT of `true` over the launcher's exec socket (one Node process inside
 *    the launcher container does several round trips; reported per round trip).
 * Results: bench/results/runcvm-exec.json.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec/index.js';
import { CloserStack } from '../src/core/fsx/index.js';
import { startContainerd } from '../test/harness/services/containerd.js';
import { startRegistry } from '../test/harness/services/registry.js';
import { pushBusyboxImage } from '../test/harness/images.js';
import { runtimeFixture } from '../test/e2e/runcvm/setup.js';
import { waitFor } from '../test/harness/wait.js';
import { measureCase, REPS, type CaseResult } from './lib/measure.js';
import { writeResults } from './lib/report.js';

const closers = new CloserStack();
const cases: CaseResult[] = [];

/** Inside the launcher container: N round trips OPEN(true) → EXIT over the exec socket, one line of ms each. */
const ROUND_TRIP = `import { connect } from 'node:net';
const frame = (t, p) => { const h = Buffer.alloc(8); h[0] = t; h.writeUInt32BE(p.length, 4); return Buffer.concat([h, p]); };
const open = frame(16, Buffer.from('uid=0\\0gid=0\\0groups=\\0cwd=/\\0tty=0\\0arg=true\\0env=PATH=/bin\\0'));
for (let i = 0; i < Number(process.argv[2]); i++) {
  const t0 = performance.now();
  await new Promise((res) => { const s = connect('/.runcvm/state/exec.sock', () => { s.write(open); s.write(frame(2, Buffer.alloc(0))); }); s.on('close', res); s.resume(); });
  console.log((performance.now() - t0).toFixed(1));
}
`;

try {
  const fx = await runtimeFixture(closers);
  const reg = await startRegistry();
  closers.push('registry', () => reg.stop());
  const cd = await startContainerd();
  closers.push('containerd', () => cd.stop());
  const busybox = await pushBusyboxImage(reg);
  await cd.ctr(['images', 'pull', '--plain-http', busybox]);
  await cd.ctr(['run', '-d', busybox, 'bx-runc', 'sleep', '100000']);
  await cd.ctr(['run', '-d', '--runc-binary', fx.wrapper, busybox, 'bx-vm', 'sleep', '100000']);
  closers.push('containers', async () => {
    for (const id of ['bx-runc', 'bx-vm']) {
      await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id], { reject: false });
      await waitFor(`task ${id} to go`, async () => (await cd.ctr(['task', 'delete', id], { reject: false })).exitCode === 0, { timeoutMs: 60_000, intervalMs: 300 }).catch(() => {});
      await cd.ctr(['container', 'delete', id], { reject: false });
    }
  });
  let n = 0;
  const exec = (id: string) => async () => {
    await cd.ctr(['task', 'exec', '--exec-id', `x${++n}`, id, 'true'], { timeoutMs: 60_000 });
  };
  await waitFor('the VM to answer an exec', async () => (await cd.ctr(['task', 'exec', '--exec-id', `w${++n}`, 'bx-vm', 'true'], { reject: false })).exitCode === 0, { timeoutMs: 180_000, intervalMs: 500 });

  cases.push(
    await measureCase({ bench: 'runcvm-exec', case: 'ctr task exec true', repetitions: REPS, notes: 'containerd 1.6 + runc 1.1.5; runcvm guest under QEMU TCG (no usable KVM here)' }, [
      { name: 'runc', run: exec('bx-runc') },
      { name: 'runcvm', run: exec('bx-vm') },
    ]),
  );

  const root = `/run/containerd/runc/${cd.namespace}`;
  cases.push(
    await measureCase({ bench: 'runcvm-exec', case: 'runtime verb: exec ID true (no containerd)', repetitions: REPS }, [
      { name: 'runc exec', run: async () => void (await run('runc', ['--root', root, 'exec', 'bx-runc', 'true'], { timeoutMs: 60_000 })) },
      { name: 'runcvm-runtime exec', run: async () => void (await run(fx.wrapper, ['--root', root, 'exec', 'bx-vm', 'true'], { timeoutMs: 60_000 })) },
      // the floor the exec verb pays before any work: one Node start-up (reference, not an exec)
      { name: 'node -e 0 (reference)', run: async () => void (await run(process.execPath, ['-e', '0'], { timeoutMs: 60_000 })) },
    ]),
  );

  // guest round trip only: a script in the state dir (bind-mounted at /.runcvm/state), run once with REPS trips
  const script = join(fx.stateDir, 'bx-vm', 'bench-rt.mjs');
  await writeFile(script, ROUND_TRIP);
  closers.push('round-trip script', () => rm(script, { force: true }));
  const out = await run('runc', ['--root', root, 'exec', 'bx-vm', '/.runcvm/guest/lib/ld', '--library-path', '/.runcvm/guest/lib', '/.runcvm/guest/bin/node', '/.runcvm/state/bench-rt.mjs', String(REPS + 2)], { timeoutMs: 120_000 });
  const trips = out.stdout.trim().split('\n').map(Number).slice(2);
  const sorted = [...trips].sort((a, b) => a - b);
  const med = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  const rt: CaseResult = {
    bench: 'runcvm-exec',
    case: 'guest round trip: OPEN true → EXIT over the exec socket',
    baseline: 'agent round trip',
    variants: [{ name: 'agent round trip', timesMs: trips, medianMs: med, minMs: sorted[0]!, maxMs: sorted.at(-1)! }],
    ratios: { 'agent round trip': 1 },
    notes: 'launcher mux → virtio-serial → runcvm-agent fork/exec of true in the guest → EXIT; guest under TCG',
  };
  process.stdout.write(`runcvm-exec / ${rt.case}: median ${med} ms (${trips.join(', ')})\n`);
  cases.push(rt);
  process.stdout.write(`results: ${writeResults('runcvm-exec', cases, 'tcg')}\n`);
} finally {
  await closers.close();
}
