import { mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';
import { CloserStack, tempDir } from '../../src/core/fsx/index.js';
import { projectPath } from '../../src/core/paths.js';
import { cpuKhzFromCpuinfo } from '../../src/runcvm/hypervisor/accel.js';
import { kernelCmdline } from '../../src/runcvm/hypervisor/index.js';
import { startContainerd } from '../harness/services/containerd.js';
import { startRegistry } from '../harness/services/registry.js';
import { pushBusyboxImage, pushDebootstrapImage } from '../harness/images.js';
import { pushVariant, runtimeFixture } from './runcvm/setup.js';

const REPS = 3;
const closers = new CloserStack();
const med = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
async function timed(file: string, args: string[]): Promise<[number, number]> {
  const t0 = performance.now(); let first = NaN;
  await run(file, args, { reject: false, timeoutMs: 300_000, onStdoutLine: (l) => { if (Number.isNaN(first) && l.includes('ready')) first = performance.now() - t0; } });
  return [first, performance.now() - t0];
}
try {
  const fx = await runtimeFixture(closers);
  const dir = await tempDir('mini-bench', closers);
  const reg = await startRegistry(); closers.push('reg', () => reg.stop());
  const cd = await startContainerd(); closers.push('cd', () => cd.stop());
  const busybox = await pushBusyboxImage(reg);
  const small = await pushVariant(reg, 'ten-mb', { bigFileMiB: 7 });
  const debian = await pushDebootstrapImage(reg);
  for (const ref of [busybox, small, debian]) await cd.ctr(['images', 'pull', '--plain-http', ref], { timeoutMs: 600_000 });
  const kernel = projectPath('var', 'assets', 'kernel');
  const rootfs = join(dir, 'trivial');
  for (const d of ['dev', 'proc', 'sys']) await mkdir(join(rootfs, d), { recursive: true });
  await writeFile(join(dir, 'init.c'), '#include <fcntl.h>\n#include <unistd.h>\n#include <sys/reboot.h>\nint main(void){int fd=open("/dev/console",O_WRONLY);write(fd,"ready\\n",6);sync();reboot(RB_POWER_OFF);return 0;}\n');
  await run('gcc', ['-static', '-Os', '-o', join(rootfs, 'init'), join(dir, 'init.c')]);
  await run('mke2fs', ['-q', '-t', 'ext4', '-d', rootfs, join(dir, 't.ext4'), '16M']);
  const khz = cpuKhzFromCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
  const cmdline = kernelCmdline({ rootDevice: '/dev/vda', debug: false, kernelDebug: false, append: 'runcvm.init=/init', modules: 'none', ...(khz ? { tscKhz: khz } : {}) });
  const bare = ['-M', 'microvm,pit=on,pic=off,rtc=on', '-accel', 'tcg,tb-size=64', '-cpu', 'max', '-smp', '1', '-m', '512M', '-nodefaults', '-no-user-config', '-no-reboot', '-nographic',
    '-kernel', join(kernel, 'vmlinux'), '-initrd', join(kernel, 'initramfs.img'), '-append', cmdline, '-drive', `id=root,file=${join(dir, 't.ext4')},format=raw,if=none,readonly=on`, '-device', 'virtio-blk-device,drive=root', '-serial', 'stdio'];
  let n = 0;
  const ctr = (rt: string, image: string) => timed('ctr', ['--address', cd.socket, '-n', cd.namespace, 'run', '--rm', ...(rt === 'runcvm' ? ['--runc-binary', fx.wrapper] : []), image, `m${++n}`, 'sh', '-c', 'echo ready']);
  const res: Record<string, [number, number][]> = { bare: [], runcvm: [], runc: [], small: [], debian: [] };
  await ctr('runcvm', busybox); await ctr('runcvm', small); await ctr('runcvm', debian); // warm caches
  for (let i = 0; i < REPS; i++) {
    res.bare!.push(await timed('qemu-system-x86_64', bare));
    res.runcvm!.push(await ctr('runcvm', busybox));
    res.runc!.push(await ctr('runc', busybox));
    res.small!.push(await ctr('runcvm', small));
    res.debian!.push(await ctr('runcvm', debian));
  }
  const out = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { first: Math.round(med(v.map((x) => x[0]))), exit: Math.round(med(v.map((x) => x[1]))) }]));
  console.log(JSON.stringify(out));
  console.log('runcvm/bare first', (out.runcvm!.first / out.bare!.first).toFixed(3), 'exit', (out.runcvm!.exit / out.bare!.exit).toFixed(3));
  console.log('200MB/10MB first', (out.debian!.first / out.small!.first).toFixed(3), 'exit', (out.debian!.exit / out.small!.exit).toFixed(3));
} finally { await closers.close(); }
