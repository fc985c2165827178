/*
 * runcvm-resume: the template point of the initramfs (issue 17, docs/dev/notes/templates.md §3.5). Run by /init when
 * the kernel command line has TEMPLATE_CMDLINE_FLAG, after only the virtio transports and virtio_console are loaded
 * (no disk or NIC driver bound, no container data read):
 *   1. opens the io port by name and sends PARKED (the template builder saves the VM on it);
 *   2. blocks in read() for RESUME (a VM restored from the template continues here, in its own QEMU);
 *   3. sets CLOCK_REALTIME from clock_ns, credits the 64-byte seed to the random pool (RNDADDENTROPY) and reseeds the
 *      crng (RNDRESEEDCRNG), before anything reads randomness;
 *   4. writes the mac and net entries, one per line, to RESUME_HANDOFF_FILE (on /dev, which /init moves into the new
 *      root); runcvm-init moves them to RESUME_NET_FILE (net.c reads them there instead of /proc/cmdline);
 *   5. closes the port and exits 0; /init then loads the rest of its modules and continues as a cold boot does.
 * It reads exactly one frame's bytes at a time, so nothing meant for runcvm-init is consumed (the launcher sends
 * nothing else until runcvm-init talks). Any failure: exit 1 (/init powers the VM off: no half-resumed guest).
 * Built static (gcc -static -Os) by scripts/assets/10-kernel.sh into the initramfs as /bin/runcvm-resume.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "contract.h"
#include "resume.h"
#include "util.h"

#define SEED_BYTES 64
/* linux/random.h's ioctls, spelled out: the helper builds with musl too, which ships no kernel headers */
#ifndef RNDADDENTROPY
#define RNDADDENTROPY _IOW('R', 0x03, int[2])
#endif
#ifndef RNDRESEEDCRNG
#define RNDRESEEDCRNG _IO('R', 0x07)
#endif

static void die(const char *what) {
  int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
  if (fd >= 0) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "[runcvm-resume] error: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    if (write(fd, buf, (size_t)n) < 0) { /* nothing more to do */ }
    close(fd);
  }
  exit(1);
}

static int read_exact(int fd, unsigned char *buf, size_t len) {
  while (len > 0) {
    ssize_t k = read(fd, buf, len);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    buf += k;
    len -= (size_t)k;
  }
  return 0;
}

static int write_exact(int fd, const unsigned char *buf, size_t len) {
  while (len > 0) {
    ssize_t k = write(fd, buf, len);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    buf += k;
    len -= (size_t)k;
  }
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void reseed(const char *hex) {
  struct {
    int entropy_count;
    int buf_size;
    unsigned char buf[SEED_BYTES];
  } info;
  if (strlen(hex) != 2 * SEED_BYTES) { errno = 0; die("seed is not 64 bytes of hex"); }
  for (int i = 0; i < SEED_BYTES; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) { errno = 0; die("seed is not hex"); }
    info.buf[i] = (unsigned char)(hi << 4 | lo);
  }
  info.entropy_count = SEED_BYTES * 8;
  info.buf_size = SEED_BYTES;
  int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("open /dev/urandom");
  if (ioctl(fd, RNDADDENTROPY, &info) != 0) die("RNDADDENTROPY");
  if (ioctl(fd, RNDRESEEDCRNG) != 0) die("RNDRESEEDCRNG");
  close(fd);
  memset(&info, 0, sizeof info);
}

static void set_clock(const char *ns) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(ns, &end, 10);
  if (errno || *end || end == ns) { errno = 0; die("clock_ns is not a number"); }
  struct timespec t = {.tv_sec = (time_t)(v / 1000000000ULL), .tv_nsec = (long)(v % 1000000000ULL)};
  if (clock_settime(CLOCK_REALTIME, &t) != 0) die("clock_settime");
}

int main(void) {
  char dev[64], path[128];
  int fd = -1;
  /* the port appears once the host's control messages arrive (asynchronously after virtio_console's probe) */
  for (int i = 0; i < 200 && fd < 0; i++) {
    if (sysfs_find("virtio-ports", "name", IO_PORT_NAME, 0, dev, sizeof dev)) {
      snprintf(path, sizeof path, "/dev/%s", dev);
      fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    }
    if (fd < 0) usleep(25000);
  }
  if (fd < 0) die("virtio-serial port " IO_PORT_NAME " not found");

  unsigned char hdr[FRAME_HEADER_BYTES] = {T_PARKED, 0, 0, 0, 0, 0, 0, 0};
  if (write_exact(fd, hdr, sizeof hdr) != 0) die("send PARKED");

  /* ---- a template is saved here; every VM restored from it continues from this read ---- */
  static unsigned char payload[FRAME_MAX_PAYLOAD + 1];
  uint32_t len;
  for (;;) {
    if (read_exact(fd, hdr, sizeof hdr) != 0) die("io port closed before RESUME");
    len = ((uint32_t)hdr[4] << 24) | ((uint32_t)hdr[5] << 16) | ((uint32_t)hdr[6] << 8) | hdr[7];
    if (len > FRAME_MAX_PAYLOAD) { errno = 0; die("oversized frame"); }
    if (read_exact(fd, payload, len) != 0) die("io port closed inside a frame");
    if (hdr[0] == T_RESUME) break; /* anything before it is not for us (nothing is sent before it) */
  }
  payload[len] = 0;

  int out = open(RESUME_HANDOFF_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) die("create " RESUME_HANDOFF_FILE);
  const char *clock = NULL, *seed = NULL;
  for (size_t off = 0; off < len;) {
    char *e = (char *)payload + off;
    size_t n = strnlen(e, len - off);
    off += n + 1;
    char *eq = strchr(e, '=');
    if (!eq) continue;
    *eq = 0;
    const char *v = eq + 1;
    if (!strcmp(e, RESUME_KEY_CLOCK_NS)) clock = v;
    else if (!strcmp(e, RESUME_KEY_SEED)) seed = v;
    else if (!strcmp(e, RESUME_KEY_MAC) || !strcmp(e, RESUME_KEY_NET)) {
      if (strchr(v, '\n')) { errno = 0; die("a net entry holds a newline"); }
      /* one line each: "mac=<mac>" in NIC order, or the runcvm.net.* word itself */
      if (!strcmp(e, RESUME_KEY_MAC) && dprintf(out, "mac=%s\n", v) < 0) die("write " RESUME_HANDOFF_FILE);
      if (!strcmp(e, RESUME_KEY_NET) && dprintf(out, "%s\n", v) < 0) die("write " RESUME_HANDOFF_FILE);
    }
  }
  if (close(out) != 0) die("close " RESUME_HANDOFF_FILE);
  if (!clock || !seed) { errno = 0; die("RESUME without clock_ns or seed"); }
  set_clock(clock);
  reseed(seed);
  memset(payload, 0, sizeof payload);
  close(fd);
  return 0;
}
