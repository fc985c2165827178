#define _GNU_SOURCE
#include "seccomp.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

int seccomp_decode(const char *hex, struct sock_fprog *prog, char *err, size_t errlen) {
  size_t n = strlen(hex), per = 2 * sizeof(struct sock_filter);
  if (n == 0 || n % per != 0 || n / per > BPF_MAXINSNS) {
    snprintf(err, errlen, "the seccomp program is %zu hex digits, not 1 to %d instructions of %zu", n, BPF_MAXINSNS, per);
    return -1;
  }
  unsigned char *bytes = malloc(n / 2);
  if (!bytes) {
    snprintf(err, errlen, "out of memory for the seccomp program");
    return -1;
  }
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(bytes);
      snprintf(err, errlen, "the seccomp program holds a non-hex character at %zu", 2 * i);
      return -1;
    }
    bytes[i] = (unsigned char)(hi << 4 | lo);
  }
  prog->len = (unsigned short)(n / per);
  prog->filter = (struct sock_filter *)bytes;
  return 0;
}

int seccomp_load(const struct sock_fprog *prog, unsigned flags) {
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog);
}
