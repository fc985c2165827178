/* runcvm-init's parts (init.c runs them in order): one config struct read from the launch hand-off, and one
 * function per phase. Each phase file says what it owns:
 *   config.c    /.runcvm/config + /.runcvm/entrypoint → struct guest_config (pure parsing; no I/O but the reads)
 *   channel.c   the framed channel to the launcher (virtio-serial IO_PORT_NAME or vsock), console and debug lines,
 *               fatal errors, the exit report and power-off
 *   mounts.c    init's own /proc /sys /dev … and the spec's tmpfs mounts
 *   rootfs.c    the workload's view: the spec's /proc /dev /sys mounts replayed in its own mount namespace, device
 *               nodes, the console, masked and read-only paths, sysctls
 *   vol.c       volumes (virtiofs, disks; nfs after the network)            net.c  the NICs, routes, DNS relay
 *   workload.c  the workload process: pipes or pty, PID namespace, rlimits, root read-only, user, capabilities, exec;
 *               the exec agent
 *   relay.c     the run loop: output out, stdin / signals / window size in, until the workload ended and drained
 */
#ifndef RUNCVM_GUEST_INIT_H
#define RUNCVM_GUEST_INIT_H
#include <signal.h>
#include <sys/types.h>

#include "caps.h"
#include "contract.h"

#define MAX_ITEMS 4096
#define MAX_TMPFS 64
#define MAX_RLIMITS 32
#define MAX_GROUPS 256
#define MAX_VOLUMES 64
#define MAX_MOUNTS 64
#define MAX_DEVICES 1024
#define MAX_PATHS 256
#define MAX_SYSCTLS 256
#define MAX_IDMAPS 340 /* the kernel's limit per map */

/* Everything init reads from the hand-off (keys: contract.h KEY_*). Strings point into the parsed text. */
struct guest_config {
  int debug;                 /* loglevel=debug */
  char *args[MAX_ITEMS];     /* the entrypoint, NULL-terminated; nargs 0: no entrypoint (sleep) */
  int nargs;
  char *envs[MAX_ITEMS + 1]; /* the workload's environment, NULL-terminated (HOME may be added at exec) */
  int nenvs;
  struct { char *dest, *opts; } tmpfs[MAX_TMPFS];
  int ntmpfs;
  struct { int res; unsigned long long soft, hard; } rlimits[MAX_RLIMITS];
  int nrlimits;
  char *volumes[MAX_VOLUMES]; /* raw `volume=` values in order (vol.c splits and unescapes them) */
  int nvolumes;
  uid_t uid;
  gid_t gid;
  gid_t groups[MAX_GROUPS];
  int ngroups;
  mode_t umask;
  char cwd[4096];
  char hostname[256];
  int terminal;
  int nonewprivs;
  char brk[64];             /* break=preinit|prerun */
  struct runcvm_caps caps;  /* cap= lines */
  int readonly;             /* OCI root.readonly */
  int readonly_run;         /* the workload's /run read-only too (launch/guest-config.ts decides) */
  /* the workload's mount namespace (rootfs.c), in the spec's order; nmounts 0: init's mounts and a fresh /proc */
  struct { char *type, *source, *dest, *data; unsigned long flags; int ro_after; } mounts[MAX_MOUNTS];
  int nmounts;
  struct { char *path; char type; unsigned major, minor; mode_t mode; uid_t uid; gid_t gid; } devices[MAX_DEVICES];
  int ndevices;
  char *masked_paths[MAX_PATHS];
  int nmasked_paths;
  char *readonly_paths[MAX_PATHS];
  int nreadonly_paths;
  struct { char *key, *value; } sysctls[MAX_SYSCTLS];
  int nsysctls;
  int has_oom_score_adj;
  int oom_score_adj;
  /* OCI linux.uidMappings / gidMappings of a new user namespace: none, no user namespace (workload.c child_userns) */
  struct { unsigned long inner, outer, size; } uidmaps[MAX_IDMAPS], gidmaps[MAX_IDMAPS];
  int nuidmaps, ngidmaps;
  char *seccomp_hex;        /* seccomp=: the compiled filter, hex (seccomp.c); NULL: none */
  unsigned seccomp_flags;
};

/* config.c: defaults, then the config text and the entrypoint text parsed in place (they must outlive cfg).
 * config_load reads both files: -1 with errno when the config cannot be read (a missing entrypoint is no entrypoint). */
void config_defaults(struct guest_config *cfg);
void config_parse(char *text, struct guest_config *cfg);
void entrypoint_parse(char *text, struct guest_config *cfg);
int config_load(struct guest_config *cfg);

/* channel.c */
extern int init_debug;
void console(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define DBG(...) do { if (init_debug) console("[runcvm-init] " __VA_ARGS__); } while (0)
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int channel_open(void);                  /* -1 when neither port appeared in ~5 s */
int channel_fd(void);
void channel_send(int type, int channel, const void *payload, unsigned len);
void channel_log(int is_debug, const char *line); /* a LOG frame (net.c, vol.c lines) */
struct frame;
int channel_read(void);                  /* one read into the channel's frame reader: read(2)'s result */
int channel_next(struct frame *f);       /* as frame_next, on the channel */
void report_exit_and_power_off(int code, int signal) __attribute__((noreturn));
void power_off(void) __attribute__((noreturn));

/* mounts.c */
void mounts_setup(const struct guest_config *cfg);

/* rootfs.c, in the workload's child, in this order (runc's prepareRootfs / finalizeRootfs): each fails the child
 * with a message (CHILD_FAIL) on an error runc would fail on */
void rootfs_prepare(const struct guest_config *cfg);            /* replayed mounts, device nodes, /dev links */
void rootfs_console(const struct guest_config *cfg, unsigned pts); /* terminal: /dev/pts/N on /dev/console */
void rootfs_finalize(const struct guest_config *cfg);           /* read-only remounts of /dev and tmpfs mounts */
void rootfs_paths(const struct guest_config *cfg);              /* sysctls, read-only paths, masked paths */

/* A failure of the workload's set-up (in its child, before exec): the message on its stderr, exit 126. */
#define CHILD_FAIL(...) do { dprintf(2, "runcvm-init: " __VA_ARGS__); _exit(126); } while (0)

/* workload.c */
struct workload {
  pid_t pid;       /* -1: no entrypoint */
  int out_r, err_r, in_w, pty_master;
};
void workload_start(struct guest_config *cfg, struct workload *w, const sigset_t *init_mask);
void exec_agent_start(const struct guest_config *cfg, pid_t workload);

/* relay.c: until the workload has exited and its output is drained (or a stop came with no workload) */
struct exit_status {
  int code, signal;
};
struct exit_status relay_run(const struct guest_config *cfg, struct workload *w, int signal_fd);

#endif
