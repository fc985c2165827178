/**
 * The guest contract: every fact the host's TypeScript and the guest's C programs (runcvm-init, runcvm-agent,
 * runcvm-exec) must agree on, written once. `contract.h` is generated from this module
 * (`npm run gen:guest-contract`); scripts/assets/30-runtime.sh refuses to build the guest binaries from a stale
 * header and test/unit/runcvm/guest-contract.test.ts checks it, so the two languages cannot drift.
 *
 * Pure data: no imports, so every side (agent/, launch/, volumes/, hypervisor/, the generator) can depend on it.
 */

// ----- frames (agent/codec.ts encodes and decodes them on the host) -----

/** Frame header: `type u8 | channel u8 | session u16 BE | length u32 BE`, then `length` payload bytes. */
export const FRAME_HEADER_BYTES = 8;
/** The largest payload either side sends or accepts (a longer frame is a broken or hostile peer). */
export const FRAME_MAX_PAYLOAD = 64 * 1024;

export const FrameType = {
  /** bytes of a stream: channel 0 stdin (host→guest), 1 stdout, 2 stderr (guest→host) */
  DATA: 1,
  /** end of a stream (channel as in DATA) */
  EOF: 2,
  /** guest→host: the process ended; payload i32 BE exit code (128+N for a signal), u8 signal number (0 if none) */
  EXIT: 3,
  /** host→guest: deliver a signal; payload u8 signal number */
  SIGNAL: 4,
  /** host→guest: terminal size; payload u16 BE rows, u16 BE cols */
  WINSIZE: 5,
  /** host→guest: the EXIT frame was received (init may power off) */
  ACK: 6,
  /** guest→host: init is up and the workload is about to start / the exec agent listens */
  READY: 7,
  /** guest→host: a log line from the guest init (UTF-8 text) */
  LOG: 8,
  /**
   * guest→host, io port, template build only (issue 17): the initramfs reached the template point (virtio transports
   * and the io port up, no disk or NIC driver bound, no container data read); the builder saves the VM on it
   */
  PARKED: 9,
  /**
   * host→guest, io port: the parked guest continues; payload = NUL-terminated `ResumeKey=value` entries. Sent by the
   * launcher right after a restored VM runs again (`cont`); the guest blocks in read() for it.
   */
  RESUME: 10,
  /** host→guest, agent port: start a command; payload = NUL-terminated `ExecKey=value` entries */
  OPEN: 16,
  /** host→guest, agent port: the exec client went away; the agent kills the command and forgets the session */
  CLOSE: 17,
} as const;
export type FrameTypeName = keyof typeof FrameType;

export const Channel = { stdin: 0, stdout: 1, stderr: 2 } as const;

// ----- where the frames travel -----

/** virtio-serial port names (QEMU) */
export const IO_PORT_NAME = 'runcvm.io';
export const AGENT_PORT_NAME = 'org.runcvm.agent';
/** vsock ports on the host (CID 2) under Firecracker, which forwards them to `<uds_path>_<port>` */
export const IO_VSOCK_PORT = 1024;
export const EXEC_VSOCK_PORT = 1025;

// ----- the launch hand-off: files on the VM's disk, read by runcvm-init -----

export const GuestPath = {
  /** `key=value` lines (ConfigKey), %-escaped values */
  config: '/.runcvm/config',
  /** the command, one %-escaped argument per line; empty: `[VM-START] No entrypoint found, sleeping` */
  entrypoint: '/.runcvm/entrypoint',
  /** the guest package's tools, first in init's own PATH */
  bin: '/.runcvm/guest/bin',
  busybox: '/.runcvm/guest/bin/busybox',
  agent: '/.runcvm/guest/bin/runcvm-agent',
  /** folders of single-file volumes are mounted here, hidden from the workload's view of DEST */
  volumes: '/.runcvm/vols',
  /** exec requests `exec-<id>.req` and the launcher's exec socket (in the launcher container) */
  execState: '/.runcvm/state',
  execSocket: '/.runcvm/state/exec.sock',
  /** the exec client (static C, guest/exec-client.c) that runc starts in the launcher container */
  execClient: '/.runcvm/guest/bin/runcvm-exec',
} as const;

/**
 * The keys of `/.runcvm/config` (one `key=value` line each, in any order; repeated keys accumulate). Values are
 * %-escaped (`%` → %25, LF → %0A, CR → %0D; inside space-separated fields a space is %20 too).
 */
export const ConfigKey = {
  /** the LaunchSpec version (informational) */
  version: 'version',
  /** the container id (informational) */
  id: 'id',
  hostname: 'hostname',
  /** decimal uid / gid; groups: comma-separated decimal gids (may be empty) */
  uid: 'uid',
  gid: 'gid',
  groups: 'groups',
  /** decimal (not octal) umask */
  umask: 'umask',
  cwd: 'cwd',
  /** 0 | 1 */
  terminal: 'terminal',
  nonewprivs: 'nonewprivs',
  /** LogLevelValue.debug turns on init's debug lines */
  loglevel: 'loglevel',
  /** BreakPoint: a busybox shell on the console at that point */
  break: 'break',
  /** `<set> <n,n,…|->` per capability set (bounding, effective, inheritable, permitted, ambient) */
  cap: 'cap',
  /** 1: the root is read-only (OCI root.readonly); readonly_run: /run follows it */
  readonly: 'readonly',
  readonlyRun: 'readonly_run',
  /** `<resource number> <soft> <hard>` */
  rlimit: 'rlimit',
  /** `<dest> <options,…|->` (space-separated, %20-escaped fields) */
  tmpfs: 'tmpfs',
  /** `<fstype> <source> <dest> <ro|rw[,nosuid][,nodev][,noexec]> <file|->` (see guest/vol.c) */
  volume: 'volume',
  /** one environment entry `NAME=value` per line */
  env: 'env',
  /**
   * `<type> <source> <dest> <flags> <data|-> <ro_after>`: a mount the workload's own mount namespace replays, in the
   * spec's order, instead of init's pseudo filesystems (proc, sysfs, tmpfs, devpts, mqueue, cgroup2 at /proc, /dev,
   * /sys and below; launch/rootfs.ts). flags: decimal mount(2) MS_* flags; data: the filesystem's options; ro_after 1:
   * remount read-only once its contents exist (runc's order for /dev and tmpfs). Space-separated, %20-escaped
   * fields. None at all: the workload keeps init's mounts (a fresh /proc).
   */
  mount: 'mount',
  /** `<path> <c|b|p> <major> <minor> <mode> <uid> <gid>` (decimal mode): a node made in the workload's /dev */
  device: 'device',
  /** OCI linux.maskedPaths and linux.readonlyPaths: one path per line */
  maskedPath: 'masked_path',
  readonlyPath: 'readonly_path',
  /** OCI linux.sysctl: `<key> <value>` (space-separated, %20-escaped fields), written to /proc/sys before exec */
  sysctl: 'sysctl',
  /** OCI process.oomScoreAdj (decimal), for the workload and every exec */
  oomScoreAdj: 'oom_score_adj',
  /**
   * The workload's seccomp filter (OCI linux.seccomp compiled on the host, src/runcvm/seccomp): the BPF program
   * (struct sock_filter[], 8 bytes each, little-endian) in hex, loaded last before exec in the workload and in every
   * exec; seccomp_flags: decimal SECCOMP_FILTER_FLAG_* bits for seccomp(2). No line: no filter.
   */
  seccomp: 'seccomp',
  seccompFlags: 'seccomp_flags',
  /**
   * OCI linux.uidMappings / gidMappings of a new user namespace (`<containerID> <hostID> <size>`, decimal, one line
   * per mapping): the workload gets a user namespace of the guest with these maps (the guest's ids are the host's:
   * the disk's files keep the rootfs's owners), and every exec joins it. No line: no user namespace.
   */
  uidmap: 'uidmap',
  gidmap: 'gidmap',
} as const;
export type ConfigKeyName = keyof typeof ConfigKey;

export const LogLevelValue = { debug: 'debug' } as const;
export const BreakPoint = { preinit: 'preinit', prerun: 'prerun' } as const;

/** The volume kinds a `volume=` line names (vol.c mounts nfs ones after the network is up). */
export const VolumeFs = { virtiofs: 'virtiofs', nfs: 'nfs' } as const;

/** The OPEN payload: NUL-terminated `key=value` entries (agent/exec.ts writes, guest/agent.c reads). */
export const ExecKey = {
  uid: 'uid',
  gid: 'gid',
  groups: 'groups',
  cwd: 'cwd',
  /** 0 | 1 */
  tty: 'tty',
  /** 0 | 1: PR_SET_NO_NEW_PRIVS for the command (OCI process.noNewPrivileges) */
  nonewprivs: 'nonewprivs',
  rows: 'rows',
  cols: 'cols',
  /** as ConfigKey.cap */
  cap: 'cap',
  /** as ConfigKey.rlimit (`<resource number> <soft> <hard>`), repeated: the process's OCI rlimits, set before it runs */
  rlimit: 'rlimit',
  /** repeated, in order */
  arg: 'arg',
  env: 'env',
} as const;

/**
 * The RESUME payload (issue 17): what a VM restored from a template must get that is its own and lives in kernel
 * memory or on the command line (everything else comes from the container's own disk, read after the resume).
 */
export const ResumeKey = {
  /** the host's CLOCK_REALTIME in decimal nanoseconds, read when the frame is sent (the template's clock is stale) */
  clockNs: 'clock_ns',
  /** 64 random bytes in lower-case hex: credited with RNDADDENTROPY, then RNDRESEEDCRNG (no shared random state) */
  seed: 'seed',
  /** repeated, in NIC (virtio) order: the MAC the guest sets on that NIC before it is brought up */
  mac: 'mac',
  /** repeated: one `runcvm.net.*=…` word each, as the cold boot's kernel command line carries them */
  net: 'net',
} as const;

/** On the template's kernel command line: the initramfs parks (PARKED, then waits for RESUME) before loading disks/NICs. */
export const TEMPLATE_CMDLINE_FLAG = 'runcvm.template=1';
/** Where the resumed initramfs leaves the `net` words (one per line) for runcvm-init, instead of /proc/cmdline. */
export const RESUME_NET_FILE = '/run/runcvm/net';

/** The environment of the exec client's process (runc needs one; the command's own env travels in the request). */
export const EXEC_CLIENT_ENV = ['PATH=/.runcvm/guest/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/'] as const;

/** Linux capability numbers (include/uapi/linux/capability.h); 40 is the last one as of Linux 6.x. */
export const CAPABILITY_NUMBERS: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

/** RLIMIT names as the guest knows them (Linux numbering, x86-64): `rlimit=` lines of the config and the exec request. */
export const RLIMIT_NUMBERS: Readonly<Record<string, number>> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5, RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10, RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

/** The status an init that cannot start the workload reports in its EXIT frame (runc's own failure status). */
export const INIT_FAILURE_STATUS = 125;
/** The status of an exec whose command could not start (cwd, user, capabilities, seccomp, not found): runc's 255. */
export const EXEC_FAILURE_STATUS = 255;

// ----- NFS volumes (the launcher's server, src/runcvm/nfs; the guest's mount, guest/vol.c) -----

/** The identity IP (network/plan.ts IDENTITY_IP) on br-eth0, where the launcher's NFS server listens. */
export const NFS_SERVER_IP = '169.254.1.254';
/** NFS and MOUNT on one TCP port: the guest needs no portmapper. */
export const NFS_PORT = 2049;
export const NFS_MOUNT_OPTIONS = `vers=3,proto=tcp,port=${NFS_PORT},mountport=${NFS_PORT},mountproto=tcp,nolock,addr=${NFS_SERVER_IP}`;

// ----- the C header -----

const cString = (s: string): string => JSON.stringify(s); // the strings here are ASCII: JSON quoting is C quoting
const macro = (camel: string): string => camel.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** The text of src/runcvm/guest/contract.h. Pure; the same input always gives the same bytes. */
export function renderContractHeader(): string {
  const out: string[] = [
    '/* GENERATED from src/runcvm/guest/contract.ts by `npm run gen:guest-contract`: do not edit by hand.',
    ' * The guest contract: frame types, port names, the launch hand-off (paths and config keys), the exec request',
    ' * keys and the NFS mount options, shared by runcvm-init, runcvm-agent and runcvm-exec with the host side. */',
    '#ifndef RUNCVM_GUEST_CONTRACT_H',
    '#define RUNCVM_GUEST_CONTRACT_H',
    '',
    `#define FRAME_HEADER_BYTES ${FRAME_HEADER_BYTES}`,
    `#define FRAME_MAX_PAYLOAD ${FRAME_MAX_PAYLOAD}`,
    `enum runcvm_frame_type { ${Object.entries(FrameType).map(([k, v]) => `T_${k} = ${v}`).join(', ')} };`,
    `enum runcvm_channel { ${Object.entries(Channel).map(([k, v]) => `CH_${k.toUpperCase()} = ${v}`).join(', ')} };`,
    '',
    `#define IO_PORT_NAME ${cString(IO_PORT_NAME)}`,
    `#define AGENT_PORT_NAME ${cString(AGENT_PORT_NAME)}`,
    `#define IO_VSOCK_PORT ${IO_VSOCK_PORT}`,
    `#define EXEC_VSOCK_PORT ${EXEC_VSOCK_PORT}`,
    '',
    ...Object.entries(GuestPath).map(([k, v]) => `#define PATH_${macro(k)} ${cString(v)}`),
    '',
    ...Object.entries(ConfigKey).map(([k, v]) => `#define KEY_${macro(k)} ${cString(v)}`),
    ...Object.entries(LogLevelValue).map(([k, v]) => `#define LOGLEVEL_${macro(k)} ${cString(v)}`),
    ...Object.entries(BreakPoint).map(([k, v]) => `#define BREAK_${macro(k)} ${cString(v)}`),
    ...Object.entries(VolumeFs).map(([k, v]) => `#define VOLUME_FS_${macro(k)} ${cString(v)}`),
    '',
    ...Object.entries(ExecKey).map(([k, v]) => `#define EXEC_KEY_${macro(k)} ${cString(v)}`),
    ...Object.entries(ResumeKey).map(([k, v]) => `#define RESUME_KEY_${macro(k)} ${cString(v)}`),
    `#define TEMPLATE_CMDLINE_FLAG ${cString(TEMPLATE_CMDLINE_FLAG)}`,
    `#define RESUME_NET_FILE ${cString(RESUME_NET_FILE)}`,
    `#define EXEC_CLIENT_ENV { ${EXEC_CLIENT_ENV.map(cString).join(', ')} }`,
    `#define CAPABILITY_COUNT ${Object.keys(CAPABILITY_NUMBERS).length}`,
    // index = the capability's number (the table is dense from 0)
    `#define CAPABILITY_NAMES { ${Object.entries(CAPABILITY_NUMBERS).sort((a, b) => a[1] - b[1]).map(([k]) => cString(k)).join(', ')} }`,
    `#define RLIMIT_COUNT ${Object.keys(RLIMIT_NUMBERS).length}`,
    // index = the resource's number (the table is dense from 0)
    `#define RLIMIT_NAMES { ${Object.entries(RLIMIT_NUMBERS).sort((a, b) => a[1] - b[1]).map(([k]) => cString(k)).join(', ')} }`,
    `#define INIT_FAILURE_STATUS ${INIT_FAILURE_STATUS}`,
    `#define EXEC_FAILURE_STATUS ${EXEC_FAILURE_STATUS}`,
    '',
    `#define NFS_SERVER_IP ${cString(NFS_SERVER_IP)}`,
    `#define NFS_PORT ${NFS_PORT}`,
    `#define NFS_MOUNT_OPTIONS ${cString(NFS_MOUNT_OPTIONS)}`,
    '',
    '#endif',
    '',
  ];
  return out.join('\n');
}
