/* The workload: started as PID 1 of a new PID namespace (so signals behave as under runc: a PID 1 without a handler
 * ignores SIGTERM), in its own mount namespace, with stdout and stderr on separate pipes (or one pty in terminal
 * mode). The child's set-up runs in runc's order, one step per function:
 *   namespaces → stdio → rlimits, signals → umask, cwd, read-only root → capabilities (bounding), user, chdir →
 *   capabilities (the rest), no_new_privs → HOME, exec.
 * The exec agent is started here too: it joins the workload's namespaces for each exec. */
#define _GNU_SOURCE
#include "init.h"
#include "io.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_FAIL(...) do { dprintf(2, "runcvm-init: " __VA_ARGS__); _exit(126); } while (0)

/* own mount namespace with a /proc that shows the new PID namespace */
static void child_namespaces(void) {
  unshare(CLONE_NEWNS);
  mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  umount2("/proc", MNT_DETACH);
  mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
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

/* runc's order: bounding set, user, then cwd (as the user), then the other capability sets */
static void child_user(const struct guest_config *c) {
  char caperr[300];
  if (runcvm_caps_before_user(&c->caps, caperr, sizeof caperr) != 0) CHILD_FAIL("%s\n", caperr);
  if (setgroups((size_t)c->ngroups, c->groups) != 0) CHILD_FAIL("setgroups: %s\n", strerror(errno));
  if (setgid(c->gid) != 0) CHILD_FAIL("setgid %u: %s\n", c->gid, strerror(errno));
  if (setuid(c->uid) != 0) CHILD_FAIL("setuid %u: %s\n", c->uid, strerror(errno));
  if (chdir(c->cwd) != 0) CHILD_FAIL("chdir to cwd (\"%s\") set in config.json failed: %s\n", c->cwd, strerror(errno));
  if (runcvm_caps_after_user(&c->caps, caperr, sizeof caperr) != 0) CHILD_FAIL("%s\n", caperr);
  if (c->nonewprivs) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
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
  int po[2] = {-1, -1}, pe[2] = {-1, -1}, pi[2] = {-1, -1};
  int slave = -1;
  if (c->terminal) {
    w->pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (w->pty_master < 0 || grantpt(w->pty_master) || unlockpt(w->pty_master)) fatal("cannot allocate a pty: %s", strerror(errno));
    char *name = ptsname(w->pty_master);
    slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0) fatal("cannot open %s: %s", name, strerror(errno));
  } else if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) || pipe2(pi, O_CLOEXEC)) {
    fatal("pipe: %s", strerror(errno));
  }
  if (unshare(CLONE_NEWPID) != 0) fatal("unshare(CLONE_NEWPID): %s", strerror(errno));
  pid_t child = fork();
  if (child < 0) fatal("fork: %s", strerror(errno));
  if (child == 0) {
    sigprocmask(SIG_UNBLOCK, init_mask, NULL);
    child_namespaces();
    become_session_leader_with_stdio(slave, pi[0], po[1], pe[1]);
    child_limits_and_signals(c);
    child_root(c);
    child_user(c);
    child_exec(c);
  }
  w->pid = child;
  if (c->terminal) {
    close(slave);
    w->out_r = w->pty_master;
    w->in_w = dup(w->pty_master);
  } else {
    close(po[1]);
    close(pe[1]);
    close(pi[0]);
    w->out_r = po[0];
    w->err_r = pe[0];
    w->in_w = pi[1];
  }
  set_nonblock(w->in_w);
  DBG("workload started as pid %d", child);
}

/* The exec agent (src/runcvm/guest/agent.c, docs/dev/notes/exec.md) is forked into init's own (root) PID namespace,
 * so `ps` in the container does not show it, once the workload runs, so it can join the workload's namespaces for
 * each exec. No binary: no exec. */
void exec_agent_start(pid_t workload) {
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
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)workload);
    execl(PATH_AGENT, "runcvm-agent", "--pid", pid, (char *)NULL);
    _exit(127);
  }
  DBG("exec agent started as pid %d (workload %d)", (int)p, (int)workload);
}
