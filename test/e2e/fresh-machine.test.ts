/**
 * The README's promise, on every run: on a bare Debian 12 machine (debootstrap minbase plus Node.js and npm, nothing
 * else; test/harness/fresh-root) with this checkout's HEAD cloned into /root, `npm run demo` installs every Debian
 * package, the npm dependencies, the build and the guest assets, and prints the workload's output and exit code; a
 * second `npm run demo` does none of that again. Setup's own failures name cause and fix there (not root, no network,
 * a small disk, a package apt cannot find). The suite's rootless builds (UID 1000, which a bare machine does not
 * have, from a clone in /root, which UID 1000 cannot enter) and the Firecracker driver tests run there too. The root
 * has no /dev/kvm unless the host's KVM is usable, so on this kind of machine it is also a no-KVM run.
 *
 * A package dropped from setup's APT_PACKAGES that the demo or those tests need makes this file fail; so does a step
 * that only works because the developer's machine already has something (a user, a tool, a cache in the checkout).
 * Cost: the minbase tree is cached outside the checkout (about 40 s once); apt's .deb downloads and npm's cache are
 * kept between runs, but every package is installed and every npm package checked on each run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { CLONE, freshMachine, FRESH_LOCK, holdLock, processesRootedIn, tail, type FreshMachine } from '../harness/fresh-root/index.js';
import { mountsUnder } from '../harness/proc.js';

let m: FreshMachine;
let release: (() => Promise<void>) | undefined;

/** every [setup] and [assets:…] line: what setup did */
const setupLines = (stderr: string) => stderr.split('\n').filter((l) => /^\[(setup|assets:[a-z]+)\]/.test(l));

/** the example's workload output and exit code (examples/hello/hello.sh), as the demo prints them */
function expectWorkload(r: { stdout: string; stderr: string }, detail: string) {
  expect(r.stdout, detail).toContain('Hello from a microVM\n');
  // the guest's kernel (Debian's cloud kernel booted by QEMU), not the host's
  const kernel = /^kernel: (\S+)$/m.exec(r.stdout)?.[1];
  expect(kernel, detail).toMatch(/-cloud-amd64$/);
  expect(kernel).not.toBe(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
  expect(r.stdout, detail).toMatch(/^cpus: 1, memory: \d+ kB$/m);
  expect(r.stderr, detail).toContain('this line goes to stderr\n');
  expect(r.stderr, detail).toContain('[demo] workload exit code: 3');
}

describe('a bare Debian 12 machine: the README\'s commands work there', () => {
  beforeAll(async () => {
    release = await holdLock(FRESH_LOCK);
    m = await freshMachine({ aptCache: true, npmCache: true });
    const dirty = (await run('git', ['-C', projectPath(), 'status', '--porcelain', '--untracked-files=no'])).stdout.trim();
    // the machine gets the committed HEAD, as CI does; uncommitted changes are not in it
    if (dirty) process.stderr.write(`fresh-machine: testing commit ${m.commit}; uncommitted changes are not part of it:\n${dirty}\n`);
  }, 20 * 60_000);

  afterAll(async () => {
    try {
      if (m) {
        const dir = m.dir;
        await m.destroy();
        expect(existsSync(dir)).toBe(false);
      }
    } finally {
      await release?.();
    }
  }, 5 * 60_000);

  it('starts bare: no Debian package of setup\'s list (not even git), no UID 1000, no /dev/kvm unless the host\'s KVM is usable, the clone in /root (0700)', async () => {
    const r = await m.run(`dpkg-query -W -f='\${Package} \${Status}\\n' containerd qemu-system-x86 buildah gcc 2>/dev/null | grep -c ' installed$' || true
      getent passwd 1000 || echo no-uid-1000
      test -e /dev/kvm && echo kvm || echo no-kvm
      stat -c %a /root; command -v git || echo no-git`);
    expect(r.exitCode, tail(r)).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['0', 'no-uid-1000', m.kvm ? 'kvm' : 'no-kvm', '700', 'no-git', '']);
    // the clone holds the checkout's HEAD (read from outside: a bare machine has no git until setup installs it)
    expect((await run('git', ['-C', join(m.dir, CLONE), 'rev-parse', 'HEAD'])).stdout.trim()).toBe(m.commit);
  });

  describe("setup's own failures name the cause and the fix (exit 6), before it changes anything", () => {
    it('not root', async () => {
      const r = await m.run(`mkdir -p /tmp/as-user/scripts && cp ${CLONE}/scripts/setup.sh /tmp/as-user/scripts/ && chmod -R a+rX /tmp/as-user
        cd /tmp && setpriv --reuid 65534 --regid 65534 --clear-groups bash /tmp/as-user/scripts/setup.sh; s=$?; rm -rf /tmp/as-user; exit $s`);
      expect(r.exitCode, tail(r)).toBe(6);
      expect(r.stderr).toMatch(/^\[setup\] missing Debian packages: .*\bcontainerd\b/m);
      expect(r.stderr).toContain('[setup] fix: run this script as root (sudo npm run setup)');
    });

    it('no network to the Debian archive', async () => {
      const r = await m.run(`cd ${CLONE} && bash scripts/setup.sh`, { noNetwork: true, mounts: [] });
      expect(r.exitCode, tail(r)).toBe(6);
      expect(r.stderr).toMatch(/^\[setup\] error: cannot reach the Debian archive: .*deb\.debian\.org/m);
      expect(r.stderr).toContain("[setup] fix: check this machine's network, DNS (/etc/resolv.conf) and any proxy");
    });

    it('not enough disk space for the packages', async () => {
      const r = await m.run(`cd ${CLONE} && bash scripts/setup.sh`, { mounts: ['tmpfs 64m /var/cache/apt/archives'] });
      expect(r.exitCode, tail(r)).toBe(6);
      expect(r.stderr).toMatch(/^\[setup\] error: not enough disk space: \/var\/cache\/apt\/archives has 6\d MiB free; installing \d+ Debian packages needs about 2048 MiB$/m);
      expect(r.stderr).toContain('[setup] fix: free space on that filesystem');
    });

    it('a package apt cannot find', async () => {
      // setup's list with one name no Debian suite has (a copy, so the clone's own script stays as committed)
      const r = await m.run(`cd ${CLONE} && sed 's/^  docker-registry /  no-such-package-kimia docker-registry /' scripts/setup.sh > scripts/setup-unknown.sh
        bash scripts/setup-unknown.sh; s=$?; rm -f scripts/setup-unknown.sh; exit $s`, { timeoutMs: 5 * 60_000 });
      expect(r.exitCode, tail(r)).toBe(6);
      expect(r.stderr).toMatch(/^\[setup\] error: apt cannot find the Debian package\(s\): no-such-package-kimia$/m);
      expect(r.stderr).toContain('[setup] fix: these are in Debian 12 (bookworm) main');
    }, 5 * 60_000);
  });

  it('npm run demo: installs everything, then builds, pushes and runs the example as a microVM (exit code 3)', async () => {
    const r = await m.run(`cd ${CLONE} && npm run demo`, { timeoutMs: 20 * 60_000 });
    const detail = tail(r);
    expect(r.exitCode, detail).toBe(0);
    const did = setupLines(r.stderr);
    const installed = /^\[setup\] installing (\d+) Debian packages: (.*)$/m.exec(r.stderr);
    expect(installed, detail).not.toBeNull();
    for (const p of ['containerd', 'runc', 'buildah', 'uidmap', 'qemu-system-x86', 'busybox-static', 'docker-registry', 'gcc', 'kmod', 'cpio']) {
      expect(installed![2]!.split(' '), detail).toContain(p);
    }
    expect(did, detail).toContain('[setup] npm ci');
    expect(did, detail).toContain('[setup] building TypeScript');
    for (const step of ['kernel', 'guest']) expect(did.some((l) => l.startsWith(`[assets:${step}] ready:`)), detail).toBe(true);
    expectWorkload(r, detail);
  }, 20 * 60_000);

  it('a second npm run demo does no install or build step and shows the same workload', async () => {
    const r = await m.run(`cd ${CLONE} && npm run demo`, { timeoutMs: 10 * 60_000 });
    const detail = tail(r);
    expect(r.exitCode, detail).toBe(0);
    expect(setupLines(r.stderr), detail).toEqual([]);
    expectWorkload(r, detail);
  }, 10 * 60_000);

  it('the suite runs there from the /root clone: rootless kimia as UID 1000 (created, bin/kimia staged) and the Firecracker driver without /dev/kvm', async () => {
    // the suite's global set-up wants the debootstrap image, which is ~45 s to make: seed the clone's cache with ours
    const oci = projectPath('var', 'cache', 'debootstrap', 'bookworm-minbase.oci');
    if (existsSync(join(oci, 'index.json'))) {
      await mkdir(join(m.dir, CLONE, 'var', 'cache', 'debootstrap'), { recursive: true });
      await cp(oci, join(m.dir, CLONE, 'var', 'cache', 'debootstrap', 'bookworm-minbase.oci'), { recursive: true });
    }
    const r = await m.run(`cd ${CLONE} && npx vitest run test/e2e/kimia-preflight.test.ts test/e2e/firecracker.test.ts; s=$?; getent passwd 1000; exit $s`, { timeoutMs: 15 * 60_000 });
    const detail = tail(r, 120);
    expect(r.exitCode, detail).toBe(0);
    expect(r.stdout, detail).toMatch(/Test Files {2}2 passed \(2\)/);
    expect(r.stdout, detail).not.toMatch(/Cannot find module/);
    expect(r.stdout).toMatch(/^kimia:x:1000:1000:/m);
  }, 15 * 60_000);

  it('leaves no process and no mount of the machine behind', async () => {
    expect(await processesRootedIn(m.dir)).toEqual([]);
    expect(await mountsUnder(m.dir)).toEqual([]);
  });
});
