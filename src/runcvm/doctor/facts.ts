/**
 * What the doctor's probes observe. Plain data, so verdicts are pure and tests feed them fixtures.
 */

export type Status = 'pass' | 'warn' | 'fail';

export interface Check {
  readonly id: string;
  readonly title: string;
  readonly status: Status;
  /** what was observed and why it matters (the guide's symptom text when it fails) */
  readonly cause: string;
  /** the command or YAML that fixes it ('' when nothing to do) */
  readonly fix: string;
}

export interface FileFact {
  readonly path: string;
  readonly exists: boolean;
  readonly isCharDevice?: boolean;
  readonly isFile?: boolean;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** device major/minor for character devices */
  readonly rdevMajor?: number;
  readonly rdevMinor?: number;
  /** this process may read and write it */
  readonly readWrite?: boolean;
  readonly executable?: boolean;
  /** bytes (regular files) */
  readonly size?: number;
}

export interface ToolFact {
  readonly path?: string;
  readonly version?: string;
}

export interface ConfigFileFact {
  readonly path: string;
  /** undefined when the file does not exist */
  readonly text?: string;
  /** the user pointed at this file (a missing file is then an error, not "not used") */
  readonly explicit: boolean;
  readonly readError?: string;
}

export interface DebugLogFact {
  readonly path: string;
  readonly uid: number;
  readonly mode: number;
}

export interface NodeFacts {
  readonly uid: number;
  readonly kvm: FileFact;
  /** the virtualization-related CPU flags seen in /proc/cpuinfo (vmx, svm, hypervisor) */
  readonly cpuFlags: readonly string[];
  /** loaded kvm modules (from /sys/module): kvm, kvm_intel, kvm_amd, kvm_pvm */
  readonly kvmModules: readonly string[];
  readonly tun: FileFact;
  readonly runc: ToolFact;
  readonly qemu: ToolFact;
  readonly assetsDir: string;
  readonly kernel: FileFact;
  readonly initramfs: FileFact;
  readonly guestLd: FileFact;
  readonly guestQemu: FileFact;
  readonly containerd: ConfigFileFact;
  /** `containerd --version` output, when containerd is installed */
  readonly containerdVersion?: string;
  readonly k3sTemplate: ConfigFileFact;
  readonly docker: ConfigFileFact;
  /** executability of every runtime path named by the configs above */
  readonly binaries: Readonly<Record<string, FileFact>>;
  readonly cache: { readonly path: string; readonly probedPath: string; readonly freeBytes?: number };
  /** where the per-container writable disks (upper.ext4) live: $RUNCVM_STATE_DIR, default /run/runcvm */
  readonly state?: { readonly path: string; readonly probedPath: string; readonly freeBytes?: number; readonly tmpfs: boolean };
  /** where the runtime writes runcvm-<id>.debug ($RUNCVM_LOG_DIR, default /tmp) */
  readonly logDir?: string;
  readonly debugLogs: readonly DebugLogFact[];
  readonly sharedLog?: FileFact;
  readonly maxUserNamespaces?: number;
  readonly unprivilegedUsernsClone?: number;
}

export interface IpAddr {
  readonly family: string;
  readonly local: string;
  readonly prefixlen: number;
  readonly scope?: string;
}

export interface ContainerFacts {
  readonly entrypoint: FileFact;
  readonly procMounted: boolean;
  readonly procSelfExe: boolean;
  readonly path: string;
  readonly guestBin: FileFact;
  /** undefined when br-eth0 does not exist */
  readonly bridgeAddrs?: readonly IpAddr[];
  /** interfaces whose master is br-eth0 */
  readonly bridgeMembers: readonly string[];
  /** the pod's IP, from eth0 before the swap or from the launch spec, when known */
  readonly podIp?: string;
  /** ids under /.runcvm/vols */
  readonly volumeIds: readonly string[];
  /** lines of /proc/mounts: [source, target, fstype] */
  readonly mounts: readonly (readonly [string, string, string])[];
}
