/* runcvm-init's own mounts: the pseudo filesystems a container expects (as runc's defaults) and the spec's tmpfs
 * mounts. The initramfs moved /dev, /proc and /sys here when the root has those folders: check before mounting. */
#define _GNU_SOURCE
#include "init.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static int exists(const char *probe) {
  struct stat st;
  return stat(probe, &st) == 0;
}

static void mount_or_warn(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  mkdir_p(dst, 0755);
  if (mount(src, dst, type, flags, data) != 0) console("[runcvm-init] warning: mount %s on %s: %s", type, dst, strerror(errno));
}

/* OCI mount options → mount(2) flags and the tmpfs data string */
static void tmpfs_flags(const char *opts, unsigned long *flags, char *data, size_t datalen) {
  char copy[1024];
  snprintf(copy, sizeof copy, "%s", opts);
  data[0] = 0;
  *flags = 0;
  char *save = NULL;
  for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
    if (!strcmp(o, "-")) continue;
    if (!strcmp(o, "nosuid")) *flags |= MS_NOSUID;
    else if (!strcmp(o, "nodev")) *flags |= MS_NODEV;
    else if (!strcmp(o, "noexec")) *flags |= MS_NOEXEC;
    else if (!strcmp(o, "ro")) *flags |= MS_RDONLY;
    else if (!strcmp(o, "rw") || !strcmp(o, "rbind") || !strcmp(o, "bind") || !strcmp(o, "private") || !strcmp(o, "rprivate")) continue;
    else if (!strncmp(o, "size=", 5) || !strncmp(o, "mode=", 5) || !strncmp(o, "uid=", 4) || !strncmp(o, "gid=", 4) || !strncmp(o, "nr_inodes=", 10)) {
      if (data[0]) strncat(data, ",", datalen - strlen(data) - 1);
      strncat(data, o, datalen - strlen(data) - 1);
    }
  }
}

void mounts_setup(const struct guest_config *cfg) {
  if (!exists("/proc/self")) mount_or_warn("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  if (!exists("/sys/kernel")) mount_or_warn("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  if (!exists("/dev/null")) mount_or_warn("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount_or_warn("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  unlink("/dev/ptmx");
  if (symlink("pts/ptmx", "/dev/ptmx") != 0 && errno != EEXIST) DBG("symlink /dev/ptmx: %s", strerror(errno));
  mount_or_warn("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_or_warn("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_or_warn("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  symlink("/proc/self/fd", "/dev/fd");
  symlink("/proc/self/fd/0", "/dev/stdin");
  symlink("/proc/self/fd/1", "/dev/stdout");
  symlink("/proc/self/fd/2", "/dev/stderr");
  for (int i = 0; i < cfg->ntmpfs; i++) {
    unsigned long flags;
    char data[1024];
    tmpfs_flags(cfg->tmpfs[i].opts, &flags, data, sizeof data);
    mount_or_warn("tmpfs", cfg->tmpfs[i].dest, "tmpfs", flags, data[0] ? data : NULL);
    DBG("tmpfs %s (%s)", cfg->tmpfs[i].dest, cfg->tmpfs[i].opts);
  }
}
