/* Capabilities of a workload / exec process, applied the way runc (libcontainer 1.1) applies OCI
 * process.capabilities, so /proc/self/status reads the same in the VM as under runc. Shared by the guest init and
 * the exec agent. Sets come from `cap=<set> <n,n,...|->` lines (src/runcvm/launch/capabilities.ts). */
#ifndef RUNCVM_GUEST_CAPS_H
#define RUNCVM_GUEST_CAPS_H
#include <stddef.h>

struct runcvm_caps {
  int present; /* any cap= line seen: without one, the process keeps init's full set (launch specs from before) */
  unsigned long long bounding, effective, inheritable, permitted, ambient;
};

/* One `cap=` value ("bounding 0,1,21" or "ambient -"); unknown set names and numbers above 63 are ignored. */
void runcvm_caps_parse(struct runcvm_caps *c, const char *value);

/* Before the uid/gid change (still root): drop every capability outside the bounding set, then keep the permitted
 * set across setuid (PR_SET_KEEPCAPS). 0, or -1 with a message in err. No-op when !present. */
int runcvm_caps_before_user(const struct runcvm_caps *c, char *err, size_t errlen);

/* After the uid/gid change (and chdir): clear KEEPCAPS, capset effective/permitted/inheritable, set the ambient
 * set. 0, or -1 with a message in err. No-op when !present. */
int runcvm_caps_after_user(const struct runcvm_caps *c, char *err, size_t errlen);

#endif
