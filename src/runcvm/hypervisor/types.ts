/**
 * The hypervisor's words, shared by the registry (./index.ts), the backends (qemu/, firecracker/) and their callers
 * (the launcher, `runcvm plan`). Nothing here belongs to one backend: a backend keeps its own details in its folder.
 *
 * A VM's life: `supports(facts)` (selection, at create) → `plan(vmPlan)` (pure: argv, files, sockets; what `runcvm
 * plan` prints) → `start(plan, io)` → RunningVm { exited, shutdown?, kill, cleanup }. VM templates (issue 17) extend
 * this, not the callers: `VmPlan.template` (start from a saved state instead of booting; the plan carries it as
 * `HypervisorPlan.restore`), `VmPlan.templateBuild` and a `save` on RunningVm, and `templateShape` (what must be equal
 * for a template to fit), each backend answering with its own mechanism (QEMU migration to a file and `-incoming`;
 * Firecracker's snapshot API). Design: docs/dev/notes/templates.md.
 */
import type { ToolError } from '../../core/errors.js';
import type { AccelFacts } from './accel.js';

export type HypervisorName = 'qemu' | 'firecracker';

/**
 * A saved VM (issue 17): the hypervisor's device state and the guest RAM file. Both are written once and never
 * changed in place (restored VMs map the RAM file privately): replace by rename, remove by unlink.
 */
export interface TemplateFiles {
  state: string;
  memory: string;
}

/** The backend-neutral description of one microVM (planVm in ./index.ts, from the LaunchSpec + the accel decision). */
export interface VmPlan {
  /** the container's id (Firecracker's --id, sanitised by the backend); unset in plans not made for a container */
  containerId?: string;
  accel: 'kvm' | 'tcg';
  vcpus: number;
  memoryMiB: number;
  kernel: string;
  initrd: string;
  /** full kernel command line */
  cmdline: string;
  /** cache: data disks (RUNCVM_DISKS) honour guest flushes ('writeback'); the rest default to 'unsafe' */
  disks: { id: string; path: string; readOnly: boolean; cache?: 'unsafe' | 'writeback' }[];
  /** where the launcher wants the guest's serial console, framed io channel and exec-agent channel to arrive */
  console: { socket: string };
  io: { socket: string; portName: string };
  /** exec (owner: exec): the agent's own port, multiplexing every exec (agent/exec.ts) */
  agent?: { socket: string; portName: string };
  /** virtio-net NICs on the taps the launcher's network step created (network/plan.ts); none → loopback only */
  nics?: { id: string; tap: string; mac: string }[];
  /** shared folders started by the launcher (volumes/apply.ts): tag + vhost-user socket */
  shares?: { tag: string; socket: string }[];
  /** start from this template instead of booting; the launcher sends RESUME once the VM runs again */
  template?: TemplateFiles;
  /** template build: boot parked (TEMPLATE_CMDLINE_FLAG) with the guest RAM in this file, so `save` can keep it */
  templateBuild?: { memory: string };
}

/** What must be equal for a template to fit a VM, or why this VM always boots cold (logged at info). */
export type TemplateShape = { ok: true; shape: Record<string, unknown> } | { ok: false; reason: string };

/** What a backend will run for one VmPlan. Pure data: `runcvm plan` prints it, the launcher starts it. */
export interface HypervisorPlan {
  hypervisor: HypervisorName;
  /** the whole command line inside the container (through the package's loader when the binary needs it) */
  argv: string[];
  /** the process's entire environment */
  env: Record<string, string>;
  /** files written (0600) just before the start, e.g. a configuration document */
  files: { path: string; content: string }[];
  /** stale paths removed before the start and after the exit (sockets a hypervisor refuses to bind over) */
  cleanup: string[];
  /**
   * Where the launcher listens for the guest: the framed io channel, the exec agent's channel, and the serial
   * console (absent: the console is the hypervisor's own stdout).
   */
  listen: { io: string; agent?: string; console?: string };
  /** the hypervisor's control socket for requests after the start (Firecracker's API; QEMU's QMP later) */
  control?: string;
  /** restore from these files (VmPlan.template): start() loads them and resumes the VM before it resolves */
  restore?: TemplateFiles;
  /** what `runcvm plan` shows besides the command and the files: titled sections in the backend's own terms */
  notes: { title: string; lines: string[] }[];
}

/** How a hypervisor process ended. */
export interface VmExit {
  code: number | null;
  signal: string | null;
  /** the last lines it wrote on stderr, for error messages */
  output: string;
}

/** What an orderly shutdown did (RunningVm.shutdown). */
export interface StopOutcome {
  /** the request to shut down was accepted */
  sent: boolean;
  /** the process ended by itself within the wait, without SIGKILL */
  graceful: boolean;
  /** it was already gone when the stop began */
  alreadyExited: boolean;
  /** why the request could not be sent (API not up yet, refused before boot, …) */
  problem?: string;
}

export interface StartOptions {
  /** each chunk the hypervisor writes on stdout (the guest console when plan.listen.console is absent) */
  onStdout(chunk: Buffer): void;
  /** each line it writes on stderr, as it comes (debug log) */
  onStderrLine?(line: string): void;
  /** the control requests it sends (debug log) */
  onControl?(request: string): void;
}

export interface RunningVm {
  readonly pid: number | undefined;
  /** resolves once the hypervisor process has ended */
  readonly exited: Promise<VmExit>;
  running(): boolean;
  /**
   * An orderly shutdown the guest turns into SIGTERM for the workload, a bounded wait, then SIGKILL. Absent when the
   * backend has none: the launcher then relies on the guest channel (signals forwarded to the workload).
   */
  readonly shutdown?: (graceMs: number) => Promise<StopOutcome>;
  /** SIGKILL now (no-op once ended) */
  kill(): void;
  /** why it ended, in runcvm's words, when the guest reported no exit status (undefined: nothing specific to say) */
  explainExit(exit: VmExit): ToolError | undefined;
  /** template build only: pause the VM, write its state to `to` (the RAM stays in the memory file), end the process */
  readonly save?: (to: TemplateFiles) => Promise<void>;
}

/** Host facts for the hypervisor choice, read at create (hypervisor/facts.ts). */
export interface HostFacts {
  kvm: AccelFacts;
  /** the firecracker binary the node offers (RUNCVM_FIRECRACKER, the guest package, PATH), if any */
  firecrackerPath?: string;
  /** where we looked, for the message when it is missing */
  firecrackerLookedFor: string;
}

/** A node file the container needs for the backend, bound read-only at create (Firecracker's binary). */
export interface HostBind {
  source: string;
  destination: string;
}

/** `reason`: one plain phrase for the log (why this backend was or was not chosen) */
export type Support = { ok: true; reason: string; binds: HostBind[] } | { ok: false; reason: string; error: ToolError };

export interface Hypervisor {
  readonly name: HypervisorName;
  /** the binary the backend runs, inside the container */
  readonly binary: string;
  /**
   * Can it run here? `requested`: the user asked for it by name (only what it needs to try; the hypervisor
   * reports deeper problems itself); otherwise the default choice, which must be confident.
   */
  supports(facts: HostFacts, requested: boolean): Support;
  plan(vm: VmPlan): HypervisorPlan;
  start(plan: HypervisorPlan, opts: StartOptions): Promise<RunningVm>;
  /** the template key's backend part (its version, its argv shape), or why this VM cannot use one (e.g. QEMU shares) */
  templateShape?(vm: VmPlan): TemplateShape;
}
