/**
 * Typed bodies of the Firecracker requests runcvm sends (the subset of schemas/firecracker-api.json it uses), and the
 * backend-specific input the per-device builders take. Pure types.
 */
import type { HttpMethod } from './schema.js';

export interface BootSourceBody {
  kernel_image_path: string;
  initrd_path?: string;
  boot_args?: string;
}

export interface DriveBody {
  drive_id: string;
  is_root_device: boolean;
  is_read_only: boolean;
  path_on_host: string;
  cache_type?: 'Unsafe' | 'Writeback';
  io_engine?: 'Sync' | 'Async';
}

export interface NetworkInterfaceBody {
  iface_id: string;
  host_dev_name: string;
  guest_mac?: string;
  mtu?: number;
}

export interface MachineConfigBody {
  vcpu_count: number;
  mem_size_mib: number;
  smt?: boolean;
  track_dirty_pages?: boolean;
}

export interface VsockBody {
  guest_cid: number;
  uds_path: string;
}

export interface LoggerBody {
  log_path?: string;
  level?: 'Error' | 'Warning' | 'Info' | 'Debug' | 'Trace' | 'Off';
  show_level?: boolean;
  show_log_origin?: boolean;
}

export interface MetricsBody {
  metrics_path: string;
}

export interface ActionBody {
  action_type: 'InstanceStart' | 'SendCtrlAltDel' | 'FlushMetrics';
}

/** PATCH /vm */
export interface VmStateBody {
  state: 'Paused' | 'Resumed';
}

/** PUT /snapshot/create */
export interface SnapshotCreateBody {
  snapshot_type?: 'Full' | 'Diff';
  snapshot_path: string;
  mem_file_path: string;
}

/** PUT /snapshot/load (the subset runcvm sends: never the deprecated mem_file_path) */
export interface SnapshotLoadBody {
  snapshot_path: string;
  mem_backend: { backend_type: 'File' | 'Uffd'; backend_path: string };
  resume_vm?: boolean;
  track_dirty_pages?: boolean;
  network_overrides?: { iface_id: string; host_dev_name: string }[];
  vsock_override?: { uds_path: string };
  clock_realtime?: boolean;
}

/** The --config-file document (the keys runcvm writes). */
export interface VmmConfigFile {
  'boot-source': BootSourceBody;
  drives: DriveBody[];
  'network-interfaces'?: NetworkInterfaceBody[];
  'machine-config'?: MachineConfigBody;
  vsock?: VsockBody;
  logger?: LoggerBody;
  metrics?: MetricsBody;
}

export interface ApiCall {
  method: HttpMethod;
  path: string;
  body?: unknown;
}

/** What one per-device builder returns: the API calls and the same configuration as a --config-file fragment. */
export interface DevicePlan {
  calls: ApiCall[];
  config: Partial<VmmConfigFile>;
}

/**
 * What the Firecracker backend needs to know about one microVM. Built from the runtime core's VmPlan by
 * `fromVmPlan` (plan.ts) plus the few facts only this backend needs (tap name and MAC, vsock socket).
 */
export interface FirecrackerVmInput {
  vcpus: number;
  memoryMiB: number;
  /** uncompressed vmlinux (Firecracker on x86_64 loads ELF or PVH kernels, not bzImage) */
  kernel: string;
  initrd?: string;
  /** the shared kernel command line contract (same as the QEMU path), before Firecracker-specific additions */
  cmdline: string;
  /** in guest order; exactly one has root: true and it comes first (it becomes /dev/vda) */
  disks: { id: string; path: string; readOnly: boolean; root: boolean }[];
  /** the pod network: one NIC per tap (tap-eth0 is bridged with the pod's eth0 by the launcher), with the pod's MAC */
  nics: { id: string; tap: string; mac: string; mtu?: number }[];
  /** guest agent channel: guest-initiated connections to port P reach `${udsPath}_${P}` on the host side */
  vsock: { cid: number; udsPath: string };
  logger?: { path: string; level: NonNullable<LoggerBody['level']> };
  metrics?: { path: string };
}
