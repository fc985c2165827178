/* The workload's view of the filesystem, in its own mount namespace (runc's prepareRootfs and finalizeRootfs, run
 * inside the VM). Init's own /proc, /dev and /sys (a devtmpfs that would show the workload the VM's raw disks, a
 * writable sysfs) are detached, and the spec's mounts at /proc, /dev, /sys and below are replayed in the spec's order
 * with the spec's flags (contract.h KEY_MOUNT, computed on the host by launch/system-mounts.ts); then, as runc:
 * the device nodes in /dev (the OCI defaults and linux.devices), its links (fd, stdin, stdout, stderr, core, ptmx),
 * the terminal on /dev/console, read-only remounts of /dev and tmpfs mounts, sysctls, read-only paths and masked
 * paths. The root's own read-only remount stays in workload.c (child_root). */
#define _GNU_SOURCE
#include "init.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* set when /dev is one of the replayed mounts: its nodes, links and console are ours to make */
static int dev_replayed;

/* a mount with ro_after (a tmpfs or /dev asked read-only) comes writable from the host's flags and is remounted
 * read-only by rootfs_finalize, once its nodes and links exist, as runc does */
static void replay_mount(const struct guest_config *c, int i) {
  const char *dest = c->mounts[i].dest;
  mkdir_p(dest, 0755);
  if (mount(c->mounts[i].source, dest, c->mounts[i].type, c->mounts[i].flags, c->mounts[i].data) != 0)
    CHILD_FAIL("error mounting \"%s\" to rootfs at \"%s\": %s\n", c->mounts[i].source, dest, strerror(errno));
  if (!strcmp(dest, "/dev")) dev_replayed = 1;
}

static void make_device(const struct guest_config *c, int i) {
  const char *path = c->devices[i].path;
  mode_t kind;
  switch (c->devices[i].type) {
  case 'b': kind = S_IFBLK; break;
  case 'p': kind = S_IFIFO; break;
  default: kind = S_IFCHR; break; /* c and u */
  }
  char parent[4096];
  snprintf(parent, sizeof parent, "%s", path);
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) {
    *slash = 0;
    mkdir_p(parent, 0755);
  }
  if (mknod(path, kind | (c->devices[i].mode & 07777), makedev(c->devices[i].major, c->devices[i].minor)) != 0) {
    if (errno == EEXIST) return; /* runc leaves an existing node alone */
    CHILD_FAIL("error creating device node %s: %s\n", path, strerror(errno));
  }
  if (chown(path, c->devices[i].uid, c->devices[i].gid) != 0) CHILD_FAIL("error chowning device node %s: %s\n", path, strerror(errno));
}

static void dev_links(void) {
  static const char *const links[][2] = {
    {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"}, {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlink(links[i][0], links[i][1]) != 0 && errno != EEXIST) CHILD_FAIL("error creating %s: %s\n", links[i][1], strerror(errno));
  struct stat st;
  if (stat("/proc/kcore", &st) == 0 && symlink("/proc/kcore", "/dev/core") != 0 && errno != EEXIST) CHILD_FAIL("error creating /dev/core: %s\n", strerror(errno));
  unlink("/dev/ptmx");
  if (symlink("pts/ptmx", "/dev/ptmx") != 0) CHILD_FAIL("error setting up ptmx: %s\n", strerror(errno));
}

void rootfs_prepare(const struct guest_config *c) {
  if (unshare(CLONE_NEWNS) != 0) CHILD_FAIL("unshare(CLONE_NEWNS): %s\n", strerror(errno));
  mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  if (c->nmounts == 0) {
    /* no replay list: init's mounts, with a /proc that shows the new PID namespace */
    umount2("/proc", MNT_DETACH);
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    return;
  }
  /* a lazy unmount takes the mounts below with it (/dev/pts, /dev/shm, /sys/fs/cgroup …) */
  umount2("/proc", MNT_DETACH);
  umount2("/dev", MNT_DETACH);
  umount2("/sys", MNT_DETACH);
  for (int i = 0; i < c->nmounts; i++) replay_mount(c, i);
  if (!dev_replayed) return;
  mode_t old = umask(0);
  for (int i = 0; i < c->ndevices; i++) make_device(c, i);
  umask(old);
  dev_links();
}

void rootfs_console(const struct guest_config *c, unsigned n) {
  (void)c;
  if (!dev_replayed) return;
  char pts[64];
  snprintf(pts, sizeof pts, "/dev/pts/%u", n);
  int fd = open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) close(fd);
  if (mount(pts, "/dev/console", NULL, MS_BIND, NULL) != 0) CHILD_FAIL("console: bind %s on /dev/console: %s\n", pts, strerror(errno));
}

void rootfs_finalize(const struct guest_config *c) {
  for (int i = 0; i < c->nmounts; i++) {
    if (!c->mounts[i].ro_after) continue;
    unsigned long keep = c->mounts[i].flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME);
    if (mount(NULL, c->mounts[i].dest, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) != 0)
      CHILD_FAIL("remount %s read-only: %s\n", c->mounts[i].dest, strerror(errno));
  }
}

/* runc's readonlyPath: bind the path onto itself, remount read-only keeping nosuid/nodev/noexec; a missing one is
 * left alone */
static void readonly_path(const char *path) {
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) != 0) {
    if (errno == ENOENT) return;
    CHILD_FAIL("can't make \"%s\" read-only: %s\n", path, strerror(errno));
  }
  struct statfs sf;
  if (statfs(path, &sf) != 0) CHILD_FAIL("can't make \"%s\" read-only: statfs: %s\n", path, strerror(errno));
  unsigned long keep = (unsigned long)sf.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
  if (mount(path, path, NULL, keep | MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0) CHILD_FAIL("can't make \"%s\" read-only: %s\n", path, strerror(errno));
}

/* runc's maskPath: /dev/null over a file, a read-only tmpfs over a folder; a missing path is left alone */
static void mask_path(const char *path) {
  if (mount("/dev/null", path, NULL, MS_BIND, NULL) == 0 || errno == ENOENT) return;
  if (errno == ENOTDIR && mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL) == 0) return;
  CHILD_FAIL("can't mask path %s: %s\n", path, strerror(errno));
}

void rootfs_paths(const struct guest_config *c) {
  for (int i = 0; i < c->nsysctls; i++) {
    char path[512];
    int n = snprintf(path, sizeof path, "/proc/sys/%s", c->sysctls[i].key);
    if (n < 0 || (size_t)n >= sizeof path) CHILD_FAIL("sysctl %s: name too long\n", c->sysctls[i].key);
    for (char *p = path + strlen("/proc/sys/"); *p; p++)
      if (*p == '.') *p = '/';
    if (write_text(path, c->sysctls[i].value) != 0) CHILD_FAIL("write sysctl %s=%s: open %s: %s\n", c->sysctls[i].key, c->sysctls[i].value, path, strerror(errno));
  }
  for (int i = 0; i < c->nreadonly_paths; i++) readonly_path(c->readonly_paths[i]);
  for (int i = 0; i < c->nmasked_paths; i++) mask_path(c->masked_paths[i]);
}
