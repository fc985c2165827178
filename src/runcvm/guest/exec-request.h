/* The exec agent's OPEN payload (written by src/runcvm/agent/exec.ts encodeOpenRequest): NUL-terminated
 * `key=value` entries, keys in contract.h EXEC_KEY_*. Parsing only: test/unit/runcvm/guest-contract.test.ts runs it
 * against what the TypeScript encodes. */
#ifndef RUNCVM_GUEST_EXEC_REQUEST_H
#define RUNCVM_GUEST_EXEC_REQUEST_H
#include <stddef.h>
#include <sys/types.h>

#include "caps.h"

#define EXEC_MAX_ITEMS 4096
#define EXEC_MAX_GROUPS 256
#define EXEC_MAX_RLIMITS 32

struct exec_request {
  uid_t uid;
  gid_t gid;
  gid_t groups[EXEC_MAX_GROUPS];
  int ngroups;
  char *cwd;
  int tty;
  int nonewprivs;
  unsigned rows, cols;
  char *args[EXEC_MAX_ITEMS]; /* NULL-terminated */
  int nargs;
  char *envs[EXEC_MAX_ITEMS + 1]; /* NULL-terminated, with room for HOME */
  int nenvs;
  struct runcvm_caps caps; /* cap= entries; none: the command keeps the agent's (root's) set */
  struct { int res; unsigned long long soft, hard; } rlimits[EXEC_MAX_RLIMITS]; /* rlimit= entries, in order */
  int nrlimits;
};

/* Parse in place (strings point into p). 0, or -1 when an entry is not NUL-terminated or there is no argument. */
int exec_request_parse(char *p, size_t len, struct exec_request *r);

#endif
