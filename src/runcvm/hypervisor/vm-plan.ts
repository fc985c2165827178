/**
 * The backend-neutral description of one microVM (VmPlan, made by planVm in ./index.ts) and what a backend turns it
 * into (Invocation). Kept apart from the backend registry so that the backends import these types without importing
 * the registry that imports them.
 */
export interface HostFacts {
  /** executables present in the guest package, by name */
  binaries: ReadonlySet<string>;
}

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
  console: { socket: string };
  io: { socket: string; portName: string };
  /** exec (owner: exec): the agent's own virtio-serial port, multiplexing every exec (agent/exec.ts) */
  agent?: { socket: string; portName: string };
  firmwareDir: string;
  /** virtio-net NICs on the taps the launcher's network step created (network/plan.ts); none → loopback only */
  nics?: { id: string; tap: string; mac: string }[];
  /** virtiofs shares started by the launcher (volumes/apply.ts): tag + vhost-user socket */
  shares?: { tag: string; socket: string }[];
}

export interface Invocation {
  file: string;
  args: string[];
  /** files the launcher writes (0600) just before the start (Firecracker's --config-file) */
  files?: { path: string; content: string }[];
  /** stale paths the launcher removes first (sockets a hypervisor refuses to bind over) */
  removeFirst?: string[];
  /** a static binary: run it directly instead of through the guest package's loader */
  direct?: boolean;
  /** where the guest's framed channel arrives, when not plan.io.socket (Firecracker: vsock <uds_path>_1024) */
  ioSocket?: string;
  /** the serial console is the hypervisor's stdout: no console socket to wait for */
  consoleOnStdout?: boolean;
  /** the hypervisor's API socket, for a graceful stop by the launcher (Firecracker: SendCtrlAltDel) */
  apiSocket?: string;
  /** where the guest exec agent's channel arrives, when not plan.agent.socket (Firecracker: vsock <uds_path>_1025) */
  execSocket?: string;
}
