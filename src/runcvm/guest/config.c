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

/* Split v at spaces into at most n fields, each %-unescaped in place; the number of fields found. */
static int split_fields(char *v, char **out, int n) {
  int k = 0;
  char *save = NULL;
  for (char *f = strtok_r(v, " ", &save); f && k < n; f = strtok_r(NULL, " ", &save)) {
    pct_unescape(f);
    out[k++] = f;
  }
  return k;
}

static void parse_mount(char *v, struct guest_config *c) {
  char *f[6];
  if (c->nmounts >= MAX_MOUNTS || split_fields(v, f, 6) != 6) return;
  c->mounts[c->nmounts].type = f[0];
  c->mounts[c->nmounts].source = f[1];
  c->mounts[c->nmounts].dest = f[2];
  c->mounts[c->nmounts].flags = strtoul(f[3], NULL, 10);
  c->mounts[c->nmounts].data = strcmp(f[4], "-") ? f[4] : NULL;
  c->mounts[c->nmounts].ro_after = atoi(f[5]);
  c->nmounts++;
}

static void parse_device(char *v, struct guest_config *c) {
  char *f[7];
  if (c->ndevices >= MAX_DEVICES || split_fields(v, f, 7) != 7) return;
  c->devices[c->ndevices].path = f[0];
  c->devices[c->ndevices].type = f[1][0];
  c->devices[c->ndevices].major = (unsigned)strtoul(f[2], NULL, 10);
  c->devices[c->ndevices].minor = (unsigned)strtoul(f[3], NULL, 10);
  c->devices[c->ndevices].mode = (mode_t)strtoul(f[4], NULL, 10);
  c->devices[c->ndevices].uid = (uid_t)strtoul(f[5], NULL, 10);
  c->devices[c->ndevices].gid = (gid_t)strtoul(f[6], NULL, 10);
  c->ndevices++;
}

static void parse_sysctl(char *v, struct guest_config *c) {
  char *f[2];
  if (c->nsysctls >= MAX_SYSCTLS) return;
  int n = split_fields(v, f, 2);
  if (n < 1) return;
  c->sysctls[c->nsysctls].key = f[0];
  c->sysctls[c->nsysctls].value = n == 2 ? f[1] : (char *)"";
  c->nsysctls++;
}

static void parse_idmap(const char *v, struct guest_config *c, int uid) {
  int *n = uid ? &c->nuidmaps : &c->ngidmaps;
  if (*n >= MAX_IDMAPS) return;
  unsigned long in, out, size;
  if (sscanf(v, "%lu %lu %lu", &in, &out, &size) != 3) return;
  if (uid) {
    c->uidmaps[*n].inner = in; c->uidmaps[*n].outer = out; c->uidmaps[*n].size = size;
  } else {
    c->gidmaps[*n].inner = in; c->gidmaps[*n].outer = out; c->gidmaps[*n].size = size;
  }
  (*n)++;
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
    } else if (!strcmp(k, KEY_MOUNT)) parse_mount(v, c);
    else if (!strcmp(k, KEY_DEVICE)) parse_device(v, c);
    else if (!strcmp(k, KEY_SYSCTL)) parse_sysctl(v, c);
    else if (!strcmp(k, KEY_MASKED_PATH) && c->nmasked_paths < MAX_PATHS) {
      pct_unescape(v);
      c->masked_paths[c->nmasked_paths++] = v;
    } else if (!strcmp(k, KEY_READONLY_PATH) && c->nreadonly_paths < MAX_PATHS) {
      pct_unescape(v);
      c->readonly_paths[c->nreadonly_paths++] = v;
    } else if (!strcmp(k, KEY_OOM_SCORE_ADJ)) {
      c->has_oom_score_adj = 1;
      c->oom_score_adj = atoi(v);
    } else if (!strcmp(k, KEY_SECCOMP)) c->seccomp_hex = v;
    else if (!strcmp(k, KEY_SECCOMP_FLAGS)) c->seccomp_flags = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(k, KEY_UIDMAP)) parse_idmap(v, c, 1);
    else if (!strcmp(k, KEY_GIDMAP)) parse_idmap(v, c, 0);
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
