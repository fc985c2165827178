/* The workload: started as PID 1 of a new PID namespace (so signals behave as under runc: a PID 1 without a handler
 * ignores SIGTERM), in its own mount namespace, with stdout and stderr on separate pipes (or one pty in terminal
 * mode). The child's set-up runs in runc's order (standard_init_linux.go), one step per function:
 *   mounts, devices (rootfs.c) → terminal → stdio → rlimits, signals → read-only remounts, umask, cwd, read-only
 *   root → sysctls, read-only and masked paths → oom_score_adj → no_new_privs, seccomp without it → cwd as root,
 *   capabilities (bounding), stdio owner, user, cwd as the user if root could not → capabilities (the rest) →
 *   seccomp with no_new_privs → HOME, exec.
 * The exec agent is started here too: it joins the workload's namespaces for each exec. */
#define _GNU_SOURCE
#include "init.h"
#include "io.h"
#include "seccomp.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* the terminal, from the workload's own devpts (its /dev/ptmx), as runc's setupConsole: the master goes to init over
 * `sock`, the slave becomes the workload's stdio. -1 when there is no terminal. */
static int child_terminal(const struct guest_config *c, int sock) {
  if (!c->terminal) return -1;
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) CHILD_FAIL("cannot allocate a pty: open /dev/ptmx: %s\n", strerror(errno));
  if (unlockpt(master) != 0) CHILD_FAIL("cannot allocate a pty: unlockpt: %s\n", strerror(errno));
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  unsigned pts;
  if (slave < 0 || ioctl(master, TIOCGPTN, &pts) != 0) CHILD_FAIL("cannot open the pty: %s\n", strerror(errno));
  if (send_fd(sock, master) != 0) CHILD_FAIL("cannot hand the pty to init: %s\n", strerror(errno));
  close(master);
  rootfs_console(c, pts);
  return slave;
}

static void child_limits_and_signals(const struct guest_config *c) {
  for (int i = 0; i < c->nrlimits; i++) {
    struct rlimit rl = {(rlim_t)c->rlimits[i].soft, (rlim_t)c->rlimits[i].hard};
    setrlimit(c->rlimits[i].res, &rl);
  }
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
}

/* root.readonly: like runc, remount only this namespace's / read-only, after the cwd exists; /proc, /dev, /dev/shm,
 * tmpfs and volume mounts are mounts of their own and stay writable. Keep /'s other per-mount flags. */
static void child_root(const struct guest_config *c) {
  rootfs_finalize(c);
  umask(c->umask);
  /* runc creates a missing working directory; do the same, as root, before dropping privileges */
  mkdir_p(c->cwd, 0755);
  if (!c->readonly) return;
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
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) != 0) CHILD_FAIL("remount / read-only: %s\n", strerror(errno));
  /* under runc /run is part of the read-only root unless the spec mounts something there; here it is init's own
   * tmpfs, so it follows the root in this namespace only (init and the mounts below /run keep their flags) */
  if (c->readonly_run && mount(NULL, "/run", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
    CHILD_FAIL("remount /run read-only: %s\n", strerror(errno));
}

static void child_seccomp(const struct guest_config *c) {
  if (!c->seccomp_hex) return;
  struct sock_fprog prog;
  char err[200];
  if (seccomp_decode(c->seccomp_hex, &prog, err, sizeof err) != 0) CHILD_FAIL("%s\n", err);
  if (seccomp_load(&prog, c->seccomp_flags) != 0) CHILD_FAIL("error loading seccomp filter into kernel: %s\n", strerror(errno));
}

/* A user namespace's maps, as /proc/PID/uid_map takes them: one write of every line. 0 or -1 (errno). */
static int write_idmap(pid_t pid, const char *file, const struct guest_config *c, int uid) {
  static char buf[MAX_IDMAPS * 64];
  size_t len = 0;
  int n = uid ? c->nuidmaps : c->ngidmaps;
  for (int i = 0; i < n; i++) {
    unsigned long in = uid ? c->uidmaps[i].inner : c->gidmaps[i].inner;
    unsigned long out = uid ? c->uidmaps[i].outer : c->gidmaps[i].outer;
    unsigned long size = uid ? c->uidmaps[i].size : c->gidmaps[i].size;
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%lu %lu %lu\n", in, out, size);
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t w = write(fd, buf, len);
  int e = errno;
  close(fd);
  errno = e;
  return w == (ssize_t)len ? 0 : -1;
}

/* the guest's id that a namespace id maps to (-1: unmapped) */
static long outer_uid(const struct guest_config *c, uid_t id) {
  for (int i = 0; i < c->nuidmaps; i++)
    if (id >= c->uidmaps[i].inner && id - c->uidmaps[i].inner < c->uidmaps[i].size) return (long)(c->uidmaps[i].outer + (id - c->uidmaps[i].inner));
  return -1;
}

/* OCI linux.uidMappings/gidMappings: the workload enters a user namespace of the guest with the spec's maps (the
 * guest's ids are the host's: the disk keeps the rootfs's owners, so files show the owners runc shows). Done after
 * the mounts, devices and sysctls (they need the guest's root; the mount namespace stays the guest root's, so the
 * workload cannot mount, where under runc its root may mount in its own namespaces) and before no_new_privs and the
 * seccomp filter (which may forbid unshare). Only a process outside may write arbitrary maps: a helper forked
 * before the unshare writes them, as runc's parent does. */
static void child_userns(const struct guest_config *c) {
  if (!c->nuidmaps) return;
  /* the workload's stdio belongs to its user as seen from outside (fchown from inside cannot reach an unmapped owner) */
  long outer = outer_uid(c, c->uid);
  if (outer >= 0) fix_stdio_owner((uid_t)outer);
  int go[2];
  if (pipe2(go, O_CLOEXEC) != 0) CHILD_FAIL("user namespace: pipe: %s\n", strerror(errno));
  pid_t helper = fork();
  if (helper < 0) CHILD_FAIL("user namespace: fork: %s\n", strerror(errno));
  if (helper == 0) {
    close(go[1]);
    char b;
    if (read(go[0], &b, 1) != 1) _exit(1);
    pid_t target = getppid();
    if (write_idmap(target, "uid_map", c, 1) != 0) {
      dprintf(2, "runcvm-init: writing the user namespace's uid_map: %s\n", strerror(errno));
      _exit(1);
    }
    if (write_idmap(target, "gid_map", c, 0) != 0) {
      dprintf(2, "runcvm-init: writing the user namespace's gid_map: %s\n", strerror(errno));
      _exit(1);
    }
    _exit(0);
  }
  close(go[0]);
  if (unshare(CLONE_NEWUSER) != 0) CHILD_FAIL("unshare(CLONE_NEWUSER): %s\n", strerror(errno));
  if (write(go[1], "x", 1) != 1) CHILD_FAIL("user namespace: cannot wake the map writer: %s\n", strerror(errno));
  close(go[1]);
  int st;
  while (waitpid(helper, &st, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) CHILD_FAIL("user namespace: the maps could not be written\n");
}

/* runc's order (finalizeNamespace): the cwd as root first (a folder only root may enter), the bounding set, the
 * terminal's owner, the user, the cwd again as the user if root was refused, then the other capability sets */
static void child_user(const struct guest_config *c) {
  if (c->has_oom_score_adj) {
    char v[16];
    snprintf(v, sizeof v, "%d", c->oom_score_adj);
    if (write_text("/proc/self/oom_score_adj", v) != 0) CHILD_FAIL("write oom_score_adj %s: %s\n", v, strerror(errno));
  }
  child_userns(c);
  if (c->nonewprivs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) CHILD_FAIL("prctl(SET_NO_NEW_PRIVS): %s\n", strerror(errno));
  /* without no_new_privs loading a filter needs CAP_SYS_ADMIN: before the capabilities go */
  if (!c->nonewprivs) child_seccomp(c);
  int chdir_later = 0;
  if (chdir(c->cwd) != 0) {
    if (errno != EACCES && errno != EPERM) CHILD_FAIL("chdir to cwd (\"%s\") set in config.json failed: %s\n", c->cwd, strerror(errno));
    chdir_later = 1;
  }
  char caperr[300];
  if (runcvm_caps_before_user(&c->caps, caperr, sizeof caperr) != 0) CHILD_FAIL("%s\n", caperr);
  fix_stdio_owner(c->uid);
  if (setgroups((size_t)c->ngroups, c->groups) != 0) CHILD_FAIL("setgroups: %s\n", strerror(errno));
  if (setgid(c->gid) != 0) CHILD_FAIL("setgid %u: %s\n", c->gid, strerror(errno));
  if (setuid(c->uid) != 0) CHILD_FAIL("setuid %u: %s\n", c->uid, strerror(errno));
  if (chdir_later && chdir(c->cwd) != 0) CHILD_FAIL("chdir to cwd (\"%s\") set in config.json failed: %s\n", c->cwd, strerror(errno));
  if (runcvm_caps_after_user(&c->caps, caperr, sizeof caperr) != 0) CHILD_FAIL("%s\n", caperr);
  /* with no_new_privs: as late as possible, so the fewest syscalls run under the filter before exec */
  if (c->nonewprivs) child_seccomp(c);
}

/* runc sets HOME from the image's /etc/passwd when the spec has none; so do we (falling back to "/") */
static void child_exec(struct guest_config *c) {
  static char home_env[4200];
  int has_home = 0;
  for (int i = 0; i < c->nenvs; i++)
    if (!strncmp(c->envs[i], "HOME=", 5)) has_home = 1;
  if (!has_home && c->nenvs < MAX_ITEMS) {
    char dir[4096];
    snprintf(home_env, sizeof home_env, "HOME=%s", passwd_home(c->uid, dir, sizeof dir));
    c->envs[c->nenvs++] = home_env;
    c->envs[c->nenvs] = NULL;
  }
  environ = c->envs;
  execvp(c->args[0], c->args);
  int e = errno;
  if (e == ENOENT && !strchr(c->args[0], '/'))
    dprintf(2, "exec: \"%s\": executable file not found in $PATH\n", c->args[0]);
  else
    dprintf(2, "exec %s: %s\n", c->args[0], strerror(e));
  _exit(e == ENOENT ? 127 : 126);
}

void workload_start(struct guest_config *c, struct workload *w, const sigset_t *init_mask) {
  w->pid = -1;
  w->out_r = w->err_r = w->in_w = w->pty_master = -1;
  int po[2] = {-1, -1}, pe[2] = {-1, -1}, pi[2] = {-1, -1}, sp[2] = {-1, -1};
  if (c->terminal) {
    /* the child opens the pty in its own /dev/pts (the spec's devpts instance) and sends the master back */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) fatal("socketpair: %s", strerror(errno));
  } else if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) || pipe2(pi, O_CLOEXEC)) {
    fatal("pipe: %s", strerror(errno));
  }
  if (unshare(CLONE_NEWPID) != 0) fatal("unshare(CLONE_NEWPID): %s", strerror(errno));
  pid_t child = fork();
  if (child < 0) fatal("fork: %s", strerror(errno));
  if (child == 0) {
    sigprocmask(SIG_UNBLOCK, init_mask, NULL);
    if (sp[0] >= 0) close(sp[0]);
    rootfs_prepare(c);
    int slave = child_terminal(c, sp[1]);
    become_session_leader_with_stdio(slave, pi[0], po[1], pe[1]);
    child_limits_and_signals(c);
    child_root(c);
    rootfs_paths(c);
    child_user(c);
    child_exec(c);
  }
  w->pid = child;
  if (c->terminal) {
    close(sp[1]);
    w->pty_master = recv_fd(sp[0]); /* -1: the child failed before its terminal existed (its exit status says so) */
    close(sp[0]);
    if (w->pty_master >= 0) {
      w->out_r = w->pty_master;
      w->in_w = dup(w->pty_master);
    }
  } else {
    close(po[1]);
    close(pe[1]);
    close(pi[0]);
    w->out_r = po[0];
    w->err_r = pe[0];
    w->in_w = pi[1];
  }
  if (w->in_w >= 0) set_nonblock(w->in_w);
  DBG("workload started as pid %d", child);
}

/* The exec agent (src/runcvm/guest/agent.c, docs/dev/notes/exec.md) is forked into init's own (root) PID namespace,
 * so `ps` in the container does not show it, once the workload runs, so it can join the workload's namespaces for
 * each exec. No binary: no exec. */
void exec_agent_start(const struct guest_config *c, pid_t workload) {
  if (access(PATH_AGENT, X_OK) != 0) return;
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
    char pid[16], flags[16], oom[16];
    snprintf(pid, sizeof pid, "%d", (int)workload);
    snprintf(flags, sizeof flags, "%u", c->seccomp_flags);
    snprintf(oom, sizeof oom, "%d", c->oom_score_adj);
    /* what every exec gets from the container's config (the agent is in init's PID namespace: the workload never
     * sees this command line) */
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)"runcvm-agent";
    argv[n++] = (char *)"--pid";
    argv[n++] = pid;
    if (c->seccomp_hex) {
      argv[n++] = (char *)"--seccomp";
      argv[n++] = c->seccomp_hex;
      argv[n++] = (char *)"--seccomp-flags";
      argv[n++] = flags;
    }
    if (c->has_oom_score_adj) {
      argv[n++] = (char *)"--oom-score-adj";
      argv[n++] = oom;
    }
    argv[n] = NULL;
    execv(PATH_AGENT, argv);
    _exit(127);
  }
  DBG("exec agent started as pid %d (workload %d)", (int)p, (int)workload);
}
