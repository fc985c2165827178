/**
 * QEMU VM templates (issue 17): the build and restore argv (what `runcvm plan` prints is what runs), the QMP
 * sequences, the backend's template shape and its refusals, and the QMP client against a socket speaking the
 * protocol (greeting, return, error, events in between). The real QEMU runs in test/e2e/templates.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEMPLATE_CMDLINE_FLAG } from '../../../../../src/runcvm/guest/contract.js';
import { kernelCmdline } from '../../../../../src/runcvm/hypervisor/index.js';
import { qemu, qemuArgs } from '../../../../../src/runcvm/hypervisor/qemu/index.js';
import { Qmp, QmpError, restoreCommands, saveCommands, waitMigration } from '../../../../../src/runcvm/hypervisor/qemu/qmp.js';
import { qemuTemplateShape, shapeCmdline } from '../../../../../src/runcvm/hypervisor/qemu/template.js';
import type { VmPlan } from '../../../../../src/runcvm/hypervisor/types.js';

const cmdline = kernelCmdline({ rootDevice: '/dev/vda', upperDevice: '/dev/vdb', debug: false, kernelDebug: false, tscKhz: 2200000, tscReliable: true, modules: 'none', append: '' });
const vm: VmPlan = {
  accel: 'tcg',
  vcpus: 1,
  memoryMiB: 512,
  kernel: '/k/vmlinux',
  initrd: '/k/initramfs.img',
  cmdline,
  disks: [{ id: 'root', path: '/d/base.ext4', readOnly: true }, { id: 'upper', path: '/s/upper.ext4', readOnly: false }],
  console: { socket: '/s/console.sock' },
  io: { socket: '/s/io.sock', portName: 'runcvm.io' },
  agent: { socket: '/s/agent.sock', portName: 'org.runcvm.agent' },
  nics: [{ id: 'net0', tap: 'tap-eth0', mac: '52:54:00:aa:bb:01' }],
};
const after = (args: string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));

describe('QEMU template argv', () => {
  it('a cold boot is unchanged: no memory file, no QMP, no -incoming, the tap NIC', () => {
    const args = qemuArgs(vm);
    expect(args).not.toContain('-incoming');
    expect(args).not.toContain('-qmp');
    expect(args.join(' ')).not.toContain('memory-backend');
    expect(after(args, '-append')).toEqual([cmdline]);
    expect(after(args, '-netdev')).toEqual(['tap,id=net0,ifname=tap-eth0,script=no,downscript=no']);
    const p = qemu.plan(vm);
    expect(p.control).toBeUndefined();
    expect(p.restore).toBeUndefined();
    expect(p.notes).toEqual([]);
  });

  it('build: RAM shared in the template file, the flag on the command line, NICs without traffic, QMP', () => {
    const p = qemu.plan({ ...vm, templateBuild: { memory: '/t/memory' } });
    const args = p.argv.slice(4);
    expect(after(args, '-object')).toEqual(['memory-backend-file,id=runcvm-mem,size=512M,mem-path=/t/memory,share=on']);
    expect(after(args, '-machine')).toEqual(['memory-backend=runcvm-mem']);
    expect(after(args, '-append')).toEqual([`${cmdline} ${TEMPLATE_CMDLINE_FLAG}`]);
    expect(after(args, '-netdev')).toEqual(['hubport,id=net0,hubid=0']);
    expect(after(args, '-device')).toContain('virtio-net-device,netdev=net0,mac=52:54:00:aa:bb:01');
    expect(after(args, '-qmp')).toEqual(['unix:/s/qmp.sock,server=on,wait=off']);
    expect(args).not.toContain('-incoming');
    expect(p.control).toBe('/s/qmp.sock');
    expect(p.cleanup).toEqual(['/s/qmp.sock', '/s/save.sock']);
    expect(p.notes[0]!.lines.join('\n')).toContain('"uri":"unix:/s/save.sock"');
  });

  it('restore: the same machine, RAM mapped privately from the template, -incoming defer, the notes list the QMP steps', () => {
    const p = qemu.plan({ ...vm, template: { state: '/t/state', memory: '/t/memory' } });
    const args = p.argv.slice(4);
    expect(after(args, '-object')).toEqual(['memory-backend-file,id=runcvm-mem,size=512M,mem-path=/t/memory,share=off']);
    expect(after(args, '-incoming')).toEqual(['defer']);
    expect(after(args, '-append')).toEqual([`${cmdline} ${TEMPLATE_CMDLINE_FLAG}`]);
    // the container's own tap: the netdev backend is not in the saved state
    expect(after(args, '-netdev')).toEqual(['tap,id=net0,ifname=tap-eth0,script=no,downscript=no']);
    expect(p.restore).toEqual({ state: '/t/state', memory: '/t/memory' });
    expect(p.control).toBe('/s/qmp.sock');
    const notes = p.notes[0]!.lines;
    expect(notes[0]).toContain('fd 3');
    expect(notes.slice(1, 4)).toEqual(['qmp_capabilities', 'migrate-set-capabilities {"capabilities":[{"capability":"x-ignore-shared","state":true}]}', 'migrate-incoming {"uri":"fd:3"}']);
    expect(notes).toContain('cont');
    // build and restore differ only in the memory's share= and -incoming: the device shape is the same
    const build = qemuArgs({ ...vm, templateBuild: { memory: '/t/memory' } });
    const strip = (a: string[]) => a.filter((x) => !x.startsWith('memory-backend-file') && !x.startsWith('tap,') && !x.startsWith('hubport,') && x !== '-incoming' && x !== 'defer');
    expect(strip(args)).toEqual(strip(build));
  });

  it('a VM with shares never uses a template (virtiofs blocks migration)', () => {
    const shared = { ...vm, shares: [{ tag: 'v0', socket: '/s/v0.sock' }] };
    expect(() => qemuArgs({ ...shared, template: { state: 's', memory: 'm' } })).toThrow(/virtiofs/);
    expect(qemuTemplateShape(shared)).toEqual({ ok: false, reason: expect.stringContaining('virtiofs') });
  });

  it('QMP sequences: restore sets x-ignore-shared before migrate-incoming; save stops first', () => {
    expect(restoreCommands().map((c) => c.execute)).toEqual(['qmp_capabilities', 'migrate-set-capabilities', 'migrate-incoming']);
    expect(saveCommands('/x/save.sock').map((c) => c.execute)).toEqual(['qmp_capabilities', 'stop', 'migrate-set-capabilities', 'migrate']);
  });
});

describe('QEMU template shape', () => {
  it('holds the machine and the device shape, not paths or network words', () => {
    const a = qemuTemplateShape(vm);
    const b = qemuTemplateShape({ ...vm, disks: vm.disks.map((d) => ({ ...d, path: `/other${d.path}` })), nics: [{ id: 'net0', tap: 'tap9', mac: '52:54:00:00:00:09' }], cmdline: `${cmdline} runcvm.net.if=eth0,52:54:00:00:00:09,1500,10.0.0.2/24` });
    expect(a.ok && b.ok).toBe(true);
    expect(a).toEqual(b);
    if (!a.ok) throw new Error('unreachable');
    expect(a.shape).toMatchObject({ hypervisor: 'qemu', accel: 'tcg', vcpus: 1, memoryMiB: 512, nics: 1, cmdline: shapeCmdline(cmdline) });
    // each field that shapes the saved VM changes it
    for (const other of [{ ...vm, memoryMiB: 256 }, { ...vm, vcpus: 2 }, { ...vm, nics: [] }, { ...vm, disks: vm.disks.slice(0, 1) }, { ...vm, accel: 'kvm' as const }]) {
      expect(qemuTemplateShape(other)).not.toEqual(a);
    }
  });

  it('refuses what a template cannot carry, with the reason', () => {
    const refuse = (c: string) => qemuTemplateShape({ ...vm, cmdline: c });
    expect(refuse(`${cmdline} runcvm.break=initramfs`)).toEqual({ ok: false, reason: 'RUNCVM_BREAK is set' });
    expect(refuse(`${cmdline} runcvm.debug=1`)).toEqual({ ok: false, reason: expect.stringContaining('debug') });
    expect(refuse(cmdline.replace('quiet ', ''))).toEqual({ ok: false, reason: expect.stringContaining('kernel debug') });
    expect(refuse(`${cmdline} foo=bar`)).toEqual({ ok: false, reason: expect.stringContaining('foo=bar') });
  });
});

describe('QMP client', () => {
  let dir: string;
  let server: Server;
  const seen: string[] = [];
  let migrateStates: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-'));
    server = createServer((c) => {
      c.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}\r\n');
      let buf = '';
      c.on('data', (d) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const cmd = JSON.parse(buf.slice(0, nl)) as { execute: string };
          buf = buf.slice(nl + 1);
          seen.push(cmd.execute);
          // an event in between must not be taken for an answer
          c.write('{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n');
          if (cmd.execute === 'bad') c.write('{"error": {"class": "GenericError", "desc": "nope"}}\r\n');
          else if (cmd.execute === 'query-migrate') c.write(`${JSON.stringify({ return: { status: migrateStates.shift() ?? 'completed', 'error-desc': 'broken stream' } })}\r\n`);
          else c.write('{"return": {}}\r\n');
        }
      });
    });
    await new Promise<void>((r) => server.listen(join(dir, 'qmp.sock'), () => r()));
  });
  afterAll(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('greeting, commands in order, errors as QmpError, migration polled to completed or failed', async () => {
    const q = await Qmp.connect(join(dir, 'qmp.sock'), 2000);
    await q.execute({ execute: 'qmp_capabilities' });
    await expect(q.execute({ execute: 'bad' })).rejects.toThrow(new QmpError('GenericError: nope'));
    migrateStates = ['setup', 'active', 'completed'];
    await waitMigration(q, 5000, 1);
    migrateStates = ['active', 'failed'];
    await expect(waitMigration(q, 5000, 1)).rejects.toThrow('migration failed: broken stream');
    migrateStates = Array(1000).fill('active') as string[];
    await expect(waitMigration(q, 30, 1)).rejects.toThrow(/still 'active'/);
    q.close();
    expect(seen.slice(0, 2)).toEqual(['qmp_capabilities', 'bad']);
  });

  it('no QEMU on the socket: a bounded error', async () => {
    await expect(Qmp.connect(join(dir, 'absent.sock'), 100)).rejects.toThrow(/no QMP/);
  });
});
