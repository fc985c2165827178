/**
 * The boot-time settings a user reaches for when a container misbehaves, seen as the user sees them: real containers
 * (QEMU microVMs, TCG) through a harness containerd with `ctr run --runc-binary <fixture wrapper>`.
 *
 * - RUNCVM_KERNEL_APPEND: the parameters reach the guest's /proc/cmdline; values that would rewrite runcvm's own boot
 *   contract (runcvm.*, root=, init, console=, `--`, an unbalanced quote, a newline) are refused at create with the
 *   message, cause and fix, and no VM starts.
 * - RUNCVM_KERNEL_DEBUG=1: the kernel's boot messages on the container's stdout (the console), which is otherwise
 *   exactly the workload's output.
 * - RUNCVM_BREAK=initramfs|preinit|prerun: a shell on the guest console, fed here through ctr's stdin (no -t; the
 *   launcher feeds stdin to the console until init reports READY, after the last break shell). Each shell leaves a
 *   file the workload then prints over the workload channel: that proves the shell ran before the workload, at the
 *   documented point, and that exiting it ran the workload. The console echo is not ordered against the workload's
 *   output, so only its presence is checked. ctr never closes a container's stdin (under runc either), so the hand-over
 *   of stdin to the workload after the shell is checked through dockerd (`docker run -i` closes it at EOF): the
 *   workload gets the end of stdin instead of waiting for input forever.
 * - RUNCVM_LOG_LEVEL=debug: init names the command file it loads and how many arguments it holds, never their text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CloserStack } from '../../src/core/fsx/index.js';
import type { StartedContainerd } from '../harness/services/containerd.js';
import type { StartedDockerd } from '../harness/services/dockerd.js';
import { ctrRunIn, leftovers, readDebugLogs, startRuncvmDockerSuite, startRuncvmSuite, summary, type RuntimeFixture } from './runcvm/setup.js';

const closers = new CloserStack();
let cd: StartedContainerd;
let fx: RuntimeFixture;
let image: string;
let seq = 0;

/** Leading newlines absorb what the guest UART drops while the kernel initialises it (the shell ignores them). */
const PAD = '\n'.repeat(64);

async function ctrRun(cmd: string[], env: string[], opts: { input?: string; id?: string } = {}) {
  const id = opts.id ?? `set${++seq}`;
  return summary(await ctrRunIn(cd, { runtime: fx.wrapper, image, id, cmd, env, input: opts.input, timeoutMs: 110_000 }));
}

describe('runtime settings a user sees (KERNEL_APPEND, KERNEL_DEBUG, BREAK, debug log)', () => {
  beforeAll(async () => {
    ({ fx, cd, image } = await startRuncvmSuite(closers));
  });
  afterAll(async () => {
    await closers.close();
  });

  it('RUNCVM_KERNEL_APPEND: the parameters, quoted value included, are on the guest kernel command line', async () => {
    const r = await ctrRun(['cat', '/proc/cmdline'], ['RUNCVM_KERNEL_APPEND=e2e.marker=42 e2e.words="two words"']);
    expect(r.exit, r.stderr).toBe(0);
    // one line: the console stays silent without RUNCVM_KERNEL_DEBUG, stdout is the workload's alone
    expect(r.stdout.split('\n')).toHaveLength(2);
    expect(r.stdout).toContain(' e2e.marker=42 e2e.words="two words"');
    // runcvm's own parameters are still there, and still once: the user's text added, it replaced nothing
    expect(r.stdout.match(/(^| )root=\S+/g)).toHaveLength(1);
    expect(r.stdout).toContain('console=ttyS0');
  });

  it.each([
    ['a runcvm.* parameter', 'quiet runcvm.init=/bin/sh', 'it sets runcvm.init, a parameter of runcvm\'s own boot contract'],
    ['one hidden in a quoted value (the initramfs ignores quotes)', 'e2e.x="a runcvm.break=initramfs"', 'it sets runcvm.break, a parameter of runcvm\'s own boot contract'],
    ['another root device', 'root=/dev/vdb', 'it sets root=, which runcvm sets itself'],
    ['an unbalanced quote', 'e2e.x="open', 'it has an unbalanced double quote'],
    ['arguments for init after --', 'quiet -- runcvm.x', 'it contains "--"'],
  ])('RUNCVM_KERNEL_APPEND with %s is refused at create: message, cause, fix; no VM', async (_what, value, problem) => {
    const r = await ctrRun(['echo', 'never'], [`RUNCVM_KERNEL_APPEND=${value}`]);
    expect(r.exit).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`RUNCVM_KERNEL_APPEND="${value}" is not valid: ${problem}`);
    expect(r.stderr).toContain('cause: a RUNCVM_* setting in the container environment has a value runcvm does not understand.');
    expect(r.stderr).toMatch(/fix: keep RUNCVM_KERNEL_APPEND to plain kernel parameters .*runcvm sets root=, init, console= and every runcvm\.\* parameter itself/);
    expect((await leftovers(fx)).qemu).toEqual([]);
  });

  it('RUNCVM_KERNEL_DEBUG=1: the kernel boot messages appear on the container console (stdout), then the output', async () => {
    const r = await ctrRun(['echo', 'workload-done'], ['RUNCVM_KERNEL_DEBUG=1']);
    expect(r.exit, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Linux version \d+\.\d+/);
    expect(r.stdout).toMatch(/Command line: .*console=ttyS0/);
    expect(r.stdout).toMatch(/^workload-done\r?$/m);
  });

  it('RUNCVM_BREAK=prerun: a shell on the console after the mounts, before the workload; exit runs the workload', async () => {
    const shell = 'echo "shm=$(grep -c " /dev/shm " /proc/mounts)" > /tmp/break-mark; echo "IN-PRERUN-$((40 + 2))"\nexit\n';
    const r = await ctrRun(['cat', '/tmp/break-mark'], ['RUNCVM_BREAK=prerun'], { input: PAD + shell });
    expect(r.exit, r.stderr).toBe(0);
    expect(r.stdout).toContain('[runcvm-init] break=prerun: starting a shell (exit to run the workload)');
    expect(r.stdout).toContain('IN-PRERUN-42'); // the shell's own output, on the console
    expect(r.stdout).toMatch(/^shm=1$/m); // what the workload printed: the file the shell wrote, with /dev/shm mounted
  });

  it('RUNCVM_BREAK=preinit: the shell runs before init mounts anything; exit continues to the workload', async () => {
    const shell = 'echo "shm=$(grep -c " /dev/shm " /proc/mounts)" > /tmp/break-mark; echo "IN-PREINIT-$((40 + 2))"\nexit\n';
    const r = await ctrRun(['cat', '/tmp/break-mark'], ['RUNCVM_BREAK=preinit'], { input: PAD + shell });
    expect(r.exit, r.stderr).toBe(0);
    expect(r.stdout).toContain('[runcvm-init] break=preinit: starting a shell (exit to continue)');
    expect(r.stdout).toContain('IN-PREINIT-42');
    expect(r.stdout).toMatch(/^shm=0$/m);
  });

  it('RUNCVM_BREAK=initramfs: the shell runs before switch_root (new root at /newroot); exit boots the workload', async () => {
    const shell = 'echo from-initramfs > /newroot/tmp/break-mark; echo "IN-INITRAMFS-$((40 + 2))"\nexit\n';
    const r = await ctrRun(['cat', '/tmp/break-mark'], ['RUNCVM_BREAK=initramfs'], { input: PAD + shell });
    expect(r.exit, r.stderr).toBe(0);
    expect(r.stdout).toContain('[runcvm-initramfs] break: shell before switch_root');
    expect(r.stdout).toContain('IN-INITRAMFS-42');
    expect(r.stdout).toMatch(/^from-initramfs$/m);
  });

  it('RUNCVM_LOG_LEVEL=debug: init names /.runcvm/entrypoint and its argument count, never the arguments', async () => {
    const id = `set-dbg${++seq}`;
    const secret = 'tok-3f9a1c7e-not-for-logs';
    try {
      const r = await ctrRun(['sh', '-c', 'echo ran', 'sh', secret], ['RUNCVM_LOG_LEVEL=DEBUG'], { id });
      expect(r.exit, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^ran\r?$/m);
      const initLines = `${r.stdout}\n${r.stderr}\n${await readDebugLogs(fx)}`.split(/\r?\n/).filter((l) => l.includes('[runcvm-init]'));
      expect(initLines).toContain('[runcvm-init] entrypoint /.runcvm/entrypoint: 5 arguments');
      expect(initLines.filter((l) => l.includes(secret))).toEqual([]);
    } finally {
      // RUNCVM_LOG_LEVEL=DEBUG keeps the container's debug log after delete (for the user to read): remove ours only
      for (const name of await readdir(fx.logDir).catch(() => [])) if (name.includes(id)) await rm(join(fx.logDir, name), { force: true });
    }
  });

  it('leaves nothing behind', async () => {
    expect(await leftovers(fx)).toEqual({ qemu: [], state: [], logs: [], configCopies: [] });
  });
});

describe('RUNCVM_BREAK through dockerd: stdin goes back to the workload after the shell', () => {
  const dclosers = new CloserStack();
  let dockerd: StartedDockerd;
  let dfx: RuntimeFixture;
  let dimage: string;

  beforeAll(async () => {
    ({ fx: dfx, dockerd, image: dimage } = await startRuncvmDockerSuite(dclosers));
  });
  afterAll(async () => {
    await dclosers.close();
  });

  it('docker run -i with RUNCVM_BREAK=prerun: the shell reads stdin, then the workload reads stdin to its end', async () => {
    const shell = 'echo prerun-ran > /tmp/break-mark\nexit\n';
    const args = ['run', '--rm', '-i', '--runtime', 'runcvm', '-e', 'RUNCVM_BREAK=prerun', dimage, 'sh', '-c', 'cat /tmp/break-mark; cat; echo stdin-ended'];
    const r = summary(await dockerd.docker(args, { reject: false, timeoutMs: 110_000, input: PAD + shell }));
    expect(r.exit, r.stderr).toBe(0);
    // before the fix stdin stayed on the console for good: `cat` waited for ever and the container never ended
    expect(r.stdout).toMatch(/^prerun-ran\nstdin-ended$/m);
  });

  it('leaves nothing behind', async () => {
    expect(await leftovers(dfx)).toEqual({ qemu: [], state: [], logs: [], configCopies: [] });
  });
});
