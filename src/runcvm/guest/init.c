/*
 * runcvm-init: PID 1 of the microVM (exec'd by the initramfs switch_root as /.runcvm/guest/bin/runcvm-init).
 * main() is the order of the phases; each lives in its own file (init.h lists them):
 *
 *  1. config    reads /.runcvm/config (key=value, %-escaped) and /.runcvm/entrypoint (one argument per line);
 *  2. mounts    /proc, /sys, /dev, /dev/pts, /dev/shm, /run and the spec's tmpfs mounts; hostname; lo up;
 *  3. channel   opens the framed channel to the launcher (frames: contract.h, src/runcvm/agent/codec.ts);
 *  4. volumes, network, nfs volumes (they need the network), then READY;
 *  5. workload  starts the workload as PID 1 of a new PID namespace and its own mount namespace (the spec's /proc, /dev,
 *               /sys mounts, devices, masked and read-only paths: rootfs.c), with its own uid/gid/groups/cwd/env/
 *               rlimits/capabilities/sysctls/oom_score_adj/seccomp filter, stdout and stderr on separate pipes (or a
 *               pty in terminal mode), and the exec agent;
 *  6. relay     relays output to the host, stdin / signals / window size back;
 *  7. report    after the last output byte sends EXIT, waits for ACK, powers off.
 *
 * Built static (gcc -static -Os) by scripts/assets/30-runtime.sh, so it needs nothing from the image.
 */
#define _GNU_SOURCE
#include "init.h"
#include "net.h" /* guest networking (net.c, owner: networking) */
#include "vol.h" /* guest volumes (vol.c, owner: volumes) */

#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* break=preinit|prerun: a busybox shell on the console; exit continues the boot */
static void break_shell(const struct guest_config *cfg, const char *at, const char *what) {
  if (strcmp(cfg->brk, at) != 0) return;
  console("[runcvm-init] break=%s: starting a shell (%s)", at, what);
  pid_t p = fork();
  if (p == 0) {
    sigset_t none; /* init's blocked SIGINT would break Ctrl-C in the shell */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execl(PATH_BUSYBOX, "sh", (char *)NULL);
    _exit(127);
  }
  waitpid(p, NULL, 0);
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

static void volumes_setup(const struct guest_config *cfg, int nfs_pass) {
  char err[900] = "";
  if (runcvm_vol_setup(cfg->volumes, cfg->nvolumes, nfs_pass, channel_log, err, sizeof err) != 0) fatal("%s", err);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  setsid();
  /* the guest tools first, for init's own use (break shells); the workload gets exactly its spec env */
  setenv("PATH", PATH_BIN ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);

  static struct guest_config cfg; /* large (4096 args and env entries): not on the stack */
  if (config_load(&cfg) != 0) fatal("cannot read %s: %s", PATH_CONFIG, strerror(errno));
  init_debug = cfg.debug;
  /* the count only: arguments may carry secrets (tokens on a command line) and the console reaches the host's logs */
  DBG("entrypoint %s: %d argument%s", PATH_ENTRYPOINT, cfg.nargs, cfg.nargs == 1 ? "" : "s");
  break_shell(&cfg, BREAK_PREINIT, "exit to continue");

  /* Ctrl-Alt-Del (Firecracker's SendCtrlAltDel, the launcher's graceful stop) must not restart the VM: with CAD
   * disabled the kernel sends SIGINT to init instead, which the relay turns into SIGTERM for the workload. Blocked
   * from here on so that one arriving while the VM still boots waits in the signalfd instead of being dropped (PID 1
   * discards signals it neither handles nor blocks). */
  reboot(RB_DISABLE_CAD);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, NULL);

  mounts_setup(&cfg);
  runcvm_net_resume_handoff(); /* a VM restored from a template: its network words, before the workload's /dev */
  if (cfg.hostname[0]) sethostname(cfg.hostname, strlen(cfg.hostname));
  loopback_up();

  if (channel_open() < 0) fatal("virtio-serial port %s not found (is virtio_console loaded?)", IO_PORT_NAME);
  DBG("io port open; %d args, %d env, uid %u gid %u cwd %s", cfg.nargs, cfg.nenvs, cfg.uid, cfg.gid, cfg.cwd);
  volumes_setup(&cfg, 0);
  runcvm_net_setup(channel_log);
  volumes_setup(&cfg, 1); /* nfs volumes need the network */
  /* the prerun shell comes before READY: while a break is set the launcher feeds its stdin to this console until
   * READY, then to the workload (with the end of stdin), so the workload gets what follows the shell's `exit` */
  if (cfg.nargs > 0 && cfg.args[0][0]) break_shell(&cfg, BREAK_PRERUN, "exit to run the workload");
  channel_send(T_READY, 0, NULL, 0);

  /* signals to init itself: SIGCHLD (and the Ctrl-Alt-Del SIGINT) via signalfd */
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  struct workload w = {.pid = -1, .out_r = -1, .err_r = -1, .in_w = -1, .pty_master = -1};
  if (cfg.nargs == 0 || cfg.args[0][0] == 0) console("[VM-START] No entrypoint found, sleeping");
  else workload_start(&cfg, &w, &mask);
  exec_agent_start(&cfg, w.pid > 0 ? w.pid : 0); /* exec (owner: exec) */

  struct exit_status st = relay_run(&cfg, &w, sfd);
  report_exit_and_power_off(st.code, st.signal);
}
