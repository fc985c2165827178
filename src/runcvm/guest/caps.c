/*
 * Capabilities, in runc's order (libcontainer finalizeNamespace), so the result after execve is the same:
 *   1. PR_CAPBSET_DROP every capability the kernel knows that is not in the bounding set (only possible with
 *      CAP_SETPCAP, which init has as root; an EINVAL for a capability the kernel lacks is ignored);
 *   2. PR_SET_KEEPCAPS, so setuid to a non-root user keeps the permitted set (it still clears the effective one);
 *   -- the caller changes groups, gid, uid and working directory --
 *   3. PR_SET_KEEPCAPS off, capset(effective, permitted, inheritable);
 *   4. every known capability raised into, or lowered out of, the ambient set. runc ignores failures here (its
 *      capability library drops the error), e.g. an ambient capability missing from the inheritable set: so do we.
 * Capabilities above the guest kernel's /proc/sys/kernel/cap_last_cap are left out rather than failing the start,
 * as runc leaves out those its host kernel lacks. No libcap: the image may not have it and init is static.
 */
#define _GNU_SOURCE
#include "caps.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int last_cap(void) {
  int last = 40; /* Linux 5.9+; only used when /proc is not readable */
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[16] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n > 0) last = atoi(buf);
    close(fd);
  }
  if (last < 0) last = 0;
  if (last > 63) last = 63;
  return last;
}

static unsigned long long known_mask(void) {
  int last = last_cap();
  return last >= 63 ? ~0ULL : ((1ULL << (last + 1)) - 1);
}

void runcvm_caps_parse(struct runcvm_caps *c, const char *value) {
  char set[32] = "";
  const char *sp = strchr(value, ' ');
  if (!sp || (size_t)(sp - value) >= sizeof set) return;
  memcpy(set, value, (size_t)(sp - value));
  unsigned long long mask = 0;
  for (const char *p = sp + 1; *p;) {
    char *end;
    unsigned long n = strtoul(p, &end, 10);
    if (end == p) { /* "-" (empty set) or junk */
      p++;
      continue;
    }
    if (n < 64) mask |= 1ULL << n;
    p = *end == ',' ? end + 1 : end;
  }
  c->present = 1;
  if (!strcmp(set, "bounding")) c->bounding = mask;
  else if (!strcmp(set, "effective")) c->effective = mask;
  else if (!strcmp(set, "inheritable")) c->inheritable = mask;
  else if (!strcmp(set, "permitted")) c->permitted = mask;
  else if (!strcmp(set, "ambient")) c->ambient = mask;
}

static int get_effective(unsigned long long *eff) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) return -1;
  *eff = (unsigned long long)data[0].effective | ((unsigned long long)data[1].effective << 32);
  return 0;
}

int runcvm_caps_before_user(const struct runcvm_caps *c, char *err, size_t errlen) {
  if (!c->present) return 0;
  int last = last_cap();
  unsigned long long eff = 0;
  if (get_effective(&eff) == 0 && (eff & (1ULL << CAP_SETPCAP))) {
    for (int i = 0; i <= last; i++) {
      if (c->bounding & (1ULL << i)) continue;
      if (prctl(PR_CAPBSET_DROP, (unsigned long)i, 0, 0, 0) != 0 && errno != EINVAL) {
        snprintf(err, errlen, "unable to apply bounding set: drop capability %d: %s", i, strerror(errno));
        return -1;
      }
    }
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    snprintf(err, errlen, "unable to set keep caps: %s", strerror(errno));
    return -1;
  }
  return 0;
}

int runcvm_caps_after_user(const struct runcvm_caps *c, char *err, size_t errlen) {
  if (!c->present) return 0;
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
    snprintf(err, errlen, "unable to clear keep caps: %s", strerror(errno));
    return -1;
  }
  unsigned long long known = known_mask();
  unsigned long long eff = c->effective & known, prm = c->permitted & known, inh = c->inheritable & known;
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  data[0].effective = (__u32)eff;
  data[1].effective = (__u32)(eff >> 32);
  data[0].permitted = (__u32)prm;
  data[1].permitted = (__u32)(prm >> 32);
  data[0].inheritable = (__u32)inh;
  data[1].inheritable = (__u32)(inh >> 32);
  if (syscall(SYS_capset, &hdr, data) != 0) {
    snprintf(err, errlen, "unable to apply caps: %s", strerror(errno));
    return -1;
  }
  int last = last_cap();
  for (int i = 0; i <= last; i++) {
    unsigned long action = (c->ambient & (1ULL << i)) ? PR_CAP_AMBIENT_RAISE : PR_CAP_AMBIENT_LOWER;
    (void)prctl(PR_CAP_AMBIENT, action, (unsigned long)i, 0, 0);
  }
  return 0;
}
