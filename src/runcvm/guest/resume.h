/* The template resume hand-off inside the guest (issue 17): runcvm-resume (initramfs) writes the RESUME frame's mac
 * and net entries here, on the initramfs's devtmpfs, which /init moves into the new root as /dev; runcvm-init moves
 * the file to RESUME_NET_FILE once its own /run is mounted, before anything else reads /dev. Guest-internal: the
 * host never sees this path. */
#ifndef RUNCVM_GUEST_RESUME_H
#define RUNCVM_GUEST_RESUME_H
#define RESUME_HANDOFF_FILE "/dev/.runcvm-resume-net"
#endif
