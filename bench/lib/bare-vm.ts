/**
 * The bare VM: the floor runcvm's data paths are measured against. A QEMU microvm started by hand with the runtime's
 * machine flags, kernel and initramfs, and the devices a person would attach by hand — nothing of runcvm's in the
 * path (no launcher, no agent, no runcvm-init, no runcvm device builders):
 *
 *   - virtio-net on a tap in the pod's network namespace, bridged with the pod's eth0 (`br0` = eth0 + tap0), the VM
 *     holding the pod IP: the same L2 path as runcvm's br-eth0, set up with plain `ip` and QEMU's defaults;
 *   - virtiofs: Debian's virtiofsd with its defaults on a host folder (QEMU vhost-user-fs-device, shared memfd RAM);
 *   - its own disk: an ext4 root image (virtio-blk, QEMU's default cache) with busybox and /init.sh;
 *   - a control port: one virtio-serial port on a unix socket; /init.sh runs a busybox sh loop that evaluates one
 *     line at a time and answers `@@EXIT <status>` (the floor for an exec round trip: a fork/exec in the guest).
 *
 *   const vm = await startBareVm({ dir, pod: net.pod, share });
 *   await vm.sh('dd if=/dev/zero of=/data/x bs=1M count=8');
 *   const ms = await vm.roundTrip();            // '/bin/true' → @@EXIT 0
 *   await vm.stop();
 */
import { createConnection, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { kernelAssets, tscEarlyKhz } from '../../src/runcvm/assets.js';
import { kernelCmdline } from '../../src/runcvm/hypervisor/index.js';
import { machineArgs } from '../../src/runcvm/hypervisor/qemu/index.js';
import { ext4FromDir, miniRootfs } from '../../test/e2e/guest-helpers.js';
import { startProcess, logTail, type ServiceProcess } from '../../test/harness/proc.js';
import { waitFor } from '../../test/harness/wait.js';

export const BARE_QEMU = '/usr/bin/qemu-system-x86_64';
export const BARE_VIRTIOFSD = '/usr/lib/qemu/virtiofsd';

export interface BareVmOptions {
  /** scratch folder (images, sockets, logs) */
  dir: string;
  /** the pod's network namespace (its eth0 is bridged to the VM's tap); none = no network device */
  pod?: string;
  /** the VM's address and gateway on the pod network */
  address?: { cidr: string; gateway: string };
  /** host folder shared over virtiofs at /data (Debian's virtiofsd, its defaults); none = no virtiofs */
  share?: string;
  /** virtiofsd options beyond the source (e.g. ['-o', 'cache=always']) */
  virtiofsdOptions?: string[];
  /** extra vhost-user-fs-device properties (e.g. 'queue-size=1024') */
  fsDeviceOptions?: string[];
  /** the root disk's size (room for what the measurements write), e.g. '512M' */
  diskSize?: string;
  memoryMiB?: number;
  /** more kernel parameters */
  append?: string;
  /** more QEMU arguments (e.g. a second disk) */
  extraArgs?: string[];
  /** runs once in the guest before the control loop (e.g. start servers); its output goes to the console */
  boot?: string;
}

export interface BareVm {
  /** run a shell line in the guest (busybox sh eval); resolves with its output and status */
  sh(line: string, timeoutMs?: number): Promise<{ status: number; output: string }>;
  /** one exec round trip: `/bin/true` (fork + exec in the guest) → @@EXIT, in ms */
  roundTrip(): Promise<number>;
  /** the QEMU process (for RSS sampling) */
  pid: number;
  /** virtiofsd's process, when the VM has a share */
  virtiofsdPid?: number;
  argv: string[];
  stop(): Promise<void>;
}

const CONTROL_PORT = 'bench.ctl';

/** /init.sh: plain busybox; network and mounts by hand; then the control loop on the virtio-serial port. */
function initScript(o: BareVmOptions): string {
  const lines = [
    '/bin/busybox --install -s /bin',
    'mount -t tmpfs -o mode=1777 tmpfs /tmp',
    'mkdir -p /dev/pts && mount -t devpts devpts /dev/pts',
    'ip link set lo up',
  ];
  if (o.pod && o.address) {
    lines.push(
      'for i in $(seq 1 100); do [ -e /sys/class/net/eth0 ] && break; usleep 100000; done',
      `ip addr add ${o.address.cidr} dev eth0`,
      'ip link set eth0 up',
      `ip route add default via ${o.address.gateway}`,
    );
  }
  if (o.share) lines.push('mkdir -p /data && mount -t virtiofs share /data || echo "BARE-ERROR virtiofs mount failed"');
  lines.push(
    o.boot ?? '',
    'port=',
    `for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name)" = ${CONTROL_PORT} ] && port=/dev/\${p##*/}; done`,
    '[ -n "$port" ] || { echo "BARE-ERROR no control port"; poweroff -f; }',
    'exec 3<>$port',
    'echo BARE-READY',
    // a port reads EOF while no host end is connected: wait for one instead of ending the loop
    'while :; do if read -r line <&3; then eval "$line" </dev/null >&3 2>&3; echo "@@EXIT $?" >&3; else usleep 20000; fi; done',
  );
  return lines.join('\n') + '\n';
}

export async function startBareVm(o: BareVmOptions): Promise<BareVm> {
  const root = join(o.dir, 'root');
  await miniRootfs(root, { initScript: initScript(o) });
  await mkdir(join(root, 'root'), { recursive: true });
  const image = await ext4FromDir(root, join(o.dir, 'root.ext4'), o.diskSize ?? '512M');
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  };
  try {
    const inPod = o.pod ? ['ip', 'netns', 'exec', o.pod] : [];
    if (o.pod) {
      const ip = (args: string[]) => run('ip', ['-n', o.pod!, ...args]);
      // the pod's eth0 gives its address to the VM and joins a bridge with the VM's tap (as by hand)
      await ip(['addr', 'flush', 'dev', 'eth0']);
      await ip(['link', 'add', 'br0', 'type', 'bridge']);
      await ip(['link', 'set', 'eth0', 'master', 'br0']);
      await ip(['tuntap', 'add', 'dev', 'tap0', 'mode', 'tap']);
      await ip(['link', 'set', 'tap0', 'master', 'br0']);
      for (const l of ['br0', 'tap0']) await ip(['link', 'set', l, 'up']);
    }
    const qemuArgs = [
      ...machineArgs({ accel: 'tcg', vcpus: 1, memoryMiB: o.memoryMiB ?? 512 }),
      '-kernel', kernelAssets().vmlinux, '-initrd', kernelAssets().initramfs,
      '-append', kernelCmdline({ rootDevice: '/dev/vda', debug: false, kernelDebug: false, append: ['runcvm.init=/init.sh', o.append ?? ''].join(' ').trim(), modules: 'none', tscReliable: true, ...tsc() }),
      '-drive', `id=root,file=${image},format=raw,if=none`, '-device', 'virtio-blk-device,drive=root',
      '-device', 'virtio-serial-device',
      '-chardev', `socket,id=ctl,path=${join(o.dir, 'ctl.sock')},server=on,wait=off`,
      '-device', `virtserialport,chardev=ctl,name=${CONTROL_PORT}`,
      '-serial', 'stdio',
    ];
    qemuArgs.push(...(o.extraArgs ?? []));
    if (o.pod) qemuArgs.push('-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', 'virtio-net-device,netdev=n0');
    let virtiofsdPid: number | undefined;
    if (o.share) {
      const sock = join(o.dir, 'vfs.sock');
      const vfsd = await startProcess('bare virtiofsd', BARE_VIRTIOFSD, [`--socket-path=${sock}`, '-o', `source=${o.share}`, ...(o.virtiofsdOptions ?? [])], { logPath: join(o.dir, 'virtiofsd.log') });
      stops.push(() => vfsd.stop(2000));
      virtiofsdPid = vfsd.pid;
      await waitFor('bare virtiofsd socket', async () => {
        vfsd.assertAlive();
        return (await run('test', ['-S', sock], { reject: false })).exitCode === 0;
      }, { timeoutMs: 20_000 });
      qemuArgs.push(
        '-object', `memory-backend-memfd,id=mem,size=${o.memoryMiB ?? 512}M,share=on`, '-machine', 'memory-backend=mem',
        '-global', 'virtio-mmio.force-legacy=false',
        '-chardev', `socket,id=vfs,path=${sock}`, '-device', ['vhost-user-fs-device,chardev=vfs,tag=share', ...(o.fsDeviceOptions ?? [])].join(','),
      );
    }
    const [file, ...pre] = [...inPod, BARE_QEMU];
    const qemu: ServiceProcess = await startProcess('bare VM', file!, [...pre, ...qemuArgs], { logPath: join(o.dir, 'console.log') });
    stops.push(() => qemu.stop(3000));
    await waitFor('the bare VM to boot (BARE-READY on its console)', () => {
      qemu.assertAlive();
      const log = logTail(qemu.logPath, 200);
      if (log.includes('BARE-ERROR')) throw new Error(log);
      return log.includes('BARE-READY');
    }, { timeoutMs: 300_000, intervalMs: 200 });
    const ctl = await control(join(o.dir, 'ctl.sock'));
    stops.push(async () => void ctl.socket.destroy());
    return {
      pid: qemu.pid,
      ...(virtiofsdPid ? { virtiofsdPid } : {}),
      argv: [BARE_QEMU, ...qemuArgs],
      sh: ctl.sh,
      roundTrip: async () => {
        const t0 = performance.now();
        const r = await ctl.sh('/bin/true');
        if (r.status !== 0) throw new Error(`bare VM: /bin/true exited ${r.status}: ${r.output}`);
        return performance.now() - t0;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function tsc(): { tscKhz?: number } {
  const khz = tscEarlyKhz(readFileSync('/proc/cpuinfo', 'utf8'));
  return khz ? { tscKhz: khz } : {};
}

/** The host end of the control port: one line out, output lines back until `@@EXIT n`. One command at a time. */
async function control(path: string): Promise<{ socket: Socket; sh: BareVm['sh'] }> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = createConnection(path, () => resolve(s));
    s.once('error', reject);
  });
  let buffer = '';
  let waiting: ((line: string) => void) | undefined;
  const lines: string[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      lines.push(line);
      waiting?.(line);
    }
  });
  let queue = Promise.resolve();
  const sh = (line: string, timeoutMs = 600_000) => {
    if (line.includes('\n')) throw new Error('bare VM control: one line per command');
    const result = queue.then(
      () =>
        new Promise<{ status: number; output: string }>((resolve, reject) => {
          const out: string[] = [];
          const timer = setTimeout(() => reject(new Error(`bare VM: no @@EXIT within ${timeoutMs} ms for: ${line}\n${out.join('\n')}`)), timeoutMs);
          lines.length = 0;
          waiting = (l) => {
            const m = /^@@EXIT (\d+)$/.exec(l);
            if (!m) return void out.push(l);
            clearTimeout(timer);
            waiting = undefined;
            resolve({ status: Number(m[1]), output: out.join('\n') });
          };
          socket.write(`${line}\n`);
        }),
    );
    queue = result.then(() => undefined, () => undefined);
    return result;
  };
  return { socket, sh };
}

/** A multi-line script as one control line (base64 through the guest's busybox). */
export function oneLine(script: string): string {
  return `eval "$(echo ${Buffer.from(script).toString('base64')} | base64 -d)"`;
}

export async function writeExecutable(path: string, text: string): Promise<void> {
  await writeFile(path, text);
  await chmod(path, 0o755);
}
