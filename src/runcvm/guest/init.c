/*
 * runcvm-init: PID 1 of the microVM (exec'd by the initramfs switch_root as /.runcvm/guest/bin/runcvm-init).
 *
 *  1. mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /run and the spec's tmpfs mounts; sets the hostname; lo up;
 *  2. reads /.runcvm/config (key=value, %-escaped) and /.runcvm/entrypoint (one argument per line);
 *  3. starts the workload as PID 1 of a new PID namespace (so signals behave exactly as under runc: a PID 1 without
 *     a handler ignores SIGTERM) with its own uid/gid/groups/cwd/env/rlimits, stdout and stderr on separate pipes
 *     (or a pty in terminal mode);
 *  4. relays output to the host over the virtio-serial port "runcvm.io" as frames (see src/runcvm/agent/codec.ts),
 *     stdin / signals / window size back, and after the last output byte sends EXIT, waits for ACK, powers off.
 *
 * Built static (gcc -static -Os) by scripts/assets/30-runtime.sh, so it needs nothing from the image.
 */
#define _GNU_SOURCE
#include "io.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <dirent.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>
#include "net.h" /* guest networking (net.c, owner: networking) */
#include "vol.h" /* guest volumes (vol.c, owner: volumes) */
#include "caps.h" /* OCI capabilities, applied as runc does (caps.c) */
#include <sys/statvfs.h>

#define PORT_NAME "runcvm.io"
enum { T_DATA = 1, T_EOF = 2, T_EXIT = 3, T_SIGNAL = 4, T_WINSIZE = 5, T_ACK = 6, T_READY = 7, T_LOG = 8 };
enum { CH_STDIN = 0, CH_STDOUT = 1, CH_STDERR = 2 };

#define MAX_ITEMS 4096

static int debug = 0;
static int io_fd = -1;

static char *args[MAX_ITEMS];
static int nargs = 0;
static char *envs[MAX_ITEMS];
static int nenvs = 0;
static char *tmpfs_dest[64], *tmpfs_opts[64];
static int ntmpfs = 0;
static struct { int res; unsigned long long soft, hard; } rlims[32];
static int nrlims = 0;
static uid_t cfg_uid = 0;
static gid_t cfg_gid = 0;
static gid_t cfg_groups[256];
static int ngroups = 0;
static mode_t cfg_umask = 022;
static char cfg_cwd[4096] = "/";
static char cfg_hostname[256] = "";
static int cfg_terminal = 0;
static int cfg_nonewprivs = 0;
static char cfg_break[64] = "";
static struct runcvm_caps cfg_caps; /* cap= lines */
static int cfg_readonly = 0;        /* OCI root.readonly */
static int cfg_readonly_run = 0;    /* the workload's /run read-only too (launch/guest-config.ts decides) */

/* set when the host channel is vsock (Firecracker): Firecracker has no power-off, it exits on the guest's reset */
static int io_over_vsock = 0;

static void poweroff_now(void) {
  sync();
  reboot(io_over_vsock ? RB_AUTOBOOT : RB_POWER_OFF);
  for (;;) pause();
}

static void console(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t w = write(fd, buf, n);
    (void)w;
    close(fd);
  }
}

#define DBG(...) do { if (debug) console("[runcvm-init] " __VA_ARGS__); } while (0)

static void send_frame(int type, int channel, const void *payload, uint32_t len) {
  if (io_fd < 0) return;
  unsigned char h[8];
  h[0] = (unsigned char)type;
  h[1] = (unsigned char)channel;
  h[2] = 0;
  h[3] = 0;
  h[4] = (unsigned char)(len >> 24);
  h[5] = (unsigned char)(len >> 16);
  h[6] = (unsigned char)(len >> 8);
  h[7] = (unsigned char)len;
  /* one buffer per frame: the port sees whole frames in order */
  static unsigned char buf[8 + 65536];
  if (len > 65536) len = 65536;
  memcpy(buf, h, 8);
  if (len) memcpy(buf + 8, payload, len);
  write_all(io_fd, buf, 8 + len);
}

static void fatal(const char *fmt, ...) {
  char buf[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  console("[runcvm-init] error: %s", buf);
  if (io_fd >= 0) {
    char line[1000];
    int n = snprintf(line, sizeof line, "runcvm-init: error: %s\n", buf);
    send_frame(T_DATA, CH_STDERR, line, (uint32_t)n);
    unsigned char p[5] = {0, 0, 0, 125, 0};
    send_frame(T_EXIT, 0, p, 5);
    /* wait briefly for the ACK so the message is not lost */
    struct pollfd pfd = {io_fd, POLLIN, 0};
    poll(&pfd, 1, 2000);
  }
  poweroff_now();
}

static void unescape(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (p[0] == '%' && p[1] && p[2]) {
      char hex[3] = {p[1], p[2], 0};
      char *end;
      long v = strtol(hex, &end, 16);
      if (*end == 0) {
        *o++ = (char)v;
        p += 2;
        continue;
      }
    }
    *o++ = *p;
  }
  *o = 0;
}

static char *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 8192, n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

static void parse_config(void) {
  char *text = read_file("/.runcvm/config", NULL);
  if (!text) fatal("cannot read /.runcvm/config: %s", strerror(errno));
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *eq = strchr(line, '=');
    if (!eq) continue;
    *eq = 0;
    char *k = line, *v = eq + 1;
    if (!strcmp(k, "env")) {
      unescape(v);
      if (nenvs < MAX_ITEMS - 1) envs[nenvs++] = v;
    } else if (!strcmp(k, "uid")) cfg_uid = (uid_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "gid")) cfg_gid = (gid_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "groups")) {
      char *s2 = NULL;
      for (char *g = strtok_r(v, ",", &s2); g && ngroups < 256; g = strtok_r(NULL, ",", &s2)) cfg_groups[ngroups++] = (gid_t)strtoul(g, NULL, 10);
    } else if (!strcmp(k, "umask")) cfg_umask = (mode_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "cwd")) { unescape(v); snprintf(cfg_cwd, sizeof cfg_cwd, "%s", v); }
    else if (!strcmp(k, "hostname")) { unescape(v); snprintf(cfg_hostname, sizeof cfg_hostname, "%s", v); }
    else if (!strcmp(k, "terminal")) cfg_terminal = atoi(v);
    else if (!strcmp(k, "nonewprivs")) cfg_nonewprivs = atoi(v);
    else if (!strcmp(k, "loglevel")) { if (!strcmp(v, "debug")) debug = 1; }
    else if (!strcmp(k, "break")) { unescape(v); snprintf(cfg_break, sizeof cfg_break, "%s", v); }
    else if (!strcmp(k, "cap")) runcvm_caps_parse(&cfg_caps, v);
    else if (!strcmp(k, "readonly")) cfg_readonly = atoi(v);
    else if (!strcmp(k, "readonly_run")) cfg_readonly_run = atoi(v);
    else if (!strcmp(k, "rlimit") && nrlims < 32) {
      sscanf(v, "%d %llu %llu", &rlims[nrlims].res, &rlims[nrlims].soft, &rlims[nrlims].hard);
      nrlims++;
    } else if (!strcmp(k, "tmpfs") && ntmpfs < 64) {
      char *sp = strchr(v, ' ');
      if (!sp) continue;
      *sp = 0;
      unescape(v);
      unescape(sp + 1);
      tmpfs_dest[ntmpfs] = v;
      tmpfs_opts[ntmpfs] = sp + 1;
      ntmpfs++;
    }
  }
  envs[nenvs] = NULL;

  static const char ep_path[] = "/.runcvm/entrypoint";
  char *ep = read_file(ep_path, NULL);
  if (!ep) DBG("cannot read %s: %s", ep_path, strerror(errno));
  if (ep) {
    char *s3 = NULL;
    /* one argument per line; empty arguments are kept (split by hand, strtok would drop them) */
    char *p = ep;
    (void)s3;
    while (*p && nargs < MAX_ITEMS - 1) {
      char *nl = strchr(p, '\n');
      if (nl) *nl = 0;
      unescape(p);
      args[nargs++] = p;
      if (!nl) break;
      p = nl + 1;
    }
  }
  args[nargs] = NULL;
  /* the count only: arguments may carry secrets (tokens on a command line) and the console reaches the host's logs */
  if (ep) DBG("entrypoint %s: %d argument%s", ep_path, nargs, nargs == 1 ? "" : "s");
}

static void mkdir_p(const char *path, mode_t mode) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      mkdir(tmp, 0755);
      *p = '/';
    }
  }
  mkdir(tmp, mode);
}

static int is_mounted_dir(const char *probe) {
  struct stat st;
  return stat(probe, &st) == 0;
}

static void mount_or_warn(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  mkdir_p(dst, 0755);
  if (mount(src, dst, type, flags, data) != 0) console("[runcvm-init] warning: mount %s on %s: %s", type, dst, strerror(errno));
}

static void tmpfs_flags(const char *opts, unsigned long *flags, char *data, size_t datalen) {
  char copy[1024];
  snprintf(copy, sizeof copy, "%s", opts);
  data[0] = 0;
  *flags = 0;
  char *save = NULL;
  for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
    if (!strcmp(o, "-")) continue;
    if (!strcmp(o, "nosuid")) *flags |= MS_NOSUID;
    else if (!strcmp(o, "nodev")) *flags |= MS_NODEV;
    else if (!strcmp(o, "noexec")) *flags |= MS_NOEXEC;
    else if (!strcmp(o, "ro")) *flags |= MS_RDONLY;
    else if (!strcmp(o, "rw") || !strcmp(o, "rbind") || !strcmp(o, "bind") || !strcmp(o, "private") || !strcmp(o, "rprivate")) continue;
    else if (!strncmp(o, "size=", 5) || !strncmp(o, "mode=", 5) || !strncmp(o, "uid=", 4) || !strncmp(o, "gid=", 4) || !strncmp(o, "nr_inodes=", 10)) {
      if (data[0]) strncat(data, ",", datalen - strlen(data) - 1);
      strncat(data, o, datalen - strlen(data) - 1);
    }
  }
}

static void setup_mounts(void) {
  if (!is_mounted_dir("/proc/self")) mount_or_warn("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  if (!is_mounted_dir("/sys/kernel")) mount_or_warn("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  if (!is_mounted_dir("/dev/null")) mount_or_warn("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount_or_warn("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  unlink("/dev/ptmx");
  if (symlink("pts/ptmx", "/dev/ptmx") != 0 && errno != EEXIST) DBG("symlink /dev/ptmx: %s", strerror(errno));
  mount_or_warn("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_or_warn("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_or_warn("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  symlink("/proc/self/fd", "/dev/fd");
  symlink("/proc/self/fd/0", "/dev/stdin");
  symlink("/proc/self/fd/1", "/dev/stdout");
  symlink("/proc/self/fd/2", "/dev/stderr");
  for (int i = 0; i < ntmpfs; i++) {
    unsigned long flags;
    char data[1024];
    tmpfs_flags(tmpfs_opts[i], &flags, data, sizeof data);
    mount_or_warn("tmpfs", tmpfs_dest[i], "tmpfs", flags, data[0] ? data : NULL);
    DBG("tmpfs %s (%s)", tmpfs_dest[i], tmpfs_opts[i]);
  }
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
}

/* Firecracker has no virtio-serial: the same frames go over vsock to the host (CID 2) port 1024, which Firecracker
 * forwards to <uds_path>_1024 where the launcher listens (src/runcvm/hypervisor/firecracker/vsock.ts). Under QEMU
 * there is no vsock device and connect() fails at once. */
#define VSOCK_IO_PORT 1024
static int open_io_vsock(void) {
  int s = connect_vsock_host(VSOCK_IO_PORT); /* io.c; the exec agent uses it for port 1025 */
  if (s >= 0) io_over_vsock = 1;
  return s;
}

static int open_io_port(void) {
  /* /sys/class/virtio-ports/vportNpM/name holds the port name; the device node is /dev/vportNpM */
  for (int attempt = 0; attempt < 500; attempt++) {
    int pfd = open_virtio_port(PORT_NAME);
    if (pfd >= 0) return pfd;
    int vfd = open_io_vsock();
    if (vfd >= 0) return vfd;
    usleep(10000);
  }
  return -1;
}

/* guest networking log lines (net.c) → LOG frames for the launcher's log; debug lines only with loglevel=debug */
static void net_log(int is_debug, const char *line) {
  if (is_debug && !debug) return;
  send_frame(T_LOG, 0, line, (uint32_t)strlen(line));
  if (debug) console("%s", line);
}

/* ----- workload ----- */

static int pty_master = -1;
static void ensure_home(void);

static void child_setup_and_exec(int in_fd, int out_fd, int err_fd, int slave) {
  /* own mount namespace with a /proc that shows the new PID namespace */
  unshare(CLONE_NEWNS);
  mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  umount2("/proc", MNT_DETACH);
  mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);

  become_session_leader_with_stdio(slave, in_fd, out_fd, err_fd);

  for (int i = 0; i < nrlims; i++) {
    struct rlimit rl = {(rlim_t)rlims[i].soft, (rlim_t)rlims[i].hard};
    setrlimit(rlims[i].res, &rl);
  }
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);

  umask(cfg_umask);
  /* runc creates a missing working directory; do the same, as root, before dropping privileges */
  mkdir_p(cfg_cwd, 0755);
  /* root.readonly: like runc, remount only this namespace's / read-only, after the cwd exists; /proc, /dev, /dev/shm,
   * tmpfs and volume mounts are mounts of their own and stay writable. Keep /'s other per-mount flags. */
  if (cfg_readonly) {
    struct statvfs sv;
    unsigned long keep = 0;
    if (statvfs("/", &sv) == 0) {
      if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
      if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
      if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
      if (sv.f_flag & ST_NOATIME) keep |= MS_NOATIME;
      if (sv.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
      if (sv.f_flag & ST_RELATIME) keep |= MS_RELATIME;
    }
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) != 0) { dprintf(2, "runcvm-init: remount / read-only: %s\n", strerror(errno)); _exit(126); }
    /* under runc /run is part of the read-only root unless the spec mounts something there; here it is init's own
     * tmpfs, so it follows the root in this namespace only (init and the mounts below /run keep their flags) */
    if (cfg_readonly_run && mount(NULL, "/run", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
      dprintf(2, "runcvm-init: remount /run read-only: %s\n", strerror(errno));
      _exit(126);
    }
  }
  char caperr[300];
  if (runcvm_caps_before_user(&cfg_caps, caperr, sizeof caperr) != 0) { dprintf(2, "runcvm-init: %s\n", caperr); _exit(126); }
  if (setgroups((size_t)ngroups, cfg_groups) != 0) { dprintf(2, "runcvm-init: setgroups: %s\n", strerror(errno)); _exit(126); }
  if (setgid(cfg_gid) != 0) { dprintf(2, "runcvm-init: setgid %u: %s\n", cfg_gid, strerror(errno)); _exit(126); }
  if (setuid(cfg_uid) != 0) { dprintf(2, "runcvm-init: setuid %u: %s\n", cfg_uid, strerror(errno)); _exit(126); }
  if (chdir(cfg_cwd) != 0) { dprintf(2, "runcvm-init: chdir to cwd (\"%s\") set in config.json failed: %s\n", cfg_cwd, strerror(errno)); _exit(126); }
  /* runc's order: user, then cwd (as the user), then capabilities */
  if (runcvm_caps_after_user(&cfg_caps, caperr, sizeof caperr) != 0) { dprintf(2, "runcvm-init: %s\n", caperr); _exit(126); }
  if (cfg_nonewprivs) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

  ensure_home();
  environ = envs;
  execvp(args[0], args);
  int e = errno;
  if (e == ENOENT && !strchr(args[0], '/'))
    dprintf(2, "exec: \"%s\": executable file not found in $PATH\n", args[0]);
  else
    dprintf(2, "exec %s: %s\n", args[0], strerror(e));
  _exit(e == ENOENT ? 127 : 126);
}

/* runc sets HOME from the image's /etc/passwd when the spec has none; so do we (falling back to "/"). */
static char home_env[4200];
static void ensure_home(void) {
  for (int i = 0; i < nenvs; i++)
    if (!strncmp(envs[i], "HOME=", 5)) return;
  const char *home = "/";
  char *pw = read_file("/etc/passwd", NULL);
  if (pw) {
    char *save = NULL;
    for (char *line = strtok_r(pw, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      char *f[7] = {0};
      int n = 0;
      char *p = line;
      while (n < 7) {
        f[n++] = p;
        char *c = strchr(p, ':');
        if (!c) break;
        *c = 0;
        p = c + 1;
      }
      if (n >= 6 && f[2] && (uid_t)strtoul(f[2], NULL, 10) == cfg_uid && f[5] && f[5][0]) {
        home = f[5];
        break;
      }
    }
  }
  snprintf(home_env, sizeof home_env, "HOME=%s", home);
  if (nenvs < MAX_ITEMS - 1) {
    envs[nenvs++] = home_env;
    envs[nenvs] = NULL;
  }
}

struct outbuf {
  char *data;
  size_t len, cap;
};

static void ob_push(struct outbuf *b, const char *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 4096;
    b->data = realloc(b->data, b->cap);
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ----- exec agent (owner: exec; src/runcvm/guest/agent.c, docs/dev/notes/exec.md) -----
 * Started once the workload runs, so it can join the workload's PID and mount namespaces for each exec. It is
 * forked into init's own (root) PID namespace, so `ps` in the container does not show it. No binary: no exec. */
static void start_exec_agent(pid_t workload) {
  static const char bin[] = "/.runcvm/guest/bin/runcvm-agent";
  if (access(bin, X_OK) != 0) return;
  int self_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (self_ns >= 0) {
    if (setns(self_ns, CLONE_NEWPID) != 0) DBG("exec agent: setns to own pid ns: %s", strerror(errno));
    close(self_ns);
  }
  pid_t p = fork();
  if (p == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) { dup2(nul, 0); dup2(nul, 1); dup2(nul, 2); }
    for (int fd = 3; fd < 1024; fd++) close(fd);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)workload);
    execl(bin, "runcvm-agent", "--pid", pid, (char *)NULL);
    _exit(127);
  }
  DBG("exec agent started as pid %d (workload %d)", (int)p, (int)workload);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  setsid();
  /* the guest tools first, for init's own use (break shells); the workload gets exactly its spec env */
  setenv("PATH", "/.runcvm/guest/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  parse_config();
  if (!strcmp(cfg_break, "preinit")) {
    console("[runcvm-init] break=preinit: starting a shell (exit to continue)");
    pid_t p = fork();
    if (p == 0) {
      execl("/.runcvm/guest/bin/busybox", "sh", NULL);
      _exit(127);
    }
    waitpid(p, NULL, 0);
  }
  /* Ctrl-Alt-Del (Firecracker's SendCtrlAltDel, the launcher's graceful stop) must not restart the VM: with CAD
   * disabled the kernel sends SIGINT to init instead, which the main loop turns into SIGTERM for the workload. Blocked
   * from here on so that one arriving while the VM still boots waits in the signalfd instead of being dropped (PID 1
   * discards signals it neither handles nor blocks). */
  reboot(RB_DISABLE_CAD);
  {
    sigset_t cad;
    sigemptyset(&cad);
    sigaddset(&cad, SIGINT);
    sigprocmask(SIG_BLOCK, &cad, NULL);
  }
  setup_mounts();
  if (cfg_hostname[0]) sethostname(cfg_hostname, strlen(cfg_hostname));
  loopback_up();

  io_fd = open_io_port();
  if (io_fd < 0) fatal("virtio-serial port %s not found (is virtio_console loaded?)", PORT_NAME);
  DBG("io port open; %d args, %d env, uid %u gid %u cwd %s", nargs, nenvs, cfg_uid, cfg_gid, cfg_cwd);
  {
    char vol_err[900] = "";
    if (runcvm_vol_setup(net_log, vol_err, sizeof vol_err) != 0) fatal("%s", vol_err);
  }
  runcvm_net_setup(net_log);
  {
    char vol_err[900] = ""; /* nfs volumes (vol.c) need the network */
    if (runcvm_vol_setup_nfs(net_log, vol_err, sizeof vol_err) != 0) fatal("%s", vol_err);
  }
  /* the prerun shell comes before READY: while a break is set the launcher feeds its stdin to this console until
   * READY, then to the workload (with the end of stdin), so the workload gets what follows the shell's `exit` */
  if (!strcmp(cfg_break, "prerun") && nargs > 0 && args[0][0]) {
    console("[runcvm-init] break=prerun: starting a shell (exit to run the workload)");
    pid_t p = fork();
    if (p == 0) {
      sigset_t none; /* init's blocked SIGINT would break Ctrl-C in the shell */
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      execl("/.runcvm/guest/bin/busybox", "sh", NULL);
      _exit(127);
    }
    waitpid(p, NULL, 0);
  }
  send_frame(T_READY, 0, NULL, 0);

  /* signals to init itself: SIGCHLD via signalfd */
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGINT); /* Ctrl-Alt-Del, see RB_DISABLE_CAD above */
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  int have_child = 0;
  pid_t child = -1;
  int out_r = -1, err_r = -1, in_w = -1;
  if (nargs == 0 || args[0][0] == 0) {
    console("[VM-START] No entrypoint found, sleeping");
  } else {
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, pi[2] = {-1, -1};
    int slave = -1;
    if (cfg_terminal) {
      pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (pty_master < 0 || grantpt(pty_master) || unlockpt(pty_master)) fatal("cannot allocate a pty: %s", strerror(errno));
      char *name = ptsname(pty_master);
      slave = open(name, O_RDWR | O_NOCTTY);
      if (slave < 0) fatal("cannot open %s: %s", name, strerror(errno));
    } else {
      if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) || pipe2(pi, O_CLOEXEC)) fatal("pipe: %s", strerror(errno));
    }
    if (unshare(CLONE_NEWPID) != 0) fatal("unshare(CLONE_NEWPID): %s", strerror(errno));
    child = fork();
    if (child < 0) fatal("fork: %s", strerror(errno));
    if (child == 0) {
      sigprocmask(SIG_UNBLOCK, &mask, NULL);
      child_setup_and_exec(pi[0], po[1], pe[1], slave);
    }
    have_child = 1;
    if (cfg_terminal) {
      close(slave);
      out_r = pty_master;
      in_w = dup(pty_master);
    } else {
      close(po[1]);
      close(pe[1]);
      close(pi[0]);
      out_r = po[0];
      err_r = pe[0];
      in_w = pi[1];
    }
    set_nonblock(in_w);
    DBG("workload started as pid %d", child);
  }
  start_exec_agent(have_child ? child : 0); /* exec (owner: exec) */

  struct outbuf inbuf = {0};
  int in_eof_requested = 0;
  int exit_code = -1, exit_signal = 0;
  unsigned char rbuf[8 + 65536];
  size_t rlen = 0;
  static char data[65536];

  for (;;) {
    int done = have_child && exit_code >= 0 && out_r < 0 && err_r < 0;
    if (done) break;
    struct pollfd p[5];
    int n = 0, i_io = -1, i_out = -1, i_err = -1, i_in = -1, i_sig = -1;
    p[n] = (struct pollfd){io_fd, POLLIN, 0}; i_io = n++;
    if (out_r >= 0) { p[n] = (struct pollfd){out_r, POLLIN, 0}; i_out = n++; }
    if (err_r >= 0) { p[n] = (struct pollfd){err_r, POLLIN, 0}; i_err = n++; }
    if (in_w >= 0 && inbuf.len > 0) { p[n] = (struct pollfd){in_w, POLLOUT, 0}; i_in = n++; }
    if (sfd >= 0) { p[n] = (struct pollfd){sfd, POLLIN, 0}; i_sig = n++; }
    int r = poll(p, (nfds_t)n, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      fatal("poll: %s", strerror(errno));
    }
    if (i_out >= 0 && p[i_out].revents) {
      ssize_t k = read(out_r, data, sizeof data);
      if (k > 0) send_frame(T_DATA, CH_STDOUT, data, (uint32_t)k);
      else if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
        /* EIO on a pty master means every slave is closed */
        if (out_r != in_w) close(out_r);
        out_r = -1;
        send_frame(T_EOF, CH_STDOUT, NULL, 0);
      }
    }
    if (i_err >= 0 && p[i_err].revents) {
      ssize_t k = read(err_r, data, sizeof data);
      if (k > 0) send_frame(T_DATA, CH_STDERR, data, (uint32_t)k);
      else if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
        close(err_r);
        err_r = -1;
        send_frame(T_EOF, CH_STDERR, NULL, 0);
      }
    }
    if (i_in >= 0 && p[i_in].revents) {
      ssize_t k = write(in_w, inbuf.data, inbuf.len);
      if (k > 0) {
        memmove(inbuf.data, inbuf.data + k, inbuf.len - (size_t)k);
        inbuf.len -= (size_t)k;
      } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
        inbuf.len = 0;
        close(in_w);
        in_w = -1;
      }
      if (in_w >= 0 && inbuf.len == 0 && in_eof_requested && !cfg_terminal) {
        close(in_w);
        in_w = -1;
      }
    }
    if (i_sig >= 0 && p[i_sig].revents) {
      struct signalfd_siginfo si;
      int got_cad = 0;
      while (read(sfd, &si, sizeof si) == sizeof si)
        if (si.ssi_signo == SIGINT) got_cad = 1;
      int status;
      pid_t w;
      while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
        if (w == child) {
          if (WIFEXITED(status)) exit_code = WEXITSTATUS(status);
          else if (WIFSIGNALED(status)) { exit_signal = WTERMSIG(status); exit_code = 128 + exit_signal; }
          DBG("workload exited: code %d signal %d", exit_code, exit_signal);
          if (in_w >= 0) { close(in_w); in_w = -1; }
          if (cfg_terminal) {
            /* the pty may still hold unread output: drain it without blocking, then stop */
            for (;;) {
              ssize_t k = read(out_r, data, sizeof data);
              if (k <= 0) break;
              send_frame(T_DATA, CH_STDOUT, data, (uint32_t)k);
            }
            close(out_r);
            out_r = -1;
          }
        }
      }
      if (got_cad) {
        /* a graceful stop from the host: SIGTERM to the workload, as `docker stop` does under runc; with no workload,
         * end as a stop signal over the channel would (128+15) */
        DBG("ctrl-alt-del: SIGTERM to the workload");
        if (have_child && exit_code < 0) kill(child, SIGTERM);
        else if (!have_child) {
          exit_code = 128 + SIGTERM;
          exit_signal = SIGTERM;
          have_child = 1;
        }
      }
    }
    if (i_io >= 0 && p[i_io].revents) {
      ssize_t k = read(io_fd, rbuf + rlen, sizeof rbuf - rlen);
      if (k < 0 && errno != EINTR && errno != EAGAIN) fatal("read %s: %s", PORT_NAME, strerror(errno));
      if (k == 0) {
        /* host side disconnected: treat like EOF on stdin; avoid a busy loop */
        usleep(20000);
      }
      if (k > 0) rlen += (size_t)k;
      while (rlen >= 8) {
        uint32_t len = ((uint32_t)rbuf[4] << 24) | ((uint32_t)rbuf[5] << 16) | ((uint32_t)rbuf[6] << 8) | rbuf[7];
        if (len > 65536) fatal("bad frame from host (length %u)", len);
        if (rlen < 8 + len) break;
        int type = rbuf[0], ch = rbuf[1];
        unsigned char *pl = rbuf + 8;
        if (type == T_DATA && ch == CH_STDIN && in_w >= 0) ob_push(&inbuf, (char *)pl, len);
        else if (type == T_EOF && ch == CH_STDIN) {
          in_eof_requested = 1;
          if (in_w >= 0 && inbuf.len == 0 && !cfg_terminal) { close(in_w); in_w = -1; }
        } else if (type == T_SIGNAL && len >= 1) {
          int sig = pl[0];
          DBG("signal %d from host", sig);
          if (have_child && exit_code < 0) kill(child, sig);
          else if (!have_child && (sig == SIGTERM || sig == SIGINT || sig == SIGKILL || sig == SIGQUIT || sig == SIGHUP)) {
            exit_code = 128 + sig;
            exit_signal = sig;
            have_child = 1;
          }
        } else if (type == T_WINSIZE && len >= 4 && pty_master >= 0) {
          struct winsize ws = {0};
          ws.ws_row = (unsigned short)((pl[0] << 8) | pl[1]);
          ws.ws_col = (unsigned short)((pl[2] << 8) | pl[3]);
          ioctl(pty_master, TIOCSWINSZ, &ws);
        }
        memmove(rbuf, rbuf + 8 + len, rlen - 8 - len);
        rlen -= 8 + len;
      }
    }
  }

  unsigned char pl[5] = {(unsigned char)(exit_code >> 24), (unsigned char)(exit_code >> 16), (unsigned char)(exit_code >> 8), (unsigned char)exit_code, (unsigned char)exit_signal};
  send_frame(T_EXIT, 0, pl, 5);
  DBG("exit %d reported; waiting for ack", exit_code);
  /* wait for ACK: the host has read every frame before it, so powering off loses nothing */
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    struct pollfd pfd = {io_fd, POLLIN, 0};
    if (poll(&pfd, 1, 200) > 0) {
      ssize_t k = read(io_fd, rbuf + rlen, sizeof rbuf - rlen);
      if (k > 0) rlen += (size_t)k;
      int acked = 0;
      while (rlen >= 8) {
        uint32_t len = ((uint32_t)rbuf[4] << 24) | ((uint32_t)rbuf[5] << 16) | ((uint32_t)rbuf[6] << 8) | rbuf[7];
        if (rlen < 8 + len) break;
        if (rbuf[0] == T_ACK) acked = 1;
        memmove(rbuf, rbuf + 8 + len, rlen - 8 - len);
        rlen -= 8 + len;
      }
      if (acked) break;
      if (k == 0) usleep(20000);
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > 5000) break;
  }
  poweroff_now();
  return 0;
}
