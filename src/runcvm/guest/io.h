/* I/O helpers shared by the guest init, the exec agent and the exec client (each a separate static binary). */
#ifndef RUNCVM_GUEST_IO_H
#define RUNCVM_GUEST_IO_H
#include <stddef.h>

/* Write all of buf, retrying on EINTR and waiting on EAGAIN (non-blocking fds); 0 on success, -1 on error. */
int write_all(int fd, const void *buf, size_t len);

/* Open the virtio-serial port whose name (/sys/class/virtio-ports/vportNpM/name) is `name`: one scan, no retry;
 * the fd of /dev/vportNpM, or -1 when no such port exists (yet). */
int open_virtio_port(const char *name);

/* Connect AF_VSOCK to the host (CID 2) on `port`: one attempt, no retry. Under Firecracker the connection arrives on
 * the host at <vsock uds_path>_<port>. The socket fd, or -1 (no /dev/vsock, nobody listening yet, ...). */
int connect_vsock_host(unsigned port);

/* In a freshly forked child about to exec a command: start a new session, make the pty slave (when slave >= 0) the
 * controlling terminal and fds 0-2, or else put in/out/err on 0-2; close every other descriptor. */
void become_session_leader_with_stdio(int slave, int in_fd, int out_fd, int err_fd);

#endif
