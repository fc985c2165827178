#define _GNU_SOURCE
#include "exec-request.h"
#include "contract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int exec_request_parse(char *p, size_t len, struct exec_request *r) {
  memset(r, 0, sizeof *r);
  r->cwd = "/";
  char *end = p + len;
  while (p < end) {
    char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) return -1;
    char *eq = strchr(p, '=');
    if (eq) {
      *eq = 0;
      char *v = eq + 1;
      if (!strcmp(p, EXEC_KEY_ARG)) { if (r->nargs < EXEC_MAX_ITEMS - 1) r->args[r->nargs++] = v; }
      else if (!strcmp(p, EXEC_KEY_ENV)) { if (r->nenvs < EXEC_MAX_ITEMS - 1) r->envs[r->nenvs++] = v; }
      else if (!strcmp(p, EXEC_KEY_UID)) r->uid = (uid_t)strtoul(v, NULL, 10);
      else if (!strcmp(p, EXEC_KEY_GID)) r->gid = (gid_t)strtoul(v, NULL, 10);
      else if (!strcmp(p, EXEC_KEY_CWD)) r->cwd = v;
      else if (!strcmp(p, EXEC_KEY_TTY)) r->tty = atoi(v);
      else if (!strcmp(p, EXEC_KEY_NONEWPRIVS)) r->nonewprivs = atoi(v);
      else if (!strcmp(p, EXEC_KEY_ROWS)) r->rows = (unsigned)strtoul(v, NULL, 10);
      else if (!strcmp(p, EXEC_KEY_COLS)) r->cols = (unsigned)strtoul(v, NULL, 10);
      else if (!strcmp(p, EXEC_KEY_CAP)) runcvm_caps_parse(&r->caps, v);
      else if (!strcmp(p, EXEC_KEY_RLIMIT) && r->nrlimits < EXEC_MAX_RLIMITS) {
        if (sscanf(v, "%d %llu %llu", &r->rlimits[r->nrlimits].res, &r->rlimits[r->nrlimits].soft, &r->rlimits[r->nrlimits].hard) == 3) r->nrlimits++;
      }
      else if (!strcmp(p, EXEC_KEY_GROUPS)) {
        char *save = NULL;
        for (char *g = strtok_r(v, ",", &save); g && r->ngroups < EXEC_MAX_GROUPS; g = strtok_r(NULL, ",", &save)) r->groups[r->ngroups++] = (gid_t)strtoul(g, NULL, 10);
      }
    }
    p = z + 1;
  }
  r->args[r->nargs] = NULL;
  r->envs[r->nenvs] = NULL;
  return r->nargs > 0 ? 0 : -1;
}
