/* runcvm guest volumes (vol.c, owner: volumes): called by init.c after its own mounts, before the workload. */
#ifndef RUNCVM_GUEST_VOL_H
#define RUNCVM_GUEST_VOL_H

#include <stddef.h>

typedef void (*vol_log_fn)(int is_debug, const char *line);

/* Mount the `volume=` values (lines, as config.c collected them, still %-escaped) in order: with nfs_pass 0 every
 * non-nfs one (virtiofs shares, RUNCVM_DISKS disks), with nfs_pass 1 the nfs ones (after the network is up).
 * 0 when done (or nothing to do), -1 on the first failure with a one-line reason in err. */
int runcvm_vol_setup(char *const *lines, int n, int nfs_pass, vol_log_fn log, char *err, size_t errlen);

#endif
