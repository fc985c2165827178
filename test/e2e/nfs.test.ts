/**
 * The user-space NFSv3 server against the real Linux NFS client: a QEMU guest (our kernel + initramfs) in a network
 * namespace reaches the server on 169.254.1.254 over a tap, mounts the export with the options runcvm uses
 * (vers=3,proto=tcp,port,mountport,mountproto=tcp,nolock: no portmapper) and proves that files written on either side
 * are seen on the other, ownership and permissions hold, a 100 MB file copies intact, and the mount survives a
 * server restart (old file handles keep working from the persistent handle map).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile, open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { projectPath } from '../../src/core/paths.js';
import { killMatching, logTail, startProcess, type ServiceProcess } from '../harness/proc.js';
import { waitFor } from '../harness/wait.js';
import { keepEvidence } from '../harness/evidence.js';
import { bootGuest, ensureGuestAssets, ext4FromDir, miniRootfs, type BootResult } from './guest-helpers.js';

const NS = `runcvm-nfs-${process.pid}`;
const SERVER_IP = '169.254.1.254';
const GUEST_IP = '169.254.1.1';
const PORT = 2049;
const BIG_MB = 100;

let tmp = '';
let exportDir = '';
let stateDir = '';
let bundle = '';
let server: ServiceProcess | undefined;
let restarted: ServiceProcess | undefined;
let bigSha = '';
let boot: BootResult | undefined;
const events: string[] = [];

keepEvidence(() => [server, restarted, tmp ? join(tmp, 'console.log') : undefined]);


async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  const fd = await open(path);
  try {
    for await (const chunk of fd.createReadStream()) h.update(chunk as Buffer);
  } finally {
    await fd.close().catch(() => undefined);
  }
  return h.digest('hex');
}

async function startServer(name: string): Promise<ServiceProcess> {
  const p = await startProcess(name, 'ip', ['netns', 'exec', NS, process.execPath, bundle, '--export', exportDir, '--listen', `${SERVER_IP}:${PORT}`, '--allow', GUEST_IP, '--state', stateDir, '--verbose'], {
    logPath: join(tmp, `${name}.log`),
  });
  await waitFor(`${name} listening`, async () => {
    p.assertAlive();
    return (await readFile(p.logPath, 'utf8')).includes(`listening on ${SERVER_IP}:${PORT}`);
  }, { timeoutMs: 30_000 });
  return p;
}

/** The guest's script: every line it prints that matters starts with a KEY. */
function guestScript(): string {
  const opts = `vers=3,proto=tcp,port=${PORT},mountport=${PORT},mountproto=tcp,nolock,addr=${SERVER_IP},lookupcache=positive`;
  const asApp = (cmd: string) => `su -s /bin/sh app -c '${cmd}'`;
  return `
ip link set lo up
ip link set eth0 up
ip addr add ${GUEST_IP}/32 dev eth0
ip route add ${SERVER_IP} dev eth0
mkdir -p /data
if ! mount -t nfs -o ${opts} ${SERVER_IP}:${exportDir} /data; then echo "MOUNT-FAILED"; poweroff -f; fi
echo "MOUNTED $(awk '$2 == "/data" {print $3}' /proc/mounts)"
echo "HOSTFILE $(cat /data/host.txt)"
echo "HOSTSTAT $(stat -c '%u:%g:%a' /data/host.txt)"
echo "DEEP $(cat /data/sub/deep.txt)"
echo guest-data > /data/guest.txt
mkdir /data/gdir && echo inner > /data/gdir/inner.txt
chown 1000:2000 /data/gdir && chmod 0750 /data/gdir
${asApp('echo from-app > /data/gdir/appfile && chmod 0600 /data/gdir/appfile')}
echo "APPSTAT $(stat -c '%u:%g:%a' /data/gdir/appfile)"
if ${asApp('echo x > /data/app-in-root')} 2>/dev/null; then echo "APPCREATE allowed"; else echo "APPCREATE denied"; fi
if ${asApp('echo hack >> /data/host.txt')} 2>/dev/null; then echo "APPWRITE allowed"; else echo "APPWRITE denied"; fi
if ${asApp('cat /data/host.txt')} >/dev/null 2>&1; then echo "APPREAD allowed"; else echo "APPREAD denied"; fi
ln -s guest.txt /data/link && echo "LINK $(readlink /data/link) $(cat /data/link)"
mv /data/guest.txt /data/guest-renamed.txt && echo "RENAMED $(cat /data/guest-renamed.txt)"
echo "LS $(ls /data | tr '\\n' ' ')"
echo "BIGSUM $(sha256sum /data/big.bin | cut -d' ' -f1)"
cp /data/big.bin /data/big-copy.bin && sync && echo "COPIED"
echo "PHASE1-DONE"
n=0; until [ -e /data/go.txt ]; do n=$((n + 1)); [ $n -gt 600 ] && break; sleep 0.2; done
echo "AFTER $(cat /data/after.txt)"
echo "OLDHANDLE $(cat /data/gdir/inner.txt)"
echo post-restart > /data/gdir/post.txt && sync && echo "WROTE-AFTER"
cd / && umount /data && echo "UMOUNTED"
echo "PHASE2-DONE"
poweroff -f
`;
}

beforeAll(async () => {
  await ensureGuestAssets();
  tmp = await mkdtemp(join(tmpdir(), 'runcvm-nfs-e2e-'));
  exportDir = join(tmp, 'vols', 'vol1');
  stateDir = join(tmp, 'state');
  await mkdir(join(exportDir, 'sub'), { recursive: true });
  await writeFile(join(exportDir, 'host.txt'), 'hello-from-host\n');
  await chown(join(exportDir, 'host.txt'), 1234, 1234);
  await chmod(join(exportDir, 'host.txt'), 0o640);
  await writeFile(join(exportDir, 'sub', 'deep.txt'), 'deep\n');
  const big = await open(join(exportDir, 'big.bin'), 'w');
  const h = createHash('sha256');
  for (let i = 0; i < BIG_MB; i++) {
    const chunk = randomBytes(1024 * 1024);
    h.update(chunk);
    await big.write(chunk);
  }
  await big.close();
  bigSha = h.digest('hex');

  // the server as the CLI runs it: one bundled file, started inside the namespace
  const { build } = await import('esbuild');
  bundle = join(tmp, 'nfs-serve.mjs');
  await build({
    stdin: {
      contents: `import { nfsServeMain } from ${JSON.stringify(projectPath('src/runcvm/nfs/main.ts'))};\nnfsServeMain(process.argv.slice(2)).then((c) => process.exit(c), (e) => { console.error(e); process.exit(1); });\n`,
      resolveDir: projectPath(),
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: bundle,
    logLevel: 'warning',
  });

  await run('ip', ['netns', 'add', NS]);
  const ns = (...args: string[]) => run('ip', ['-n', NS, ...args]);
  await ns('link', 'set', 'lo', 'up');
  await ns('tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
  await ns('link', 'set', 'tap0', 'up');
  await ns('addr', 'add', `${SERVER_IP}/32`, 'dev', 'tap0');
  await ns('route', 'add', `${GUEST_IP}/32`, 'dev', 'tap0');
  server = await startServer('nfs-server');

  const rootfs = await miniRootfs(join(tmp, 'rootfs'), {
    initScript: guestScript(),
    files: {
      'etc/passwd': 'root:x:0:0:root:/:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n',
      'etc/group': 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n',
    },
  });
  for (const applet of ['su', 'ip', 'mount', 'umount', 'awk', 'cat', 'stat', 'sha256sum', 'cut', 'cp', 'sync', 'mkdir', 'chown', 'chmod', 'ln', 'readlink', 'mv', 'ls', 'tr', 'sleep', 'poweroff']) {
    await run('ln', ['-s', 'busybox', join(rootfs, 'bin', applet)]);
  }
  const image = await ext4FromDir(rootfs, join(tmp, 'root.ext4'), '32M');

  // Boot; at PHASE1-DONE restart the server, then write after.txt and go.txt for the guest to find.
  let restart: Promise<void> | undefined;
  boot = await bootGuest({
    disks: [image],
    append: ['runcvm.init=/init.sh', 'runcvm.modules=nfs'],
    memoryMb: 384,
    prefix: ['ip', 'netns', 'exec', NS],
    qemuArgs: ['-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', 'virtio-net-device,netdev=n0'],
    timeoutMs: 420_000,
    onLine: (line) => {
      if (line.includes('PHASE1-DONE') && !restart) {
        restart = (async () => {
          events.push(`guest-copy-sha-during-mount ${await sha256File(join(exportDir, 'big-copy.bin'))}`);
          await server?.stop();
          events.push('server-stopped');
          restarted = await startServer('nfs-server-restarted');
          events.push('server-restarted');
          await writeFile(join(exportDir, 'after.txt'), 'written-after-restart\n');
          await writeFile(join(exportDir, 'go.txt'), 'go\n');
        })().catch((err: unknown) => {
          events.push(`restart-failed ${(err as Error).message}`);
        });
      }
    },
  });
  await restart;
  await writeFile(join(tmp, 'console.log'), boot.stdout);
}, 600_000);

afterAll(async () => {
  await server?.stop();
  await restarted?.stop();
  if (tmp) await killMatching(tmp);
  await run('ip', ['netns', 'del', NS], { reject: false });
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function value(key: string): string | undefined {
  const line = boot?.lines.find((l) => l.startsWith(`${key} `) || l === key);
  return line === undefined ? undefined : line.slice(key.length).trim();
}

describe('NFSv3 server ↔ Linux guest client', () => {
  it('the guest boots, mounts over TCP without a portmapper, and powers off cleanly', () => {
    const context = `console:\n${boot?.lines.join('\n')}\nserver log:\n${server ? logTail(server.logPath, 20) : ''}`;
    expect(boot?.timedOut, context).toBe(false);
    expect(boot?.exitCode, context).toBe(0);
    expect(value('MOUNTED'), context).toBe('nfs');
    expect(value('PHASE2-DONE'), context).toBe('');
    expect(value('UMOUNTED')).toBe('');
  });

  it('host → guest: content, owner, group and mode of host files', () => {
    expect(value('HOSTFILE')).toBe('hello-from-host');
    expect(value('HOSTSTAT')).toBe('1234:1234:640');
    expect(value('DEEP')).toBe('deep');
  });

  it('guest → host: files, folders, symlinks and renames land on the host with the guest-side owners', async () => {
    expect(await readFile(join(exportDir, 'guest-renamed.txt'), 'utf8')).toBe('guest-data\n');
    expect(existsSync(join(exportDir, 'guest.txt'))).toBe(false);
    expect(value('LINK')).toBe('guest.txt guest-data');
    const gdir = await stat(join(exportDir, 'gdir'));
    expect([gdir.uid, gdir.gid, gdir.mode & 0o7777]).toEqual([1000, 2000, 0o750]);
    const app = await stat(join(exportDir, 'gdir', 'appfile'));
    expect([app.uid, app.gid, app.mode & 0o7777]).toEqual([1000, 1000, 0o600]);
    expect(value('APPSTAT')).toBe('1000:1000:600');
    expect(await readFile(join(exportDir, 'gdir', 'appfile'), 'utf8')).toBe('from-app\n');
    const guestFile = await stat(join(exportDir, 'guest-renamed.txt'));
    expect([guestFile.uid, guestFile.gid]).toEqual([0, 0]);
  });

  it('permissions hold: uid 1000 cannot create in a 0755 root folder, nor append to or read a 0640 file of uid 1234', async () => {
    expect(value('APPCREATE')).toBe('denied');
    expect(existsSync(join(exportDir, 'app-in-root'))).toBe(false);
    expect(value('APPWRITE')).toBe('denied');
    expect(value('APPREAD')).toBe('denied');
    expect(await readFile(join(exportDir, 'host.txt'), 'utf8')).toBe('hello-from-host\n');
  });

  it(`a ${BIG_MB} MB file is read intact by the guest and its guest-side copy is intact on the host`, async () => {
    expect(value('BIGSUM')).toBe(bigSha);
    expect(value('COPIED')).toBe('');
    expect(events[0]).toBe(`guest-copy-sha-during-mount ${bigSha}`);
    expect((await stat(join(exportDir, 'big-copy.bin'))).size).toBe(BIG_MB * 1024 * 1024);
  });

  it('the mount survives a server restart: new host files are seen, old handles still work, writes land', async () => {
    expect(events).toContain('server-restarted');
    expect(value('AFTER')).toBe('written-after-restart');
    expect(value('OLDHANDLE')).toBe('inner');
    expect(value('WROTE-AFTER')).toBe('');
    expect(await readFile(join(exportDir, 'gdir', 'post.txt'), 'utf8')).toBe('post-restart\n');
    // the restarted server knew the handles from its state file: no fallback search of the export
    const log = await readFile(join(tmp, 'nfs-server-restarted.log'), 'utf8');
    expect(log).not.toMatch(/by searching/);
  });
});
