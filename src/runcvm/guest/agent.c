/*
 * runcvm-agent: the exec agent in the microVM (static C, no dependency on the image).
 *
 * Started by runcvm-init at boot (argv: runcvm-agent --pid <workload pid>), it opens the virtio-serial port
 * AGENT_PORT_NAME (contract.h) and serves `exec` requests multiplexed on it by the launcher (src/runcvm/agent/mux.ts):
 * frames as in contract.h / src/runcvm/agent/codec.ts (8-byte header: type u8 | channel u8 | session u16 BE |
 * length u32 BE), the OPEN payload as in exec-request.h / src/runcvm/agent/exec.ts. For each OPEN it spawns the command in the workload's PID and mount
 * namespaces (so `ps` and /proc show the container's processes, as under runc) with the request's uid, gid,
 * supplementary groups, cwd and env, on pipes (stdout and stderr separate) or a pty (terminal). Output goes back as
 * DATA frames; EXIT (code, or 128+N and N for a signal) is sent only after stdout and stderr reached EOF, so nothing
 * is lost at the end. Several execs run at once; one poll loop, no threads.
 *
 * No network, no daemon reachable from anywhere but the host's launcher: the port is the only way in.
 * Test mode (host): runcvm-agent --socket PATH connects to a unix stream socket instead of the port and exits when
 * it closes. Built by scripts/assets/30-runtime.sh (gcc -static -Os).
 */
#define _GNU_SOURCE
#include "io.h"
#include "util.h"
#include "caps.h" /* the exec's OCI capabilities, applied as runc does (caps.c) */
#include "exec-request.h"
#include "seccomp.h" /* the container's filter for every exec (seccomp.c) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define MAX_PAYLOAD FRAME_MAX_PAYLOAD
#define MAX_SESSIONS 256

extern char **environ;

static int port_fd = -1;
static int test_mode = 0;
static int over_vsock = 0; /* the port is a vsock connection (Firecracker): its EOF or a failed write is final */
static pid_t workload = 0;

struct session {
  int used;
  uint16_t id;
  pid_t pid;
  int in_w, out_r, err_r, tty;
  char *in;
  size_t in_len, in_cap;
  int in_eof;
  int exited, code, sig;
  int closed; /* the host went away: no more frames for it */
};
static struct session sessions[MAX_SESSIONS];

static void logmsg(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  int fd = test_mode ? 2 : open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return;
  dprintf(fd, "[runcvm-agent] %s\n", buf);
  if (!test_mode) close(fd);
}

static void send_frame(int type, int channel, uint16_t session, const void *payload, uint32_t len) {
  if (frame_write(port_fd, type, channel, session, payload, len) != 0 && (test_mode || over_vsock)) exit(0);
}

/* Firecracker has no virtio-serial: the agent connects over vsock to the host (CID 2) port EXEC_VSOCK_PORT, which
 * Firecracker forwards to <uds_path>_<port> where the launcher's exec mux listens (docs/dev/notes/exec.md). */

static int open_port(void) {
  for (int attempt = 0; attempt < 1000; attempt++) {
    int pfd = open_virtio_port(AGENT_PORT_NAME);
    if (pfd >= 0) return pfd;
    int vfd = connect_vsock_host(EXEC_VSOCK_PORT);
    if (vfd >= 0) {
      over_vsock = 1;
      return vfd;
    }
    usleep(10000);
  }
  return -1;
}

static int connect_socket(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static struct session *find(uint16_t id) {
  for (int i = 0; i < MAX_SESSIONS; i++)
    if (sessions[i].used && sessions[i].id == id) return &sessions[i];
  return NULL;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* ----- the child: join the workload, become the user, exec ----- */

/* What every exec gets from the container's config, as under runc: handed over by runcvm-init on the command line
 * (--seccomp HEX, --seccomp-flags N, --oom-score-adj N), never from the exec request (the host's exec path only
 * describes the process). */
static struct sock_fprog exec_seccomp;
static unsigned exec_seccomp_flags;
static int has_oom_score_adj, oom_score_adj;

/* Every failure before the command runs: runc's words and runc's status (EXEC_FAILURE_STATUS), on the exec's stderr. */
#define EXEC_FAIL(...) do { dprintf(2, "exec failed: unable to start container process: " __VA_ARGS__); _exit(EXEC_FAILURE_STATUS); } while (0)

static void load_seccomp(void) {
  if (exec_seccomp.len && seccomp_load(&exec_seccomp, exec_seccomp_flags) != 0) EXEC_FAIL("error loading seccomp filter into kernel: %s\n", strerror(errno));
}

/* as Go's exec.LookPath words it (runc's message) */
static void exec_not_started(const char *name, int e) {
  if (e == ENOENT && !strchr(name, '/')) EXEC_FAIL("exec: \"%s\": executable file not found in $PATH\n", name);
  if (e == ENOENT) EXEC_FAIL("exec: \"%s\": stat %s: no such file or directory\n", name, name);
  if (e == EACCES) EXEC_FAIL("exec: \"%s\": permission denied\n", name);
  EXEC_FAIL("exec %s: %s\n", name, strerror(e));
}

/* the id outside the workload's user namespace that `id` inside maps to, from /proc/PID/uid_map; -1: unmapped */
static long outer_uid(uid_t id) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)workload);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  unsigned long in, out, size;
  long found = -1;
  while (found < 0 && fscanf(f, "%lu %lu %lu", &in, &out, &size) == 3)
    if (id >= in && id - in < size) found = (long)(out + (id - in));
  fclose(f);
  return found;
}

/* user_fd: the workload's user namespace when it is not the agent's (-1 otherwise), joined after the mount
 * namespace (owned by the guest's root), as runc's exec joins the container's */
static void child_exec(struct exec_request *r, int mnt_fd, int user_fd, int in_fd, int out_fd, int err_fd, int slave) {
  /* the process's rlimits, as runc sets them on an exec: first, from the guest's root (raising a hard limit needs
   * CAP_SYS_RESOURCE there, which a user namespace does not give) */
  for (int i = 0; i < r->nrlimits; i++) {
    struct rlimit rl = {(rlim_t)r->rlimits[i].soft, (rlim_t)r->rlimits[i].hard};
    if (setrlimit(r->rlimits[i].res, &rl) != 0) {
      dprintf(err_fd >= 0 ? err_fd : slave, "exec failed: unable to start container process: error setting rlimit type %d: %s\n", r->rlimits[i].res, strerror(errno));
      _exit(EXEC_FAILURE_STATUS);
    }
  }
  if (user_fd >= 0) {
    /* the exec's stdio belongs to its user as seen from outside (from inside, fchown cannot reach the owner) */
    long outer = outer_uid(r->uid);
    int fds[3] = {slave >= 0 ? slave : in_fd, out_fd, err_fd};
    for (int i = 0; i < 3 && outer >= 0; i++)
      if (fds[i] >= 0 && fchown(fds[i], (uid_t)outer, (gid_t)-1) != 0) continue; /* as fix_stdio_owner: best effort */
  }
  if (mnt_fd >= 0 && setns(mnt_fd, CLONE_NEWNS) != 0) {
    dprintf(err_fd >= 0 ? err_fd : slave, "exec failed: unable to start container process: cannot join the container's mount namespace: %s\n", strerror(errno));
    _exit(EXEC_FAILURE_STATUS);
  }
  if (user_fd >= 0 && setns(user_fd, CLONE_NEWUSER) != 0) {
    dprintf(err_fd >= 0 ? err_fd : slave, "exec failed: unable to start container process: cannot join the container's user namespace: %s\n", strerror(errno));
    _exit(EXEC_FAILURE_STATUS);
  }
  become_session_leader_with_stdio(slave, in_fd, out_fd, err_fd);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);

  /* runc's setns init: oom_score_adj, no_new_privs, the filter early without it, then finalizeNamespace (cwd as
   * root first, bounding set, terminal owner, user, cwd as the user if root could not, the other sets) */
  if (has_oom_score_adj) {
    char v[16];
    snprintf(v, sizeof v, "%d", oom_score_adj);
    if (write_text("/proc/self/oom_score_adj", v) != 0) EXEC_FAIL("write oom_score_adj %s: %s\n", v, strerror(errno));
  }
  if (r->nonewprivs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) EXEC_FAIL("prctl(SET_NO_NEW_PRIVS): %s\n", strerror(errno));
  if (!r->nonewprivs) load_seccomp();
  int chdir_later = 0;
  if (chdir(r->cwd) != 0) {
    if (errno != EACCES && errno != EPERM) EXEC_FAIL("chdir to cwd (\"%s\") set in config.json failed: %s\n", r->cwd, strerror(errno));
    chdir_later = 1;
  }
  char caperr[300];
  if (runcvm_caps_before_user(&r->caps, caperr, sizeof caperr) != 0) EXEC_FAIL("%s\n", caperr);
  fix_stdio_owner(r->uid);
  if (setgroups((size_t)r->ngroups, r->groups) != 0) EXEC_FAIL("setgroups: %s\n", strerror(errno));
  if (setgid(r->gid) != 0) EXEC_FAIL("setgid %u: %s\n", r->gid, strerror(errno));
  if (setuid(r->uid) != 0) EXEC_FAIL("setuid %u: %s\n", r->uid, strerror(errno));
  if (chdir_later && chdir(r->cwd) != 0) EXEC_FAIL("chdir to cwd (\"%s\") set in config.json failed: %s\n", r->cwd, strerror(errno));
  if (runcvm_caps_after_user(&r->caps, caperr, sizeof caperr) != 0) EXEC_FAIL("%s\n", caperr);
  /* runc sets HOME from the image's /etc/passwd when the process has none */
  int has_home = 0;
  for (int i = 0; i < r->nenvs; i++)
    if (!strncmp(r->envs[i], "HOME=", 5)) has_home = 1;
  static char home[4200];
  if (!has_home) {
    char dir[4096];
    snprintf(home, sizeof home, "HOME=%s", passwd_home(r->uid, dir, sizeof dir));
    r->envs[r->nenvs++] = home;
    r->envs[r->nenvs] = NULL;
  }
  environ = r->envs;
  if (r->nonewprivs) load_seccomp();
  execvp(r->args[0], r->args);
  exec_not_started(r->args[0], errno);
}

static void fail_open(uint16_t id, const char *fmt, ...) {
  char buf[600];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 1) n = sizeof buf - 1;
  send_frame(T_DATA, CH_STDERR, id, buf, (uint32_t)n);
  send_frame(T_EOF, CH_STDOUT, id, NULL, 0);
  send_frame(T_EOF, CH_STDERR, id, NULL, 0);
  unsigned char pl[5] = {0, 0, 0, EXEC_FAILURE_STATUS, 0};
  send_frame(T_EXIT, 0, id, pl, 5);
}

/* The exec's terminal comes from the workload's own devpts (its /dev/ptmx, through /proc/PID/root), so the command
 * sees /dev/pts/N of its container, as under runc; without a workload, the VM's. */
static int open_pty(int *slave) {
  char ptmx[64] = "/dev/ptmx";
  if (workload > 0) snprintf(ptmx, sizeof ptmx, "/proc/%d/root/dev/ptmx", (int)workload);
  int master = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return -1;
  if (unlockpt(master) != 0) {
    close(master);
    return -1;
  }
  *slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0) {
    int e = errno;
    close(master);
    errno = e;
    return -1;
  }
  return master;
}

static void open_session(uint16_t id, char *payload, size_t len) {
  if (find(id)) return;
  struct session *s = NULL;
  for (int i = 0; i < MAX_SESSIONS; i++)
    if (!sessions[i].used) { s = &sessions[i]; break; }
  if (!s) { fail_open(id, "runcvm-agent: too many execs at once (%d)\n", MAX_SESSIONS); return; }
  static struct exec_request r;
  if (exec_request_parse(payload, len, &r) != 0) { fail_open(id, "runcvm-agent: malformed exec request\n"); return; }

  int mnt_fd = -1;
  if (workload > 0) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)workload);
    mnt_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (mnt_fd < 0) { fail_open(id, "runcvm-agent: the container's workload (pid %d) is gone: %s\n", (int)workload, strerror(errno)); return; }
  }
  int po[2] = {-1, -1}, pe[2] = {-1, -1}, pi[2] = {-1, -1};
  int master = -1, slave = -1;
  if (r.tty) {
    master = open_pty(&slave);
    if (master < 0) { fail_open(id, "exec failed: unable to start container process: cannot allocate a pty: %s\n", strerror(errno)); close_fd(&mnt_fd); return; }
    if (r.rows && r.cols) {
      struct winsize ws = {(unsigned short)r.rows, (unsigned short)r.cols, 0, 0};
      ioctl(master, TIOCSWINSZ, &ws);
    }
  } else if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) || pipe2(pi, O_CLOEXEC)) {
    fail_open(id, "runcvm-agent: pipe: %s\n", strerror(errno));
    close_fd(&po[0]); close_fd(&po[1]); close_fd(&pe[0]); close_fd(&pe[1]); close_fd(&mnt_fd);
    return;
  }
  /* the workload's user namespace, when it has one of its own (guest/workload.c child_userns) */
  int user_fd = -1;
  if (workload > 0) {
    char path[64];
    struct stat mine, theirs;
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)workload);
    user_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (user_fd >= 0 && (fstat(user_fd, &theirs) != 0 || stat("/proc/self/ns/user", &mine) != 0 || mine.st_ino == theirs.st_ino)) close_fd(&user_fd);
  }
  pid_t pid = fork();
  if (pid == 0) child_exec(&r, mnt_fd, user_fd, pi[0], po[1], pe[1], slave);
  close_fd(&user_fd);
  close_fd(&mnt_fd);
  if (pid < 0) {
    int e = errno;
    close_fd(&po[0]); close_fd(&po[1]); close_fd(&pe[0]); close_fd(&pe[1]); close_fd(&pi[0]); close_fd(&pi[1]);
    close_fd(&master); close_fd(&slave);
    fail_open(id, "runcvm-agent: fork: %s\n", strerror(e));
    return;
  }
  memset(s, 0, sizeof *s);
  s->used = 1;
  s->id = id;
  s->pid = pid;
  s->tty = r.tty;
  if (r.tty) {
    close(slave);
    s->out_r = master;
    s->in_w = dup(master);
    s->err_r = -1;
    send_frame(T_EOF, CH_STDERR, id, NULL, 0); /* a tty has no separate stderr */
  } else {
    close(po[1]);
    close(pe[1]);
    close(pi[0]);
    s->out_r = po[0];
    s->err_r = pe[0];
    s->in_w = pi[1];
  }
  set_nonblock(s->out_r);
  if (s->err_r >= 0) set_nonblock(s->err_r);
  set_nonblock(s->in_w);
}

static void maybe_finish(struct session *s) {
  if (!s->used || !s->exited || s->out_r >= 0 || s->err_r >= 0) return;
  if (!s->closed) {
    unsigned char pl[5] = {(unsigned char)(s->code >> 24), (unsigned char)(s->code >> 16), (unsigned char)(s->code >> 8), (unsigned char)s->code, (unsigned char)s->sig};
    send_frame(T_EXIT, 0, s->id, pl, 5);
  }
  close_fd(&s->in_w);
  free(s->in);
  memset(s, 0, sizeof *s);
}

static void stream_ended(struct session *s, int channel) {
  if (channel == CH_STDOUT) {
    if (s->out_r == s->in_w) s->in_w = -1;
    close_fd(&s->out_r);
  } else {
    close_fd(&s->err_r);
  }
  if (!s->closed) send_frame(T_EOF, channel, s->id, NULL, 0);
  maybe_finish(s);
}

static void pump_out(struct session *s, int channel) {
  static char data[MAX_PAYLOAD];
  int fd = channel == CH_STDOUT ? s->out_r : s->err_r;
  ssize_t k = read(fd, data, sizeof data);
  if (k > 0) {
    if (!s->closed) send_frame(T_DATA, channel, s->id, data, (uint32_t)k);
  } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
    stream_ended(s, channel); /* EIO on a pty master: every slave is closed */
  }
}

static void reap(void) {
  int status;
  pid_t w;
  while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
    for (int i = 0; i < MAX_SESSIONS; i++) {
      struct session *s = &sessions[i];
      if (!s->used || s->pid != w) continue;
      s->exited = 1;
      if (WIFEXITED(status)) s->code = WEXITSTATUS(status);
      else if (WIFSIGNALED(status)) { s->sig = WTERMSIG(status); s->code = 128 + s->sig; }
      if (s->tty) {
        /* the pty may still hold output: drain it without blocking (a background child may keep it open) */
        static char data[MAX_PAYLOAD];
        for (;;) {
          ssize_t k = s->out_r >= 0 ? read(s->out_r, data, sizeof data) : -1;
          if (k <= 0) break;
          if (!s->closed) send_frame(T_DATA, CH_STDOUT, s->id, data, (uint32_t)k);
        }
        close_fd(&s->in_w);
        if (s->out_r >= 0) stream_ended(s, CH_STDOUT);
      }
      maybe_finish(s);
    }
  }
}

static void handle_frame(int type, int channel, uint16_t id, unsigned char *pl, uint32_t len) {
  if (type == T_OPEN) { open_session(id, (char *)pl, len); return; }
  struct session *s = find(id);
  if (!s) return;
  if (type == T_DATA && channel == CH_STDIN && s->in_w >= 0 && !s->in_eof) {
    if (s->in_len + len > s->in_cap) {
      s->in_cap = (s->in_len + len) * 2 + 4096;
      s->in = realloc(s->in, s->in_cap);
    }
    memcpy(s->in + s->in_len, pl, len);
    s->in_len += len;
  } else if (type == T_EOF && channel == CH_STDIN) {
    s->in_eof = 1;
    if (!s->tty && s->in_len == 0) close_fd(&s->in_w);
  } else if (type == T_SIGNAL && len >= 1) {
    if (!s->exited) kill(s->pid, pl[0]);
  } else if (type == T_WINSIZE && len >= 4 && s->tty && s->out_r >= 0) {
    struct winsize ws = {(unsigned short)((pl[0] << 8) | pl[1]), (unsigned short)((pl[2] << 8) | pl[3]), 0, 0};
    ioctl(s->out_r, TIOCSWINSZ, &ws);
  } else if (type == T_CLOSE) {
    s->closed = 1;
    if (!s->exited) kill(s->pid, SIGKILL);
    s->in_len = 0;
    if (!s->tty) close_fd(&s->in_w);
    maybe_finish(s);
  }
}

int main(int argc, char **argv) {
  const char *socket_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--pid") && i + 1 < argc) workload = (pid_t)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--socket") && i + 1 < argc) socket_path = argv[++i];
    else if (!strcmp(argv[i], "--seccomp") && i + 1 < argc) {
      char err[200];
      if (seccomp_decode(argv[++i], &exec_seccomp, err, sizeof err) != 0) {
        /* never run an exec without the container's filter: refuse every exec instead */
        logmsg("%s: exec is unavailable", err);
        return 1;
      }
    } else if (!strcmp(argv[i], "--seccomp-flags") && i + 1 < argc) exec_seccomp_flags = (unsigned)strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--oom-score-adj") && i + 1 < argc) {
      has_oom_score_adj = 1;
      oom_score_adj = atoi(argv[++i]);
    }
  }
  signal(SIGPIPE, SIG_IGN);
  if (socket_path) {
    test_mode = 1;
    port_fd = connect_socket(socket_path);
    if (port_fd < 0) { logmsg("cannot connect to %s: %s", socket_path, strerror(errno)); return 1; }
  } else {
    port_fd = open_port();
    if (port_fd < 0) { logmsg("neither virtio-serial port %s nor vsock port %d reachable: exec is unavailable", AGENT_PORT_NAME, EXEC_VSOCK_PORT); return 1; }
  }
  if (workload > 0) {
    /* children are born in the workload's PID namespace (the agent itself stays in the root one) */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)workload);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    /* ENOENT: the workload already ended (a short command), so no exec will come; the console is the container's
     * stdout, where a line about it would only corrupt the workload's output */
    if (fd < 0 && errno != ENOENT) logmsg("cannot join the workload's PID namespace (%s): execs see the VM's", strerror(errno));
    else if (fd >= 0 && setns(fd, CLONE_NEWPID) != 0) logmsg("cannot join the workload's PID namespace (%s): execs see the VM's", strerror(errno));
    if (fd >= 0) close(fd);
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  send_frame(T_READY, 0, 0, NULL, 0);

  static struct frame_reader reader;
  struct pollfd p[2 + 3 * MAX_SESSIONS];
  int who[2 + 3 * MAX_SESSIONS], what[2 + 3 * MAX_SESSIONS];
  for (;;) {
    int n = 0;
    p[n] = (struct pollfd){port_fd, POLLIN, 0}; who[n] = -1; what[n++] = 0;
    p[n] = (struct pollfd){sfd, POLLIN, 0}; who[n] = -1; what[n++] = 1;
    for (int i = 0; i < MAX_SESSIONS; i++) {
      struct session *s = &sessions[i];
      if (!s->used) continue;
      if (s->out_r >= 0) { p[n] = (struct pollfd){s->out_r, POLLIN, 0}; who[n] = i; what[n++] = CH_STDOUT; }
      if (s->err_r >= 0) { p[n] = (struct pollfd){s->err_r, POLLIN, 0}; who[n] = i; what[n++] = CH_STDERR; }
      if (s->in_w >= 0 && s->in_len > 0) { p[n] = (struct pollfd){s->in_w, POLLOUT, 0}; who[n] = i; what[n++] = CH_STDIN; }
    }
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      logmsg("poll: %s", strerror(errno));
      return 1;
    }
    for (int j = 2; j < n; j++) {
      if (!p[j].revents) continue;
      struct session *s = &sessions[who[j]];
      if (!s->used) continue;
      if (what[j] == CH_STDIN) {
        if (s->in_w < 0) continue;
        ssize_t k = write(s->in_w, s->in, s->in_len);
        if (k > 0) {
          memmove(s->in, s->in + k, s->in_len - (size_t)k);
          s->in_len -= (size_t)k;
        } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
          s->in_len = 0; /* the command closed its stdin (EPIPE) */
          if (!s->tty) close_fd(&s->in_w);
        }
        if (s->in_w >= 0 && s->in_len == 0 && s->in_eof && !s->tty) close_fd(&s->in_w);
      } else if ((what[j] == CH_STDOUT && s->out_r == p[j].fd) || (what[j] == CH_STDERR && s->err_r == p[j].fd)) {
        pump_out(s, what[j]);
      }
    }
    if (p[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {}
      reap();
    }
    if (p[0].revents) {
      ssize_t k = frame_read(&reader, port_fd);
      if (k < 0 && errno != EINTR && errno != EAGAIN) { logmsg("read: %s", strerror(errno)); return 1; }
      if (k == 0) {
        if (test_mode || over_vsock) return 0; /* a socket's EOF is final: the launcher is gone */
        usleep(20000); /* host side not connected (virtio port): avoid a busy loop */
      }
      struct frame f;
      int got;
      while ((got = frame_next(&reader, &f)) == 1) handle_frame(f.type, f.channel, f.session, f.payload, f.len);
      if (got < 0) { logmsg("bad frame from host (length %u)", f.len); return 1; }
    }
  }
}
