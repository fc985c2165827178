/* runcvm-init's channel to the launcher: the framed port (virtio-serial IO_PORT_NAME under QEMU, vsock
 * IO_VSOCK_PORT under Firecracker), the console, fatal errors, and the end: EXIT, wait for ACK, power off. */
#define _GNU_SOURCE
#include "init.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

int init_debug = 0;
static int io_fd = -1;
/* set when the channel is vsock (Firecracker): Firecracker has no power-off, it exits on the guest's reset */
static int io_over_vsock = 0;
static struct frame_reader reader;

void power_off(void) {
  sync();
  reboot(io_over_vsock ? RB_AUTOBOOT : RB_POWER_OFF);
  for (;;) pause();
}

void console(const char *fmt, ...) {
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

void channel_send(int type, int channel, const void *payload, unsigned len) {
  if (io_fd >= 0) frame_write(io_fd, type, channel, 0, payload, len);
}

int channel_fd(void) { return io_fd; }

int channel_read(void) { return (int)frame_read(&reader, io_fd); }

int channel_next(struct frame *f) { return frame_next(&reader, f); }

/* guest networking and volume log lines → LOG frames for the launcher's log; debug lines only with loglevel=debug */
void channel_log(int is_debug, const char *line) {
  if (is_debug && !init_debug) return;
  channel_send(T_LOG, 0, line, (unsigned)strlen(line));
  if (init_debug) console("%s", line);
}

void fatal(const char *fmt, ...) {
  char buf[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  console("[runcvm-init] error: %s", buf);
  if (io_fd >= 0) {
    char line[1000];
    int n = snprintf(line, sizeof line, "runcvm-init: error: %s\n", buf);
    channel_send(T_DATA, CH_STDERR, line, (unsigned)n);
    unsigned char p[5] = {0, 0, 0, INIT_FAILURE_STATUS, 0};
    channel_send(T_EXIT, 0, p, 5);
    /* wait briefly for the ACK so the message is not lost */
    struct pollfd pfd = {io_fd, POLLIN, 0};
    poll(&pfd, 1, 2000);
  }
  power_off();
}

/* Under QEMU there is no vsock device and connect() fails at once; under Firecracker there is no virtio-serial. */
int channel_open(void) {
  for (int attempt = 0; attempt < 500; attempt++) {
    io_fd = open_virtio_port(IO_PORT_NAME);
    if (io_fd >= 0) return io_fd;
    io_fd = connect_vsock_host(IO_VSOCK_PORT);
    if (io_fd >= 0) {
      io_over_vsock = 1;
      return io_fd;
    }
    usleep(10000);
  }
  return -1;
}

static long elapsed_ms(const struct timespec *since) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* EXIT, then wait (up to 5 s) for the ACK: the host has read every frame before it, so powering off loses nothing */
void report_exit_and_power_off(int code, int signal) {
  unsigned char pl[5] = {(unsigned char)(code >> 24), (unsigned char)(code >> 16), (unsigned char)(code >> 8), (unsigned char)code, (unsigned char)signal};
  channel_send(T_EXIT, 0, pl, 5);
  DBG("exit %d reported; waiting for ack", code);
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (elapsed_ms(&start) <= 5000) {
    struct pollfd pfd = {io_fd, POLLIN, 0};
    if (poll(&pfd, 1, 200) <= 0) continue;
    ssize_t k = channel_read();
    struct frame f;
    int acked = 0, got;
    while ((got = channel_next(&f)) == 1)
      if (f.type == T_ACK) acked = 1;
    if (acked || got < 0) break;
    if (k == 0) usleep(20000);
  }
  power_off();
}
