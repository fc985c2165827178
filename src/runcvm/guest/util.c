#define _GNU_SOURCE
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void mkdir_p(const char *path, mode_t mode) {
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

void pct_unescape(char *s) {
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

char *read_file(const char *path, size_t *len, size_t spare) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 8192, n = 0;
  char *buf = malloc(cap + spare + 1);
  if (!buf) {
    close(fd);
    errno = ENOMEM;
    return NULL;
  }
  for (;;) {
    if (n == cap) {
      cap *= 2;
      char *grown = realloc(buf, cap + spare + 1);
      if (!grown) {
        free(buf);
        close(fd);
        errno = ENOMEM;
        return NULL;
      }
      buf = grown;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

int sysfs_find(const char *class_name, const char *attr, const char *want, int ignore_case, char *name, size_t namelen) {
  char dir[128];
  snprintf(dir, sizeof dir, "/sys/class/%s", class_name);
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int found = 0;
  while (!found && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[512], value[128] = "";
    snprintf(path, sizeof path, "%s/%s/%s", dir, e->d_name, attr);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, value, sizeof value - 1);
    close(fd);
    if (n <= 0) continue;
    value[n] = 0;
    if (value[n - 1] == '\n') value[n - 1] = 0;
    if ((ignore_case ? strcasecmp(value, want) : strcmp(value, want)) != 0) continue;
    snprintf(name, namelen, "%s", e->d_name);
    found = 1;
  }
  closedir(d);
  return found;
}

const char *passwd_home(uid_t uid, char *out, size_t outlen) {
  snprintf(out, outlen, "/");
  FILE *f = fopen("/etc/passwd", "re");
  if (!f) return out;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    char *fields[7] = {0};
    int n = 0;
    char *p = line;
    while (n < 7) {
      fields[n++] = p;
      char *c = strchr(p, ':');
      if (!c) break;
      *c = 0;
      p = c + 1;
    }
    if (n >= 6 && (uid_t)strtoul(fields[2], NULL, 10) == uid && fields[5][0]) {
      fields[5][strcspn(fields[5], "\n")] = 0;
      if (fields[5][0]) {
        snprintf(out, outlen, "%s", fields[5]);
        break;
      }
    }
  }
  fclose(f);
  return out;
}

void fix_stdio_owner(uid_t uid) {
  struct stat null_st, st;
  int have_null = stat("/dev/null", &null_st) == 0;
  for (int fd = 0; fd < 3; fd++) {
    if (fstat(fd, &st) != 0) continue;
    if (have_null && S_ISCHR(st.st_mode) && st.st_rdev == null_st.st_rdev) continue;
    /* EINVAL/EPERM (an id or owner this namespace cannot map) leave the fd as it is, as runc does */
    if (fchown(fd, uid, st.st_gid) != 0) continue;
  }
}

int write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  int e = errno;
  close(fd);
  if (n < 0) {
    errno = e;
    return -1;
  }
  if ((size_t)n != len) {
    errno = EIO;
    return -1;
  }
  return 0;
}
