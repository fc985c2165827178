#define _GNU_SOURCE
#include "io.h"
#include "util.h"

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

void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int frame_write(int fd, int type, int channel, uint16_t session, const void *payload, uint32_t len) {
  static unsigned char buf[FRAME_HEADER_BYTES + FRAME_MAX_PAYLOAD];
  if (fd < 0) return -1;
  if (len > FRAME_MAX_PAYLOAD) len = FRAME_MAX_PAYLOAD;
  buf[0] = (unsigned char)type;
  buf[1] = (unsigned char)channel;
  buf[2] = (unsigned char)(session >> 8);
  buf[3] = (unsigned char)session;
  buf[4] = (unsigned char)(len >> 24);
  buf[5] = (unsigned char)(len >> 16);
  buf[6] = (unsigned char)(len >> 8);
  buf[7] = (unsigned char)len;
  if (len) memcpy(buf + FRAME_HEADER_BYTES, payload, len);
  return write_all(fd, buf, FRAME_HEADER_BYTES + len);
}

static void drop_consumed(struct frame_reader *r) {
  if (!r->consumed) return;
  memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
  r->len -= r->consumed;
  r->consumed = 0;
}

ssize_t frame_read(struct frame_reader *r, int fd) {
  drop_consumed(r);
  ssize_t k = read(fd, r->buf + r->len, sizeof r->buf - r->len);
  if (k > 0) r->len += (size_t)k;
  return k;
}

int frame_next(struct frame_reader *r, struct frame *f) {
  drop_consumed(r);
  if (r->len < FRAME_HEADER_BYTES) return 0;
  const unsigned char *h = r->buf;
  uint32_t len = ((uint32_t)h[4] << 24) | ((uint32_t)h[5] << 16) | ((uint32_t)h[6] << 8) | h[7];
  f->len = len;
  if (len > FRAME_MAX_PAYLOAD) return -1;
  if (r->len < FRAME_HEADER_BYTES + len) return 0;
  f->type = h[0];
  f->channel = h[1];
  f->session = (uint16_t)((h[2] << 8) | h[3]);
  f->payload = r->buf + FRAME_HEADER_BYTES;
  r->consumed = FRAME_HEADER_BYTES + len;
  return 1;
}

int open_virtio_port(const char *wanted) {
  char dev[64], path[128];
  if (!sysfs_find("virtio-ports", "name", wanted, 0, dev, sizeof dev)) return -1;
  snprintf(path, sizeof path, "/dev/%s", dev);
  return open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
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

int send_fd(int sock, int fd) {
  char byte = 0;
  struct iovec iov = {&byte, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n == 1) return 0;
    if (n < 0 && errno == EINTR) continue;
    return -1;
  }
}

int recv_fd(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  for (;;) {
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    break;
  }
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      memcpy(&fd, CMSG_DATA(c), sizeof(int));
      return fd;
    }
  }
  return -1;
}
