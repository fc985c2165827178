/* GENERATED from src/runcvm/guest/contract.ts by `npm run gen:guest-contract`: do not edit by hand.
 * The guest contract: frame types, port names, the launch hand-off (paths and config keys), the exec request
 * keys and the NFS mount options, shared by runcvm-init, runcvm-agent and runcvm-exec with the host side. */
#ifndef RUNCVM_GUEST_CONTRACT_H
#define RUNCVM_GUEST_CONTRACT_H

#define FRAME_HEADER_BYTES 8
#define FRAME_MAX_PAYLOAD 65536
enum runcvm_frame_type { T_DATA = 1, T_EOF = 2, T_EXIT = 3, T_SIGNAL = 4, T_WINSIZE = 5, T_ACK = 6, T_READY = 7, T_LOG = 8, T_PARKED = 9, T_RESUME = 10, T_OPEN = 16, T_CLOSE = 17 };
enum runcvm_channel { CH_STDIN = 0, CH_STDOUT = 1, CH_STDERR = 2 };

#define IO_PORT_NAME "runcvm.io"
#define AGENT_PORT_NAME "org.runcvm.agent"
#define IO_VSOCK_PORT 1024
#define EXEC_VSOCK_PORT 1025

#define PATH_CONFIG "/.runcvm/config"
#define PATH_ENTRYPOINT "/.runcvm/entrypoint"
#define PATH_BIN "/.runcvm/guest/bin"
#define PATH_BUSYBOX "/.runcvm/guest/bin/busybox"
#define PATH_AGENT "/.runcvm/guest/bin/runcvm-agent"
#define PATH_VOLUMES "/.runcvm/vols"
#define PATH_EXEC_STATE "/.runcvm/state"
#define PATH_EXEC_SOCKET "/.runcvm/state/exec.sock"
#define PATH_EXEC_CLIENT "/.runcvm/guest/bin/runcvm-exec"

#define KEY_VERSION "version"
#define KEY_ID "id"
#define KEY_HOSTNAME "hostname"
#define KEY_UID "uid"
#define KEY_GID "gid"
#define KEY_GROUPS "groups"
#define KEY_UMASK "umask"
#define KEY_CWD "cwd"
#define KEY_TERMINAL "terminal"
#define KEY_NONEWPRIVS "nonewprivs"
#define KEY_LOGLEVEL "loglevel"
#define KEY_BREAK "break"
#define KEY_CAP "cap"
#define KEY_READONLY "readonly"
#define KEY_READONLY_RUN "readonly_run"
#define KEY_RLIMIT "rlimit"
#define KEY_TMPFS "tmpfs"
#define KEY_VOLUME "volume"
#define KEY_ENV "env"
#define KEY_MOUNT "mount"
#define KEY_DEVICE "device"
#define KEY_MASKED_PATH "masked_path"
#define KEY_READONLY_PATH "readonly_path"
#define KEY_SYSCTL "sysctl"
#define KEY_OOM_SCORE_ADJ "oom_score_adj"
#define KEY_SECCOMP "seccomp"
#define KEY_SECCOMP_FLAGS "seccomp_flags"
#define KEY_UIDMAP "uidmap"
#define KEY_GIDMAP "gidmap"
#define LOGLEVEL_DEBUG "debug"
#define BREAK_PREINIT "preinit"
#define BREAK_PRERUN "prerun"
#define VOLUME_FS_VIRTIOFS "virtiofs"
#define VOLUME_FS_NFS "nfs"

#define EXEC_KEY_UID "uid"
#define EXEC_KEY_GID "gid"
#define EXEC_KEY_GROUPS "groups"
#define EXEC_KEY_CWD "cwd"
#define EXEC_KEY_TTY "tty"
#define EXEC_KEY_NONEWPRIVS "nonewprivs"
#define EXEC_KEY_ROWS "rows"
#define EXEC_KEY_COLS "cols"
#define EXEC_KEY_CAP "cap"
#define EXEC_KEY_RLIMIT "rlimit"
#define EXEC_KEY_ARG "arg"
#define EXEC_KEY_ENV "env"
#define RESUME_KEY_CLOCK_NS "clock_ns"
#define RESUME_KEY_SEED "seed"
#define RESUME_KEY_MAC "mac"
#define RESUME_KEY_NET "net"
#define TEMPLATE_CMDLINE_FLAG "runcvm.template=1"
#define RESUME_NET_FILE "/run/runcvm/net"
#define EXEC_CLIENT_ENV { "PATH=/.runcvm/guest/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/" }
#define CAPABILITY_COUNT 41
#define CAPABILITY_NAMES { "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE" }
#define RLIMIT_COUNT 16
#define RLIMIT_NAMES { "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME" }
#define INIT_FAILURE_STATUS 125
#define EXEC_FAILURE_STATUS 255

#define NFS_SERVER_IP "169.254.1.254"
#define NFS_PORT 2049
#define NFS_MOUNT_OPTIONS "vers=3,proto=tcp,port=2049,mountport=2049,mountproto=tcp,nolock,addr=169.254.1.254"

#endif
