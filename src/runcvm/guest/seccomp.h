/* The workload's seccomp filter in the guest: a BPF program compiled on the host from the OCI profile
 * (src/runcvm/seccomp) and handed over as hex (contract.h KEY_SECCOMP). Loading it is all the guest does, in the
 * workload (workload.c) and in every exec (agent.c), at runc's point: just before exec with no_new_privs, else
 * before the user change (a filter without no_new_privs needs CAP_SYS_ADMIN). Shared by runcvm-init and
 * runcvm-agent; no state, no logging. */
#ifndef RUNCVM_GUEST_SECCOMP_H
#define RUNCVM_GUEST_SECCOMP_H
#include <linux/filter.h>
#include <stddef.h>

/* hex (16 digits per instruction: the struct sock_filter bytes in memory order) → prog (filter malloc'd). 0, or -1
 * with a reason in err when the text is not a whole number of instructions or longer than BPF_MAXINSNS. */
int seccomp_decode(const char *hex, struct sock_fprog *prog, char *err, size_t errlen);

/* seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). 0, or -1 with errno. */
int seccomp_load(const struct sock_fprog *prog, unsigned flags);

#endif
