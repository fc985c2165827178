/* The launch hand-off → struct guest_config. Written by src/runcvm/launch/guest-config.ts; keys and escaping in
 * contract.ts (contract.h). Parsing only: test/unit/runcvm/guest-contract.test.ts runs this file against what the
 * TypeScript renders. */
#define _GNU_SOURCE
#include "init.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_defaults(struct guest_config *c) {
  memset(c, 0, sizeof *c);
  c->umask = 022;
  snprintf(c->cwd, sizeof c->cwd, "/");
}

static void set_string(char *dst, size_t size, char *v) {
  pct_unescape(v);
  snprintf(dst, size, "%s", v);
}

void config_parse(char *text, struct guest_config *c) {
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *eq = strchr(line, '=');
    if (!eq) continue;
    *eq = 0;
    char *k = line, *v = eq + 1;
    if (!strcmp(k, KEY_ENV)) {
      pct_unescape(v);
      if (c->nenvs < MAX_ITEMS - 1) c->envs[c->nenvs++] = v;
    } else if (!strcmp(k, KEY_UID)) c->uid = (uid_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, KEY_GID)) c->gid = (gid_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, KEY_GROUPS)) {
      char *s2 = NULL;
      for (char *g = strtok_r(v, ",", &s2); g && c->ngroups < MAX_GROUPS; g = strtok_r(NULL, ",", &s2)) c->groups[c->ngroups++] = (gid_t)strtoul(g, NULL, 10);
    } else if (!strcmp(k, KEY_UMASK)) c->umask = (mode_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, KEY_CWD)) set_string(c->cwd, sizeof c->cwd, v);
    else if (!strcmp(k, KEY_HOSTNAME)) set_string(c->hostname, sizeof c->hostname, v);
    else if (!strcmp(k, KEY_TERMINAL)) c->terminal = atoi(v);
    else if (!strcmp(k, KEY_NONEWPRIVS)) c->nonewprivs = atoi(v);
    else if (!strcmp(k, KEY_LOGLEVEL)) c->debug = !strcmp(v, LOGLEVEL_DEBUG);
    else if (!strcmp(k, KEY_BREAK)) set_string(c->brk, sizeof c->brk, v);
    else if (!strcmp(k, KEY_CAP)) runcvm_caps_parse(&c->caps, v);
    else if (!strcmp(k, KEY_READONLY)) c->readonly = atoi(v);
    else if (!strcmp(k, KEY_READONLY_RUN)) c->readonly_run = atoi(v);
    else if (!strcmp(k, KEY_RLIMIT) && c->nrlimits < MAX_RLIMITS) {
      if (sscanf(v, "%d %llu %llu", &c->rlimits[c->nrlimits].res, &c->rlimits[c->nrlimits].soft, &c->rlimits[c->nrlimits].hard) == 3) c->nrlimits++;
    } else if (!strcmp(k, KEY_TMPFS) && c->ntmpfs < MAX_TMPFS) {
      char *sp = strchr(v, ' ');
      if (!sp) continue;
      *sp = 0;
      pct_unescape(v);
      pct_unescape(sp + 1);
      c->tmpfs[c->ntmpfs].dest = v;
      c->tmpfs[c->ntmpfs].opts = sp + 1;
      c->ntmpfs++;
    } else if (!strcmp(k, KEY_VOLUME) && c->nvolumes < MAX_VOLUMES) {
      c->volumes[c->nvolumes++] = v;
    }
  }
  c->envs[c->nenvs] = NULL;
}

void entrypoint_parse(char *text, struct guest_config *c) {
  /* one argument per line; empty arguments are kept (split by hand, strtok would drop them) */
  char *p = text;
  while (*p && c->nargs < MAX_ITEMS - 1) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = 0;
    pct_unescape(p);
    c->args[c->nargs++] = p;
    if (!nl) break;
    p = nl + 1;
  }
  c->args[c->nargs] = NULL;
}

int config_load(struct guest_config *c) {
  config_defaults(c);
  char *text = read_file(PATH_CONFIG, NULL, 0);
  if (!text) return -1;
  config_parse(text, c);
  char *ep = read_file(PATH_ENTRYPOINT, NULL, 0);
  if (ep) entrypoint_parse(ep, c);
  else c->args[0] = NULL;
  return 0;
}
