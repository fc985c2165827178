/**
 * Set-up for the conformance regression tests (issue 16): OCI bundles made the way runc's and the OCI runtime
 * suites make them (`runc spec` + a busybox root), run by plain runc and by runcvm side by side, each runtime on its
 * own copy of the same bundle (runcvm must not change the caller's bundle, but a test never relies on that unless it
 * is what it checks). runc is the oracle: a comparison first asserts that runc itself showed the behaviour, so a
 * container that died and printed nothing can never make a test pass.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunResult } from '../../../src/core/exec/index.js';
import { CloserStack, tempDir } from '../../../src/core/fsx/index.js';
import type { OciSpec } from '../../../src/runcvm/launch/oci.js';
import { busyboxRootfs } from '../../harness/images.js';
import { runtimeFixture, type RuntimeFixture } from '../runcvm/setup.js';

export interface Outcome {
  exit: number;
  stdout: string;
  stderr: string;
}

export type RuntimeName = 'runc' | 'runcvm';

export interface RunOptions {
  /** another runtime binary for runcvm (a fixture wrapper with extra env) */
  binary?: string;
  timeoutMs?: number;
  /** `create` only (no start): the VM never boots */
  verb?: 'run' | 'create';
}

export interface ConformanceFixture {
  fx: RuntimeFixture;
  dir: string;
  /** runc's --root for both runtimes */
  root: string;
  /** a fresh bundle: busybox root, `runc spec`, terminal off, then `edit` */
  bundle(edit?: (spec: OciSpec) => void): Promise<string>;
  /** `<runtime> --root R run|create --bundle B ID` with empty stdin; never rejects (create: output in stderr) */
  run(rt: RuntimeName, bundle: string, id: string, opts?: RunOptions): Promise<Outcome>;
  /** the same edit on two bundles, run once by each runtime */
  both(edit: (spec: OciSpec) => void, opts?: { timeoutMs?: number }): Promise<Record<RuntimeName, Outcome>>;
  /** `run -d`: returns once the runtime returns; the container's stdio goes to a file (logOf) */
  runDetached(rt: RuntimeName, bundle: string, id: string, opts?: RunOptions): Promise<Outcome>;
  /** any other runtime verb (`exec`, `state`, `delete` …) after the global --root */
  verb(rt: RuntimeName, args: string[], opts?: { binary?: string; timeoutMs?: number; input?: string }): Promise<RunResult>;
  logOf(id: string): string;
  newId(prefix: string): string;
  close(): Promise<void>;
}

const RUNC = 'runc';

export async function conformanceFixture(closers: CloserStack): Promise<ConformanceFixture> {
  const fx = await runtimeFixture(closers);
  const dir = await tempDir('conformance', closers);
  // a container whose root is a mapped (user namespace) id must reach its rootfs: a+x on the path, as runc's bats do
  await chmod(dir, 0o711);
  const root = join(dir, 'runc-root');
  let seq = 0;
  const ids = new Set<string>();

  const binaryOf = (rt: RuntimeName, binary?: string) => (rt === 'runc' ? RUNC : binary ?? fx.wrapper);

  const bundle = async (edit?: (spec: OciSpec) => void): Promise<string> => {
    const b = join(dir, `bundle-${++seq}`);
    await busyboxRootfs(join(b, 'rootfs'));
    await chmod(b, 0o711);
    await run(RUNC, ['spec', '--bundle', b]);
    const spec = JSON.parse(await readFile(join(b, 'config.json'), 'utf8')) as OciSpec;
    spec.process!.terminal = false;
    edit?.(spec);
    await writeFile(join(b, 'config.json'), JSON.stringify(spec, null, 2));
    return b;
  };

  const logOf = (id: string) => join(dir, `${id}.log`);

  /** the container keeps the runtime's stdio after `create` / `run -d`: a file, so that this returns when the runtime does */
  const runToLog = async (rt: RuntimeName, args: string[], id: string, opts: RunOptions): Promise<Outcome> => {
    const r = await run('sh', ['-c', 'log=$1; shift; exec "$@" </dev/null >>"$log" 2>&1', 'sh', logOf(id), binaryOf(rt, opts.binary), '--root', root, ...args], { reject: false, timeoutMs: opts.timeoutMs ?? 240_000 });
    const log = await readFile(logOf(id), 'utf8').catch(() => '');
    return { exit: r.exitCode, stdout: '', stderr: log };
  };

  const runOnce = async (rt: RuntimeName, b: string, id: string, opts: RunOptions = {}): Promise<Outcome> => {
    ids.add(id);
    if (opts.verb === 'create') return runToLog(rt, ['create', '--bundle', b, id], id, opts);
    const r = await run(binaryOf(rt, opts.binary), ['--root', root, 'run', '--bundle', b, id], { reject: false, input: '', timeoutMs: opts.timeoutMs ?? 240_000 });
    return { exit: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  };

  const fixture: ConformanceFixture = {
    fx,
    dir,
    root,
    bundle,
    run: runOnce,
    async both(edit, opts = {}) {
      const out = {} as Record<RuntimeName, Outcome>;
      for (const rt of ['runc', 'runcvm'] as const) {
        const b = await bundle(edit);
        out[rt] = await runOnce(rt, b, fixture.newId(rt), { timeoutMs: opts.timeoutMs ?? 240_000 });
      }
      return out;
    },
    runDetached(rt, b, id, opts = {}) {
      ids.add(id);
      return runToLog(rt, ['run', '-d', '--bundle', b, id], id, opts);
    },
    verb(rt, args, opts = {}) {
      return run(binaryOf(rt, opts.binary), ['--root', root, ...args], { reject: false, timeoutMs: opts.timeoutMs ?? 180_000, input: opts.input ?? '' });
    },
    logOf,
    newId(prefix) {
      return `cf-${prefix}-${process.pid}-${++seq}`;
    },
    async close() {
      // whatever a test left running: through runcvm's own delete, which also removes its state folder
      for (const id of ids) await run(fx.wrapper, ['--root', root, 'delete', '-f', id], { reject: false, timeoutMs: 60_000 });
    },
  };
  closers.push('conformance containers', () => fixture.close());
  return fixture;
}

/** Docker's (and containerd's) default capability set: what a container gets when nobody drops anything. */
export const DOCKER_DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export function setCaps(spec: OciSpec, caps: readonly string[]): void {
  spec.process!.capabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps], inheritable: [], ambient: [] };
}

/** runc must have shown the behaviour (exit 0 and output), else the comparison proves nothing. */
export function expectOracle(o: Outcome, expected: { stdout: string | RegExp }): void {
  if (o.exit !== 0) throw new Error(`runc itself failed (exit ${o.exit}): ${o.stderr.trim()}`);
  if (typeof expected.stdout === 'string' ? o.stdout !== expected.stdout : !expected.stdout.test(o.stdout)) {
    throw new Error(`runc printed ${JSON.stringify(o.stdout)}, expected ${String(expected.stdout)}: the test's premise does not hold here`);
  }
}
