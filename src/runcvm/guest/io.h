/* The channel helpers shared by the guest init, the exec agent and the exec client (each a separate static binary):
 * frames (layout and types in contract.h), the virtio-serial / vsock ports, a child's stdio. */
#ifndef RUNCVM_GUEST_IO_H
#define RUNCVM_GUEST_IO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "contract.h"

/* Write all of buf, retrying on EINTR and waiting on EAGAIN (non-blocking fds); 0 on success, -1 on error. */
int write_all(int fd, const void *buf, size_t len);

void set_nonblock(int fd);

/* One frame, header and payload in one write (a port sees whole frames in order); a payload longer than
 * FRAME_MAX_PAYLOAD is cut there. 0, or -1 when the write failed. */
int frame_write(int fd, int type, int channel, uint16_t session, const void *payload, uint32_t len);

struct frame {
  int type, channel;
  uint16_t session;
  uint32_t len;
  unsigned char *payload; /* inside the reader's buffer: valid until the next frame_read / frame_next */
};

/* Reassembles frames from a byte stream. A complete frame always fits in the buffer. Zero-initialise it. */
struct frame_reader {
  unsigned char buf[FRAME_HEADER_BYTES + FRAME_MAX_PAYLOAD];
  size_t len, consumed;
};

/* One read(2) from fd into the reader: its return value (0 = end of stream or nothing to read on a port). */
ssize_t frame_read(struct frame_reader *r, int fd);

/* The next whole frame: 1 (in *f), 0 when more bytes are needed, -1 when the peer announced a payload longer than
 * FRAME_MAX_PAYLOAD (f->len holds it; the stream cannot be resynchronised). */
int frame_next(struct frame_reader *r, struct frame *f);

/* Open the virtio-serial port whose name (/sys/class/virtio-ports/vportNpM/name) is `name`: one scan, no retry;
 * the fd of /dev/vportNpM, or -1 when no such port exists (yet). */
int open_virtio_port(const char *name);

/* Connect AF_VSOCK to the host (CID 2) on `port`: one attempt, no retry. Under Firecracker the connection arrives on
 * the host at <vsock uds_path>_<port>. The socket fd, or -1 (no /dev/vsock, nobody listening yet, ...). */
int connect_vsock_host(unsigned port);

/* In a freshly forked child about to exec a command: start a new session, make the pty slave (when slave >= 0) the
 * controlling terminal and fds 0-2, or else put in/out/err on 0-2; close every other descriptor. */
void become_session_leader_with_stdio(int slave, int in_fd, int out_fd, int err_fd);

/* One descriptor over a unix socket (SCM_RIGHTS), with one byte of data: 0 / the fd, or -1 (recv: also when the
 * peer closed without sending one). */
int send_fd(int sock, int fd);
int recv_fd(int sock);

#endif
