/*
 * runcvm-exec: the exec client (static C). `runcvm-runtime exec` rewrites the exec's process so that runc runs
 * THIS in the launcher container (src/runcvm/exec/rewrite.ts): `/.runcvm/guest/bin/runcvm-exec <request-id>`.
 *
 * It reads (and removes) the request /.runcvm/state/exec-<id>.req (0600; already the OPEN payload of
 * src/runcvm/agent/exec.ts), connects to the launcher's exec socket /.runcvm/state/exec.sock, sends OPEN, then
 * relays stdin → guest, guest stdout → fd 1 and stderr → fd 2 (or a tty: raw mode on ours, the guest's pty does
 * the line discipline once; window size changes follow), forwards the signals it receives to the command in the
 * guest, and exits with the command's exit code (128+N when signal N killed it). Failures of the exec itself: 255.
 *
 * Static and dependency-free on purpose: it starts in about a millisecond (a Node client costs a Node start-up per
 * exec) and needs nothing from the image or the package's loader. Built by scripts/assets/30-runtime.sh.
 * Test mode: RUNCVM_EXEC_STATE=DIR and RUNCVM_EXEC_SOCKET=PATH override the two container paths.
 * `runcvm-exec --runtime NODE ENTRY -- ARGS` is the other end, on the host: the runtime's exec verb (exec-prep.c).
 */
#define _GNU_SOURCE
#include "io.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define MAX_PAYLOAD FRAME_MAX_PAYLOAD
#define FAILURE 255

static int sock = -1;

static int fail(const char *message, const char *fix) {
  dprintf(2, "runcvm: error: %s\nruncvm: fix: %s\n", message, fix);
  return FAILURE;
}

static void send_frame(int type, int channel, const void *payload, uint32_t len) {
  frame_write(sock, type, channel, 0, payload, len); /* a broken socket shows up as EOF on the read side */
}

static void send_winsize(void) {
  struct winsize ws;
  if (ioctl(1, TIOCGWINSZ, &ws) != 0 && ioctl(0, TIOCGWINSZ, &ws) != 0) return;
  if (!ws.ws_row || !ws.ws_col) return;
  unsigned char p[4] = {(unsigned char)(ws.ws_row >> 8), (unsigned char)ws.ws_row, (unsigned char)(ws.ws_col >> 8), (unsigned char)ws.ws_col};
  send_frame(T_WINSIZE, 0, p, 4);
}

/* the request, with room to append rows= and cols=; removed once read (it is for one exec only) */
static char *read_request(const char *path, size_t *len) {
  char *buf = read_file(path, len, 64);
  if (buf) unlink(path);
  return buf;
}

static int request_is_tty(const char *p, size_t len) {
  static const char want[] = EXEC_KEY_TTY "=1";
  const size_t n = sizeof want - 1;
  for (size_t i = 0; i + n < len + 1; i++) {
    if ((i == 0 || p[i - 1] == 0) && !strncmp(p + i, want, n) && (i + n == len || p[i + n] == 0)) return 1;
  }
  return 0;
}

int exec_prep_main(int argc, char **argv); /* exec-prep.c: the host side, for bin/runcvm-runtime */

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--runtime")) return exec_prep_main(argc, argv);
  if (argc < 2 || !argv[1][0] || strchr(argv[1], '/'))
    return fail("the exec client was started without a valid request id", "it is started by `runcvm-runtime exec`; do not run it by hand");
  const char *state = getenv("RUNCVM_EXEC_STATE");
  const char *sock_path = getenv("RUNCVM_EXEC_SOCKET");
  if (!state) state = PATH_EXEC_STATE;
  if (!sock_path) sock_path = PATH_EXEC_SOCKET;

  char path[4200];
  snprintf(path, sizeof path, "%s/exec-%s.req", state, argv[1]);
  size_t len = 0;
  char *req = read_request(path, &len);
  if (!req) {
    char msg[4400];
    snprintf(msg, sizeof msg, "cannot read the exec request %s: %s", path, strerror(errno));
    return fail(msg, "the request is written by `runcvm-runtime exec` into the container's state dir; run the exec again");
  }

  /* Signals are queued from here on, BEFORE the window size is read: the engine sets the size of the exec's pty
   * after starting it (docker before API 1.42 sends no initial size), and SIGWINCH's default action discards it,
   * so a resize landing between reading the size and the poll loop would never reach the guest's pty. */
  sigset_t mask;
  sigemptyset(&mask);
  int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGWINCH};
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&mask, forwarded[i]);
  sigaddset(&mask, SIGPIPE);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  int tty = request_is_tty(req, len) && isatty(0);
  struct termios saved;
  int restore = 0;
  if (tty && tcgetattr(0, &saved) == 0) {
    /* cfmakeraw on our tty: the guest's pty does echo, CR/LF and signals, exactly once, as under runc */
    struct termios raw = saved;
    cfmakeraw(&raw);
    if (tcsetattr(0, TCSANOW, &raw) == 0) restore = 1;
  }
  if (tty) {
    struct winsize ws;
    if ((ioctl(1, TIOCGWINSZ, &ws) == 0 || ioctl(0, TIOCGWINSZ, &ws) == 0) && ws.ws_row && ws.ws_col && len + 64 < MAX_PAYLOAD) {
      len += (size_t)sprintf(req + len, EXEC_KEY_ROWS "=%u", ws.ws_row) + 1;
      len += (size_t)sprintf(req + len, EXEC_KEY_COLS "=%u", ws.ws_col) + 1;
    }
  }

  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
  if (sock < 0 || connect(sock, (struct sockaddr *)&a, sizeof a) != 0) {
    char msg[600];
    snprintf(msg, sizeof msg, "cannot reach the VM's exec agent (%s: %s)", sock_path, strerror(errno));
    if (restore) tcsetattr(0, TCSANOW, &saved);
    return fail(msg, "the container is not running a VM any more (it is stopping or has stopped), or its launcher predates exec; start the container again");
  }

  send_frame(T_OPEN, 0, req, (uint32_t)len);
  free(req);

  static struct frame_reader reader;
  static char data[MAX_PAYLOAD];
  int stdin_open = 1, code = -1;
  for (;;) {
    struct pollfd p[3];
    int n = 0;
    p[n++] = (struct pollfd){sock, POLLIN, 0};
    p[n++] = (struct pollfd){sfd, POLLIN, 0};
    if (stdin_open) p[n++] = (struct pollfd){0, POLLIN, 0};
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGWINCH) {
          if (tty) send_winsize();
        } else if (si.ssi_signo != SIGPIPE) {
          unsigned char s = (unsigned char)si.ssi_signo;
          send_frame(T_SIGNAL, 0, &s, 1);
        }
      }
    }
    if (stdin_open && n > 2 && p[2].revents) {
      ssize_t k = read(0, data, sizeof data);
      if (k > 0) send_frame(T_DATA, CH_STDIN, data, (uint32_t)k);
      else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdin_open = 0;
        send_frame(T_EOF, CH_STDIN, NULL, 0);
      }
    }
    if (p[0].revents) {
      ssize_t k = frame_read(&reader, sock);
      if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (k <= 0) break; /* the launcher closed: after EXIT, or because the VM went away */
      struct frame f;
      int got;
      while ((got = frame_next(&reader, &f)) == 1) {
        if (f.type == T_DATA && f.channel == CH_STDOUT) write_all(1, f.payload, f.len);
        else if (f.type == T_DATA && f.channel == CH_STDERR) write_all(2, f.payload, f.len);
        else if (f.type == T_EXIT && f.len >= 4) {
          const unsigned char *pl = f.payload;
          int32_t c = (int32_t)(((uint32_t)pl[0] << 24) | ((uint32_t)pl[1] << 16) | ((uint32_t)pl[2] << 8) | pl[3]);
          int sig = f.len > 4 ? pl[4] : 0;
          code = sig ? 128 + sig : c;
        }
      }
      if (got < 0) break; /* a broken stream cannot be resynchronised: as if the launcher had gone */
    }
  }
  if (restore) tcsetattr(0, TCSANOW, &saved);
  if (code < 0) return fail("the VM went away before the command finished (the container stopped)", "check the container with `ctr task ls` / `docker ps -a`; its logs say why it stopped");
  return code & 0xff;
}
