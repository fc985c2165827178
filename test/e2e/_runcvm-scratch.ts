import { startContainerd } from '../harness/services/containerd.js';
import { startRegistry } from '../harness/services/registry.js';
import { pushBusyboxImage } from '../harness/images.js';

const reg = await startRegistry();
const cd = await startContainerd();
try {
  const ref = await pushBusyboxImage(reg);
  await cd.ctr(['images', 'pull', '--plain-http', ref]);
  const cmd = JSON.parse(process.env.CMD ?? '["sh","-c","echo out; echo err >&2; exit 7"]') as string[];
  for (const rt of (process.env.RT ?? 'runc,runcvm').split(',')) {
    const extra = rt === 'runcvm' ? ['--runc-binary', '/tmp/rcvdev/rt.sh'] : rt === 'shim' ? ['--runtime', '/tmp/rcvdev/containerd-shim-rcvtest-v2'] : [];
    const t0 = Date.now();
    const r = await cd.ctr(['run', '--rm', ...extra, ...(process.env.FLAGS ?? '').split(' ').filter(Boolean), ref, `c-${rt}`, ...cmd], { reject: false, timeoutMs: 60000, ...(process.env.INPUT ? { input: process.env.INPUT } : {}) });
    console.log(JSON.stringify({ rt, ms: Date.now() - t0, exit: r.exitCode, stdout: r.stdout.slice(0, 3000), stderr: r.stderr.slice(0, 3000) }));
  }
} finally {
  await cd.stop();
  await reg.stop();
}
