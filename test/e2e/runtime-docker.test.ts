/**
 * runcvm under dockerd (`daemon.json` runtimes.runcvm.path = the runtime): `docker run --cpus 2 -m 512m` gives a VM
 * with 2 vCPUs and 512 MiB (seen in the guest's /proc), and user, workdir, env, hostname, /etc/hosts, --tmpfs and
 * exit codes match runc's output exactly. Leaves nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloserStack } from '../../src/core/fsx/index.js';
import type { StartedDockerd } from '../harness/services/dockerd.js';
import { leftovers, startRuncvmDockerSuite, summary, type RuntimeFixture } from './runcvm/setup.js';

const closers = new CloserStack();
let dockerd: StartedDockerd;
let fx: RuntimeFixture;
let image: string;

async function docker(runtime: 'runc' | 'runcvm', args: string[]) {
  return summary(await dockerd.docker(['run', '--rm', '--runtime', runtime, ...args], { reject: false, timeoutMs: 120_000 }));
}

describe('runcvm under dockerd (daemon.json runtimes)', () => {
  beforeAll(async () => {
    ({ fx, dockerd, image } = await startRuncvmDockerSuite(closers));
  });
  afterAll(async () => {
    await closers.close();
  });

  it('--cpus 2 -m 512m become a VM with 2 vCPUs and 512 MiB', async () => {
    const r = await docker('runcvm', ['--cpus', '2', '-m', '512m', image, 'sh', '-c', 'grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo']);
    expect(r.exit).toBe(0);
    const [cpus, mem] = r.stdout.trim().split('\n');
    expect(cpus).toBe('2');
    const kb = Number(/MemTotal:\s+(\d+) kB/.exec(mem ?? '')?.[1]);
    expect(kb).toBeGreaterThan(400 * 1024);
    expect(kb).toBeLessThanOrEqual(512 * 1024);
  });

  it('Docker\'s default seccomp profile filters the workload inside the guest, as runc applies it (issue 16 cause 11)', async () => {
    // unshare(CLONE_NEWUSER) needs no capability, but Docker's profile refuses unshare without CAP_SYS_ADMIN
    const args = [image, 'sh', '-c', 'grep Seccomp: /proc/self/status; unshare -U true 2>&1; echo "rc=$?"'];
    const runc = await docker('runc', args);
    const vm = await docker('runcvm', args);
    expect(runc).toMatchObject({ exit: 0, stdout: "Seccomp:\t2\nunshare: unshare(0x10000000): Operation not permitted\nrc=1\n" });
    expect(vm).toEqual(runc);
  });

  it('user, workdir, env, hostname, /etc/hosts, --tmpfs and exit code match runc', async () => {
    const args = ['--user', '1000:1000', '-w', '/tmp', '-e', 'GREETING=hello world', '--hostname', 'vmhost', '--tmpfs', '/cache:size=8m',
      image, 'sh', '-c', 'id; pwd; echo "$GREETING"; hostname; grep -c vmhost /etc/hosts; stat -f -c %T /cache; touch /cache/x && echo tmpfs-writable; echo err >&2; exit 42'];
    const runc = await docker('runc', args);
    const vm = await docker('runcvm', args);
    expect(runc.exit).toBe(42);
    expect(vm).toEqual(runc);
  });

  it('leaves nothing behind', async () => {
    expect(await leftovers(fx)).toEqual({ qemu: [], state: [], logs: [], configCopies: [] });
  });
});
