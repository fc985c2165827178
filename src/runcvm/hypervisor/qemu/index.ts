/**
 * The QEMU backend: the microvm argv, one pure builder per device, and the process it starts. Flags known to work
 * under TCG on this kind of host: `-M microvm,pit=on`, `-cpu max`, `tsc_early_khz` on the kernel command line (see
 * docs: ENVIRONMENT). QEMU and its libraries come from the guest package and run through its loader. QEMU connects to
 * the launcher's sockets (console, io, agent) as a client before the guest runs, so nothing is lost; it has no
 * orderly shutdown here: the launcher stops a workload through the guest channel.
 */
import { TEMPLATE_CMDLINE_FLAG } from '../../guest/contract.js';
import { CONTAINER_PATHS } from '../../launch/schema.js';
import { startProcess } from '../process.js';
import type { Hypervisor, HypervisorPlan, VmPlan } from '../types.js';
import { netArgs } from './net.js';
import { SHARED_MEMORY_ID, volumeArgs } from './volumes.js';
import { describeCommand, restoreCommands, saveCommands } from './qmp.js';
import { qemuStart, qemuTemplateShape, saveSocket } from './template.js';

export const QEMU_BINARY = `${CONTAINER_PATHS.guest}/bin/qemu-system-x86_64`;
/** QEMU's firmware and option ROMs (-L), in the guest package */
export const QEMU_FIRMWARE_DIR = `${CONTAINER_PATHS.guest}/share/qemu`;
/** QEMU runs through the loader, so it finds its modules only where this says */
export const QEMU_ENV = { PATH: `${CONTAINER_PATHS.guest}/bin:/usr/bin:/bin`, QEMU_MODULE_DIR: `${CONTAINER_PATHS.guest}/lib/x86_64-linux-gnu/qemu` };

export function machineArgs(plan: Pick<VmPlan, 'accel' | 'vcpus' | 'memoryMiB'>): string[] {
  const accel = plan.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,tb-size=64', '-cpu', 'max'];
  return [
    '-M', 'microvm,pit=on,pic=off,rtc=on',
    ...accel,
    '-smp', String(plan.vcpus),
    '-m', `${plan.memoryMiB}M`,
    '-nodefaults', '-no-user-config', '-no-reboot', '-nographic',
    '-L', QEMU_FIRMWARE_DIR,
  ];
}

export function kernelArgs(plan: Pick<VmPlan, 'kernel' | 'initrd' | 'cmdline'>): string[] {
  return ['-kernel', plan.kernel, '-initrd', plan.initrd, '-append', plan.cmdline];
}

export function blockArgs(disks: VmPlan['disks']): string[] {
  return disks.flatMap((d) => [
    '-drive', `id=${d.id},file=${d.path},format=raw,if=none,${d.readOnly ? 'readonly=on' : `cache=${d.cache ?? 'unsafe'}`},discard=unmap`,
    '-device', `virtio-blk-device,drive=${d.id}`,
  ]);
}

/** ttyS0 → a unix socket the launcher listens on (QEMU connects before the guest starts: nothing lost). */
export function consoleArgs(c: VmPlan['console']): string[] {
  return ['-chardev', `socket,id=con,path=${c.socket}`, '-serial', 'chardev:con'];
}

/** The framed host↔guest channel: one virtio-serial port named runcvm.io on a client unix socket. */
export function ioArgs(io: VmPlan['io']): string[] {
  return [
    '-device', 'virtio-serial-device,max_ports=2',
    '-chardev', `socket,id=io,path=${io.socket}`,
    '-device', `virtserialport,chardev=io,name=${io.portName},nr=1`,
  ];
}

/**
 * exec (owner: exec): the agent port on its own virtio-serial device (one more virtio-mmio transport), after ioArgs
 * so that runcvm.io keeps the first bus; the agent port names its bus.
 */
export function agentArgs(agent: VmPlan['agent']): string[] {
  if (!agent) return [];
  return [
    '-device', 'virtio-serial-device,id=agentser,max_ports=2',
    '-chardev', `socket,id=agent,path=${agent.socket}`,
    '-device', `virtserialport,bus=agentser.0,chardev=agent,name=${agent.portName},nr=1`,
  ];
}

/**
 * VM templates (issue 17): the guest RAM in a file. The build maps it shared (the RAM stays in the file, the saved
 * stream holds only the device state: capability x-ignore-shared); a restore maps the template's file privately
 * (share=off: every VM of one template shares its untouched pages, docs/dev/notes/templates.md constraint 10).
 */
export function templateMemoryArgs(memoryMiB: number, memPath: string, share: boolean): string[] {
  return [
    '-object', `memory-backend-file,id=${SHARED_MEMORY_ID},size=${memoryMiB}M,mem-path=${memPath},share=${share ? 'on' : 'off'}`,
    '-machine', `memory-backend=${SHARED_MEMORY_ID}`,
  ];
}

/** QEMU's control socket (QMP), next to the io socket; used only by template builds and restores. */
export function qmpSocket(vm: Pick<VmPlan, 'io'>): string {
  const i = vm.io.socket.lastIndexOf('/');
  return `${i >= 0 ? vm.io.socket.slice(0, i) : '.'}/qmp.sock`;
}

/**
 * The template build's NICs: each on a hub port of its own, no backend, no traffic (the netdev backend is not
 * migrated, only the device is; user-mode networking would be: slirp has a migration section the restore lacks).
 */
export function templateNetArgs(nics: readonly { id: string; mac: string }[], first = 0): string[] {
  return nics.flatMap((n, i) => ['-netdev', `hubport,id=${n.id},hubid=${first + i}`, '-device', `virtio-net-device,netdev=${n.id},mac=${n.mac}`]);
}

/** A template's command line: the one of its shape plus TEMPLATE_CMDLINE_FLAG (the initramfs parks on it). */
export function templateCmdline(cmdline: string): string {
  return cmdline.split(' ').includes(TEMPLATE_CMDLINE_FLAG) ? cmdline : `${cmdline} ${TEMPLATE_CMDLINE_FLAG}`;
}

export function qemuArgs(plan: VmPlan): string[] {
  const tmpl = plan.template ?? plan.templateBuild;
  if (tmpl && plan.shares && plan.shares.length > 0) throw new Error('qemu: a VM with shared folders cannot use a template (virtiofs blocks migration)');
  if (plan.template && plan.templateBuild) throw new Error('qemu: a VM is either restored from a template or builds one');
  const kernel = tmpl ? kernelArgs({ ...plan, cmdline: templateCmdline(plan.cmdline) }) : kernelArgs(plan);
  const memory = plan.template ? templateMemoryArgs(plan.memoryMiB, plan.template.memory, false) : plan.templateBuild ? templateMemoryArgs(plan.memoryMiB, plan.templateBuild.memory, true) : [];
  // a template build's NICs, and a NIC without a tap (a template check), carry no traffic
  const nics = (plan.nics ?? []).flatMap((n, i) => (plan.templateBuild || !n.tap ? templateNetArgs([n], i) : netArgs([n])));
  const control = tmpl ? ['-qmp', `unix:${qmpSocket(plan)},server=on,wait=off`] : [];
  const incoming = plan.template ? ['-incoming', 'defer'] : [];
  return [...machineArgs(plan), ...memory, ...kernel, ...consoleArgs(plan.console), ...blockArgs(plan.disks), ...ioArgs(plan.io), ...agentArgs(plan.agent), ...nics, ...volumeArgs(plan.shares, plan.memoryMiB), ...control, ...incoming];
}

/** The whole command inside the container: through the package's loader. */
export function qemuPlan(vm: VmPlan): HypervisorPlan {
  const plan: HypervisorPlan = {
    hypervisor: 'qemu',
    argv: [CONTAINER_PATHS.loader, '--library-path', `${CONTAINER_PATHS.guest}/lib`, QEMU_BINARY, ...qemuArgs(vm)],
    env: { ...QEMU_ENV },
    files: [],
    cleanup: [],
    listen: { io: vm.io.socket, console: vm.console.socket, ...(vm.agent ? { agent: vm.agent.socket } : {}) },
    notes: [],
  };
  if (vm.template) {
    plan.control = qmpSocket(vm);
    plan.cleanup.push(plan.control);
    plan.restore = { ...vm.template };
    plan.notes.push({
      title: 'template restore (QMP, in order)',
      lines: [
        `the state file ${vm.template.state} is opened read-only and inherited as fd 3`,
        ...restoreCommands().map(describeCommand),
        'query-migrate every 10 ms until "completed" (bounded; failed or stalled: the VM is killed, then a cold boot)',
        'cont',
        'RESUME frame on the io channel (clock, 64 random bytes, MACs, network words)',
      ],
    });
  } else if (vm.templateBuild) {
    plan.control = qmpSocket(vm);
    plan.cleanup.push(plan.control, saveSocket(plan.control));
    plan.notes.push({
      title: 'template build (QMP, once the guest sent PARKED)',
      lines: [...saveCommands(saveSocket(plan.control)).map(describeCommand), 'query-migrate until "completed" (the builder copies the stream into the state file)', 'quit'],
    });
  }
  return plan;
}

export const qemu: Hypervisor = {
  name: 'qemu',
  binary: QEMU_BINARY,
  // the guest package carries QEMU (create checks the package); TCG makes it run on any x86-64 host
  supports: () => ({ ok: true, reason: 'QEMU from the guest package (KVM when usable, else TCG)', binds: [] }),
  plan: qemuPlan,
  async start(plan, opts) {
    // templates (restore, save) go through QMP: ./template.ts
    if (plan.restore || plan.control) return qemuStart(plan, opts);
    const p = await startProcess(plan, opts);
    // nothing QEMU-specific to add: the launcher quotes its last stderr line
    return { ...p, explainExit: () => undefined };
  },
  templateShape: qemuTemplateShape,
};
