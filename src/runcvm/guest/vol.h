/* runcvm guest volumes (vol.c, owner: volumes): called by init.c after its own mounts, before the workload. */
#ifndef RUNCVM_GUEST_VOL_H
#define RUNCVM_GUEST_VOL_H

#include <stddef.h>

typedef void (*vol_log_fn)(int is_debug, const char *line);

/* mount the `volume=` entries of /.runcvm/config in order (virtiofs shares, RUNCVM_DISKS disks);
   0 when done (or nothing to do), -1 on the first failure with a one-line reason in err */
int runcvm_vol_setup(vol_log_fn log, char *err, size_t errlen);

/* the `volume=nfs` entries (skipped by runcvm_vol_setup): called after the network is up, before the workload */
int runcvm_vol_setup_nfs(vol_log_fn log, char *err, size_t errlen);

#endif
