/*
 * runcvm guest volumes: mounts the `volume=` lines of /.runcvm/config (src/runcvm/volumes/plan.ts volumeConfigLines()),
 * collected by config.c:
 *   volume=FSTYPE SOURCE DEST FLAGS FILE      (%-escaped fields, spaces as %20)
 *   FSTYPE  virtiofs | nfs | ext4 | ext3 | ext2  (nfs: SOURCE NFS_SERVER_IP:/.runcvm/vols/<id>, mounted after the network
 *          with contract.h NFS_MOUNT_OPTIONS)
 *   SOURCE  the virtiofs tag, or the data disk's device (/dev/vdc, …)
 *   FLAGS   ro|rw[,nosuid][,nodev][,noexec]
 *   FILE    '-' or, for a single-file bind, the file's name in the shared folder: the folder is mounted at
 *           /.runcvm/vols/<tag> and the file is bind-mounted onto DEST.
 * A volume that cannot be mounted stops the container (as runc does): the workload never writes into the image
 * layer what the user meant for a volume.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contract.h"
#include "util.h"
#include "vol.h"

/* mount(2), retried for nfs (the route to the server may need a moment after the network came up) */
static int vol_mount(const char *source, const char *target, const char *fstype, unsigned long flags) {
  int is_nfs = fstype && !strcmp(fstype, VOLUME_FS_NFS);
  for (int attempt = 0;; attempt++) {
    if (mount(source, target, fstype, flags, is_nfs ? NFS_MOUNT_OPTIONS : NULL) == 0) return 0;
    if (!is_nfs || attempt >= 20 || errno == EACCES || errno == EPERM || errno == ENOENT || errno == ENODEV) return -1;
    usleep(250000);
  }
}

static unsigned long parse_flags(const char *text) {
  unsigned long f = 0;
  char copy[256];
  snprintf(copy, sizeof copy, "%s", text);
  char *save = NULL;
  for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
    if (!strcmp(o, "ro")) f |= MS_RDONLY;
    else if (!strcmp(o, "nosuid")) f |= MS_NOSUID;
    else if (!strcmp(o, "nodev")) f |= MS_NODEV;
    else if (!strcmp(o, "noexec")) f |= MS_NOEXEC;
  }
  return f;
}

static int mount_one(vol_log_fn log, char *fstype, char *source, char *dest, char *flagstext, char *file, char *err, size_t errlen) {
  char line[1200];
  unsigned long flags = parse_flags(flagstext);
  int is_fs = !strcmp(fstype, VOLUME_FS_VIRTIOFS);
  if (strcmp(file, "-") != 0) {
    /* single file: share folder hidden, file bind-mounted onto DEST */
    char hidden[512], inner[1024];
    const char *hname = strrchr(source, '/') ? strrchr(source, '/') + 1 : source;
    snprintf(hidden, sizeof hidden, "%s/%s", PATH_VOLUMES, hname);
    mkdir_p(hidden, 0700);
    if (vol_mount(source, hidden, fstype, flags) != 0) {
      snprintf(err, errlen, "cannot mount %s volume %s (for %s): %s", fstype, source, dest, strerror(errno));
      return -1;
    }
    snprintf(inner, sizeof inner, "%s/%s", hidden, file);
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dest);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
      *slash = 0;
      mkdir_p(parent, 0755);
    }
    struct stat st;
    if (stat(dest, &st) != 0) {
      int fd = open(dest, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) close(fd);
    }
    if (mount(inner, dest, NULL, MS_BIND, NULL) != 0) {
      snprintf(err, errlen, "cannot bind the volume file %s onto %s: %s", inner, dest, strerror(errno));
      return -1;
    }
    if (flags && mount(NULL, dest, NULL, MS_BIND | MS_REMOUNT | flags, NULL) != 0) {
      snprintf(err, errlen, "cannot make the volume file %s %s: %s", dest, flagstext, strerror(errno));
      return -1;
    }
  } else {
    mkdir_p(dest, 0755);
    if (vol_mount(source, dest, fstype, flags) != 0) {
      /* nfs: the troubleshooting guide's words first, so its section 3 matches what the user sees */
      if (!strcmp(fstype, VOLUME_FS_NFS))
        snprintf(err, errlen, "\xe2\x9c\x97 Failed to mount %s via NFS: cannot mount %s (%s): %s", dest, source, flagstext, strerror(errno));
      else
        snprintf(err, errlen, "cannot mount %s %s on %s (%s): %s", is_fs ? "virtiofs volume" : fstype, source, dest, flagstext, strerror(errno));
      return -1;
    }
  }
  snprintf(line, sizeof line, "[runcvm-init] volume %s %s on %s (%s)", fstype, source, dest, flagstext);
  if (log) log(1, line);
  return 0;
}

int runcvm_vol_setup(char *const *lines, int n, int nfs_pass, vol_log_fn log, char *err, size_t errlen) {
  for (int i = 0; i < n; i++) {
    char buf[8192]; /* split a copy: each line is read by both passes */
    snprintf(buf, sizeof buf, "%s", lines[i]);
    char *fields[5] = {0};
    char *save = NULL;
    int nf = 0;
    for (char *t = strtok_r(buf, " ", &save); t && nf < 5; t = strtok_r(NULL, " ", &save)) fields[nf++] = t;
    if (nf != 5) {
      snprintf(err, errlen, "bad volume line in %s (%d fields)", PATH_CONFIG, nf);
      return -1;
    }
    for (int k = 0; k < 5; k++) pct_unescape(fields[k]);
    if (!strcmp(fields[0], VOLUME_FS_NFS) != !!nfs_pass) continue;
    if (mount_one(log, fields[0], fields[1], fields[2], fields[3], fields[4], err, errlen) != 0) return -1;
  }
  return 0;
}
