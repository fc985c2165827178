/* The run loop: the workload's stdout / stderr → DATA frames (EOF when a stream ends), stdin / signals / window size
 * from the host → the workload, SIGCHLD → its exit status, Ctrl-Alt-Del (SIGINT to init) → SIGTERM to it. Ends once
 * the workload has exited and both streams are drained (so the EXIT frame comes after the last output byte), or when
 * a stop signal arrives while there is no workload (no entrypoint: 128+N). */
#define _GNU_SOURCE
#include "init.h"
#include "io.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

struct outbuf {
  char *data;
  size_t len, cap;
};

static void ob_push(struct outbuf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 4096;
    b->data = realloc(b->data, b->cap);
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

struct relay {
  const struct guest_config *cfg;
  struct workload *w;
  int started;     /* a workload runs (or the loop must end as if one had: a stop with no entrypoint) */
  int code, signal; /* code < 0: not exited yet */
  struct outbuf in;
  int in_eof_requested;
};

static char data[FRAME_MAX_PAYLOAD];

static void close_stdin(struct relay *r) {
  if (r->w->in_w >= 0) close(r->w->in_w);
  r->w->in_w = -1;
}

/* one read of a stream; at its end (EIO on a pty master means every slave is closed) an EOF frame */
static void pump(int *fd, int channel, int keep_open) {
  ssize_t k = read(*fd, data, sizeof data);
  if (k > 0) channel_send(T_DATA, channel, data, (unsigned)k);
  else if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
    if (!keep_open) close(*fd);
    *fd = -1;
    channel_send(T_EOF, channel, NULL, 0);
  }
}

static void feed_stdin(struct relay *r) {
  ssize_t k = write(r->w->in_w, r->in.data, r->in.len);
  if (k > 0) {
    memmove(r->in.data, r->in.data + k, r->in.len - (size_t)k);
    r->in.len -= (size_t)k;
  } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
    r->in.len = 0;
    close_stdin(r);
  }
  if (r->w->in_w >= 0 && r->in.len == 0 && r->in_eof_requested && !r->cfg->terminal) close_stdin(r);
}

static void on_signals(struct relay *r, int sfd) {
  struct workload *w = r->w;
  struct signalfd_siginfo si;
  int got_cad = 0;
  while (read(sfd, &si, sizeof si) == sizeof si)
    if (si.ssi_signo == SIGINT) got_cad = 1;
  int status;
  pid_t p;
  while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
    if (p != w->pid) continue;
    if (WIFEXITED(status)) r->code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) {
      r->signal = WTERMSIG(status);
      r->code = 128 + r->signal;
    }
    DBG("workload exited: code %d signal %d", r->code, r->signal);
    close_stdin(r);
    if (r->cfg->terminal) {
      /* the pty may still hold unread output: drain it without blocking, then stop */
      for (;;) {
        ssize_t k = read(w->out_r, data, sizeof data);
        if (k <= 0) break;
        channel_send(T_DATA, CH_STDOUT, data, (unsigned)k);
      }
      close(w->out_r);
      w->out_r = -1;
    }
  }
  if (got_cad) {
    /* a graceful stop from the host: SIGTERM to the workload, as `docker stop` does under runc; with no workload,
     * end as a stop signal over the channel would (128+15) */
    DBG("ctrl-alt-del: SIGTERM to the workload");
    if (r->started && r->code < 0) kill(w->pid, SIGTERM);
    else if (!r->started) {
      r->code = 128 + SIGTERM;
      r->signal = SIGTERM;
      r->started = 1;
    }
  }
}

static void on_frame(struct relay *r, const struct frame *f) {
  struct workload *w = r->w;
  if (f->type == T_DATA && f->channel == CH_STDIN && w->in_w >= 0) ob_push(&r->in, f->payload, f->len);
  else if (f->type == T_EOF && f->channel == CH_STDIN) {
    r->in_eof_requested = 1;
    if (w->in_w >= 0 && r->in.len == 0 && !r->cfg->terminal) close_stdin(r);
  } else if (f->type == T_SIGNAL && f->len >= 1) {
    int sig = f->payload[0];
    DBG("signal %d from host", sig);
    if (r->started && r->code < 0) kill(w->pid, sig);
    else if (!r->started && (sig == SIGTERM || sig == SIGINT || sig == SIGKILL || sig == SIGQUIT || sig == SIGHUP)) {
      r->code = 128 + sig;
      r->signal = sig;
      r->started = 1;
    }
  } else if (f->type == T_WINSIZE && f->len >= 4 && w->pty_master >= 0) {
    struct winsize ws = {0};
    ws.ws_row = (unsigned short)((f->payload[0] << 8) | f->payload[1]);
    ws.ws_col = (unsigned short)((f->payload[2] << 8) | f->payload[3]);
    ioctl(w->pty_master, TIOCSWINSZ, &ws);
  }
}

static void on_channel(struct relay *r) {
  ssize_t k = channel_read();
  if (k < 0 && errno != EINTR && errno != EAGAIN) fatal("read %s: %s", IO_PORT_NAME, strerror(errno));
  if (k == 0) usleep(20000); /* host side disconnected: like EOF on stdin; avoid a busy loop */
  struct frame f;
  int got;
  while ((got = channel_next(&f)) == 1) on_frame(r, &f);
  if (got < 0) fatal("bad frame from host (length %u)", f.len);
}

struct exit_status relay_run(const struct guest_config *cfg, struct workload *w, int sfd) {
  struct relay r = {.cfg = cfg, .w = w, .started = w->pid > 0, .code = -1};
  int io = channel_fd();
  while (!(r.started && r.code >= 0 && w->out_r < 0 && w->err_r < 0)) {
    struct pollfd p[5];
    int n = 0, i_out = -1, i_err = -1, i_in = -1, i_sig = -1;
    int i_io = n;
    p[n++] = (struct pollfd){io, POLLIN, 0};
    if (w->out_r >= 0) { i_out = n; p[n++] = (struct pollfd){w->out_r, POLLIN, 0}; }
    if (w->err_r >= 0) { i_err = n; p[n++] = (struct pollfd){w->err_r, POLLIN, 0}; }
    if (w->in_w >= 0 && r.in.len > 0) { i_in = n; p[n++] = (struct pollfd){w->in_w, POLLOUT, 0}; }
    if (sfd >= 0) { i_sig = n; p[n++] = (struct pollfd){sfd, POLLIN, 0}; }
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      fatal("poll: %s", strerror(errno));
    }
    if (i_out >= 0 && p[i_out].revents) pump(&w->out_r, CH_STDOUT, w->out_r == w->in_w);
    if (i_err >= 0 && p[i_err].revents) pump(&w->err_r, CH_STDERR, 0);
    if (i_in >= 0 && p[i_in].revents) feed_stdin(&r);
    if (i_sig >= 0 && p[i_sig].revents) on_signals(&r, sfd);
    if (p[i_io].revents) on_channel(&r);
  }
  return (struct exit_status){r.code, r.signal};
}
