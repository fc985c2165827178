#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        poll(&pfd, 1, 100);
        continue;
      }
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int open_virtio_port(const char *wanted) {
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while (found < 0 && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[512], name[128] = "";
    snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, name, sizeof name - 1);
    close(fd);
    if (n <= 0) continue;
    name[n] = 0;
    if (name[n - 1] == '\n') name[n - 1] = 0;
    if (strcmp(name, wanted)) continue;
    snprintf(path, sizeof path, "/dev/%s", e->d_name);
    found = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
  }
  closedir(d);
  return found;
}

int connect_vsock_host(unsigned port) {
  /* no vsock device (QEMU here): fail at once instead of creating a socket that can never connect */
  if (access("/dev/vsock", F_OK) != 0) return -1;
  int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct sockaddr_vm addr;
  memset(&addr, 0, sizeof addr);
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_HOST;
  addr.svm_port = port;
  if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(s);
    return -1;
  }
  return s;
}

void become_session_leader_with_stdio(int slave, int in_fd, int out_fd, int err_fd) {
  setsid();
  if (slave >= 0) {
    ioctl(slave, TIOCSCTTY, 0);
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
  } else {
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
  }
  for (int fd = 3; fd < 1024; fd++) close(fd);
}
