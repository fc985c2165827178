/*
 * runcvm guest volumes: mounts what src/runcvm/volumes/plan.ts volumeConfigLines() wrote into /.runcvm/config:
 *   volume=FSTYPE SOURCE DEST FLAGS FILE      (%-escaped fields, spaces as %20)
 *   FSTYPE  virtiofs | nfs | ext4 | ext3 | ext2  (nfs: SOURCE 169.254.1.254:/.runcvm/vols/<id>, mounted after the network)
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

#include "vol.h"

#define HIDDEN_DIR "/.runcvm/vols"
/* nfs transport (volumes/nfs.ts): the launcher's NFSv3 server on the identity IP; MOUNT v3 on the same port */
#define NFS_OPTS "vers=3,proto=tcp,port=2049,mountport=2049,mountproto=tcp,nolock,addr=169.254.1.254"

/* mount(2), retried for nfs (the route to the server may need a moment after the network came up) */
static int vol_mount(const char *source, const char *target, const char *fstype, unsigned long flags) {
  int is_nfs = fstype && !strcmp(fstype, "nfs");
  for (int attempt = 0;; attempt++) {
    if (mount(source, target, fstype, flags, is_nfs ? NFS_OPTS : NULL) == 0) return 0;
    if (!is_nfs || attempt >= 20 || errno == EACCES || errno == EPERM || errno == ENOENT || errno == ENODEV) return -1;
    usleep(250000);
  }
}

static void vol_unescape(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (p[0] == '%' && p[1] && p[2]) {
      char hex[3] = {p[1], p[2], 0};
      char *end = NULL;
      long v = strtol(hex, &end, 16);
      if (end && *end == 0) {
        *o++ = (char)v;
        p += 2;
        continue;
      }
    }
    *o++ = *p;
  }
  *o = 0;
}

static void vol_mkdir_p(const char *path, mode_t mode) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      mkdir(tmp, 0755);
      *p = '/';
    }
  }
  mkdir(tmp, mode);
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
  int is_fs = !strcmp(fstype, "virtiofs");
  if (strcmp(file, "-") != 0) {
    /* single file: share folder hidden, file bind-mounted onto DEST */
    char hidden[512], inner[1024];
    const char *hname = strrchr(source, '/') ? strrchr(source, '/') + 1 : source;
    snprintf(hidden, sizeof hidden, "%s/%s", HIDDEN_DIR, hname);
    vol_mkdir_p(hidden, 0700);
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
      vol_mkdir_p(parent, 0755);
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
    vol_mkdir_p(dest, 0755);
    if (vol_mount(source, dest, fstype, flags) != 0) {
      /* nfs: the troubleshooting guide's words first, so its section 3 matches what the user sees */
      if (!strcmp(fstype, "nfs"))
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

static int vol_setup_pass(vol_log_fn log, char *err, size_t errlen, int nfs_pass) {
  FILE *f = fopen("/.runcvm/config", "re");
  if (!f) return 0; /* init.c already failed on a missing config */
  char buf[8192];
  int rc = 0;
  while (rc == 0 && fgets(buf, sizeof buf, f)) {
    if (strncmp(buf, "volume=", 7) != 0) continue;
    buf[strcspn(buf, "\n")] = 0;
    char *fields[5] = {0};
    char *save = NULL;
    int n = 0;
    for (char *t = strtok_r(buf + 7, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save)) fields[n++] = t;
    if (n != 5) {
      snprintf(err, errlen, "bad volume line in /.runcvm/config (%d fields)", n);
      rc = -1;
      break;
    }
    for (int i = 0; i < 5; i++) vol_unescape(fields[i]);
    if (!strcmp(fields[0], "nfs") != !!nfs_pass) continue;
    rc = mount_one(log, fields[0], fields[1], fields[2], fields[3], fields[4], err, errlen);
  }
  fclose(f);
  return rc;
}

int runcvm_vol_setup(vol_log_fn log, char *err, size_t errlen) { return vol_setup_pass(log, err, errlen, 0); }

int runcvm_vol_setup_nfs(vol_log_fn log, char *err, size_t errlen) { return vol_setup_pass(log, err, errlen, 1); }
