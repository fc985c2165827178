/*
 * `runcvm-runtime exec` for a VM container without Node (the host side of the exec client, `runcvm-exec --runtime`).
 * bin/runcvm-runtime sends `exec` of a runcvm container here; this does what src/runcvm/exec/main.ts does on its
 * common path, in C, and execs runc:
 *   runc's exec flags → the container's state folder (RUNCVM_STATE_DIR/<id>, else the source of the /.runcvm/state
 *   mount in runc's record) → running (runc's own test: the init pid alive with the recorded start time, cgroup not
 *   frozen) and the launcher's exec socket open → the original process (--process FILE, or runc's flag rules over
 *   the process in launch.json) → the request for the guest (exec-<rid>.req, the OPEN payload of agent/exec.ts) and
 *   the client process for runc (exec-<rid>.process.json: the original with args = runcvm-exec <rid>, root, cwd /)
 *   → `runc exec [how flags] --process FILE ID`, whose exit status is returned.
 * Anything else — a flag runc would reject, a state that is not plainly "running", an unreadable file, a refusal
 * with a message (stopped, paused, --preserve-fds, a missing state folder), a socket not open yet — goes to the Node
 * implementation (argv[2] = node, argv[3] = its entry) with the same arguments, which waits, explains or refuses
 * exactly as before. test/unit/runcvm/exec/prep.test.ts holds this file to the TypeScript rewrite.
 */
#define _GNU_SOURCE
#include "contract.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LIST 4096

static char **node_argv; /* the fallback: node, entry, then the runtime's arguments */

/* Hand the whole call to the Node implementation (nothing has been written yet, or it was removed). */
static int fallback(void) {
  execvp(node_argv[0], node_argv);
  dprintf(2, "runcvm: error: cannot start %s for exec: %s\nruncvm: fix: set RUNCVM_NODE to a Node.js 20 binary\n", node_argv[0], strerror(errno));
  return 255;
}

struct strs {
  const char *v[MAX_LIST];
  int n;
};

static int push(struct strs *s, const char *v) {
  if (s->n >= MAX_LIST - 1) return -1;
  s->v[s->n++] = v;
  s->v[s->n] = NULL;
  return 0;
}

struct exec_args {
  const char *id, *process, *pid_file, *console_socket, *cwd, *user, *process_label, *apparmor, *cgroup;
  int detach, tty, no_new_privs, ignore_paused, preserve_fds;
  struct strs env, caps, gids, command;
};

static int parse_bool(const char *v, int *out) {
  if (!strcmp(v, "true") || !strcmp(v, "1")) return *out = 1, 0;
  if (!strcmp(v, "false") || !strcmp(v, "0")) return *out = 0, 0;
  return -1;
}

static int all_digits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* src/runcvm/exec/args.ts parseExecArgs; -1 where it throws (runc then speaks for itself, through Node) */
static int parse_exec_args(int argc, char **argv, struct exec_args *a) {
  static const char *value_flags[][2] = {
    {"--process", "p"}, {"-p", "p"}, {"--pid-file", "P"}, {"--console-socket", "s"}, {"--cwd", "w"}, {"--env", "e"},
    {"-e", "e"}, {"--user", "u"}, {"-u", "u"}, {"--additional-gids", "g"}, {"-g", "g"}, {"--cap", "c"}, {"-c", "c"},
    {"--process-label", "l"}, {"--apparmor", "a"}, {"--preserve-fds", "f"}, {"--cgroup", "C"},
  };
  static const char *bool_flags[][2] = {
    {"--detach", "d"}, {"-d", "d"}, {"--tty", "t"}, {"-t", "t"}, {"--no-new-privs", "n"}, {"--ignore-paused", "i"},
  };
  int i = 0;
  for (; i < argc; i++) {
    char *arg = argv[i];
    if (!strcmp(arg, "--")) { i++; break; }
    if (arg[0] != '-' || !strcmp(arg, "-")) break;
    char name[64];
    const char *eq = strchr(arg, '=');
    size_t nl = eq ? (size_t)(eq - arg) : strlen(arg);
    if (nl >= sizeof name) return -1;
    memcpy(name, arg, nl);
    name[nl] = 0;
    const char *key = NULL;
    for (size_t k = 0; k < sizeof value_flags / sizeof value_flags[0]; k++)
      if (!strcmp(name, value_flags[k][0])) key = value_flags[k][1];
    if (key) {
      const char *v;
      if (eq) v = eq + 1;
      else if (i + 1 < argc) v = argv[++i];
      else return -1;
      switch (*key) {
        case 'p': a->process = v; break;
        case 'P': a->pid_file = v; break;
        case 's': a->console_socket = v; break;
        case 'w': a->cwd = v; break;
        case 'e': if (push(&a->env, v)) return -1; break;
        case 'u': a->user = v; break;
        case 'g': if (!all_digits(v) || strlen(v) > 15 || push(&a->gids, v)) return -1; break;
        case 'c': if (push(&a->caps, v)) return -1; break;
        case 'l': a->process_label = v; break;
        case 'a': a->apparmor = v; break;
        case 'f': if (!all_digits(v) || strlen(v) > 9) return -1; a->preserve_fds = atoi(v); break;
        case 'C': a->cgroup = v; break;
      }
      continue;
    }
    for (size_t k = 0; k < sizeof bool_flags / sizeof bool_flags[0]; k++)
      if (!strcmp(name, bool_flags[k][0])) key = bool_flags[k][1];
    if (!key) return -1;
    int b = 1;
    if (eq && parse_bool(eq + 1, &b)) return -1;
    switch (*key) {
      case 'd': a->detach = b; break;
      case 't': a->tty = b; break;
      case 'n': a->no_new_privs = b; break;
      case 'i': a->ignore_paused = b; break;
    }
  }
  if (i >= argc) return -1;
  a->id = argv[i++];
  for (; i < argc; i++)
    if (push(&a->command, argv[i])) return -1;
  /* the id: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most 1024 */
  size_t idl = strlen(a->id);
  if (!idl || idl > 1024) return -1;
  for (size_t k = 0; k < idl; k++) {
    char c = a->id[k];
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (k == 0 || !strchr("_.+-", c))) return -1;
  }
  if (!a->process && a->command.n == 0) return -1;
  return 0;
}

static struct json *read_json(const char *path) {
  size_t len;
  char *text = read_file(path, &len, 1);
  return text ? json_parse(text, len) : NULL;
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* runc's record says the container is running: its init (pid + start time in clock ticks, field 22 of
 * /proc/PID/stat) is alive and its freezer cgroup is not frozen. Anything unclear: not running (Node decides). */
static int runc_says_running(const struct json *state) {
  const struct json *pid = json_get(state, "init_process_pid"), *start = json_get(state, "init_process_start");
  if (!pid || pid->type != J_NUM || !start || start->type != J_NUM || pid->num <= 0) return 0;
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid->num);
  size_t len;
  char *stat = read_file(path, &len, 1);
  if (!stat) return 0;
  char *p = strrchr(stat, ')'); /* the command name may hold spaces and parentheses */
  if (!p || !p[1] || !p[2]) return 0;
  if (p[2] == 'Z' || p[2] == 'X') return 0; /* field 3: the state */
  /* field 22 (starttime) is 19 spaces after field 3 */
  p += 2;
  for (int field = 3; field < 22 && p; field++) p = strchr(p + 1, ' ');
  if (!p || strtoull(p + 1, NULL, 10) != (unsigned long long)start->num) return 0;
  const struct json *cg = json_get(state, "cgroup_paths");
  const struct json *freezer = json_get(cg, "freezer");
  if (freezer && freezer->type == J_STR) {
    char f[4200];
    snprintf(f, sizeof f, "%s/freezer.state", freezer->str);
    char *s = read_file(f, &len, 1);
    if (s && strncmp(s, "THAWED", 6) != 0) return 0;
  }
  const struct json *unified = json_get(cg, "");
  if (unified && unified->type == J_STR) {
    char f[4200];
    snprintf(f, sizeof f, "%s/cgroup.freeze", unified->str);
    char *s = read_file(f, &len, 1);
    if (s && s[0] != '0') return 0;
  }
  return 1;
}

/* the folder runc's record names as the source of the /.runcvm/state mount, or NULL */
static const char *recorded_state_dir(const struct json *state) {
  const struct json *mounts = json_get(json_get(state, "config"), "mounts");
  if (!mounts || mounts->type != J_ARR) return NULL;
  for (const struct json *m = mounts->child; m; m = m->next) {
    const struct json *d = json_get(m, "destination"), *s = json_get(m, "source");
    if (d && d->type == J_STR && !strcmp(d->str, PATH_EXEC_STATE) && s && s->type == J_STR && s->str[0] == '/') return s->str;
  }
  return NULL;
}

/* strings of a JSON array into a list; -1 if it is not an array of strings */
static int string_list(const struct json *arr, struct strs *out) {
  if (!arr) return 0;
  if (arr->type != J_ARR) return -1;
  for (const struct json *e = arr->child; e; e = e->next)
    if (e->type != J_STR || push(out, e->str)) return -1;
  return 0;
}

static size_t key_len(const char *entry) {
  const char *eq = strchr(entry, '=');
  return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* exec/rewrite.ts mergeEnv: later entries win, in the order keys first appeared */
static void merge_env(const struct strs *in, struct strs *out) {
  for (int i = 0; i < in->n; i++) {
    size_t kl = key_len(in->v[i]);
    int found = -1;
    for (int j = 0; j < out->n; j++)
      if (key_len(out->v[j]) == kl && !strncmp(out->v[j], in->v[i], kl)) found = j;
    if (found >= 0) out->v[found] = in->v[i];
    else push(out, in->v[i]);
  }
}

static const char *const CAP_NAMES[] = CAPABILITY_NAMES;
static const char *const CAP_SETS[] = {"bounding", "effective", "inheritable", "permitted", "ambient"};

/* launch/capabilities.ts capabilitiesFromSpec + capabilityNumbers: known names → a bit mask per set */
static void cap_masks(const struct strs sets[5], unsigned long long masks[5]) {
  for (int s = 0; s < 5; s++) {
    masks[s] = 0;
    for (int i = 0; i < sets[s].n; i++)
      for (int c = 0; c < CAPABILITY_COUNT; c++)
        if (!strcmp(sets[s].v[i], CAP_NAMES[c])) masks[s] |= 1ULL << c;
  }
}

#define MAX_RLIMITS 32

struct original {
  struct strs args, env, gids, caps[5];
  /* process.rlimits of a known type (the guest contract's RLIMIT_NAMES), in order */
  struct { int res; unsigned long long soft, hard; } rlimits[MAX_RLIMITS];
  int nrlimits;
  const char *cwd;
  unsigned long uid, gid;
  int terminal, has_caps, no_new_privs;
  unsigned rows, cols;
  const char *apparmor, *selinux;
};

static int number(const struct json *v, unsigned long *out) {
  if (!v) return 0;
  if (v->type != J_NUM || v->num < 0 || v->num > 4294967295.0 || v->num != (double)(unsigned long)v->num) return -1;
  *out = (unsigned long)v->num;
  return 0;
}

static int read_caps(const struct json *caps, struct original *o) {
  if (!caps || caps->type == J_NULL) return 0;
  if (caps->type != J_OBJ) return -1;
  o->has_caps = 1;
  for (int s = 0; s < 5; s++)
    if (string_list(json_get(caps, CAP_SETS[s]), &o->caps[s])) return -1;
  return 0;
}

/* a JSON integer from its text (a double would round it), clamped to 2^64-1 (RLIM_INFINITY): JavaScript writes
 * that as 18446744073709552000 */
static int u64(const struct json *v, unsigned long long *out) {
  if (!v || v->type != J_NUM || v->raw_len == 0 || v->raw_len > 20) return -1;
  char txt[24];
  memcpy(txt, v->raw, v->raw_len);
  txt[v->raw_len] = 0;
  if (!all_digits(txt)) return -1;
  *out = strtoull(txt, NULL, 10); /* ERANGE: ULLONG_MAX */
  return 0;
}

/* process.rlimits: a type the guest does not know is left out (agent/exec.ts encodeOpenRequest does the same) */
static int read_rlimits(const struct json *arr, struct original *o) {
  static const char *const names[] = RLIMIT_NAMES;
  if (!arr || arr->type == J_NULL) return 0;
  if (arr->type != J_ARR) return -1;
  for (const struct json *e = arr->child; e; e = e->next) {
    if (e->type != J_OBJ) return -1;
    const struct json *type = json_get(e, "type");
    if (!type || type->type != J_STR) return -1;
    unsigned long long soft, hard;
    if (u64(json_get(e, "soft"), &soft) || u64(json_get(e, "hard"), &hard)) return -1;
    for (int r = 0; r < RLIMIT_COUNT; r++) {
      if (strcmp(type->str, names[r]) || o->nrlimits >= MAX_RLIMITS) continue;
      o->rlimits[o->nrlimits].res = r;
      o->rlimits[o->nrlimits].soft = soft;
      o->rlimits[o->nrlimits].hard = hard;
      o->nrlimits++;
    }
  }
  return 0;
}

/* the fields of an OCI process (the --process file, or launch.json's process) the request needs */
static int read_process(const struct json *p, struct original *o) {
  if (!p || p->type != J_OBJ) return -1;
  const struct json *args = json_get(p, "args");
  if (!args || string_list(args, &o->args) || string_list(json_get(p, "env"), &o->env)) return -1;
  const struct json *cwd = json_get(p, "cwd"), *user = json_get(p, "user"), *term = json_get(p, "terminal");
  o->cwd = cwd && cwd->type == J_STR && cwd->str[0] ? cwd->str : "/";
  if (user && user->type == J_OBJ) {
    if (number(json_get(user, "uid"), &o->uid) || number(json_get(user, "gid"), &o->gid)) return -1;
    const struct json *g = json_get(user, "additionalGids");
    if (g) {
      if (g->type != J_ARR) return -1;
      for (const struct json *e = g->child; e; e = e->next) {
        unsigned long n;
        char *txt = malloc(24);
        if (!txt || number(e, &n) || e->type != J_NUM) return -1;
        snprintf(txt, 24, "%lu", n);
        if (push(&o->gids, txt)) return -1;
      }
    }
  }
  o->terminal = term && term->type == J_BOOL && term->boolean;
  const struct json *nnp = json_get(p, "noNewPrivileges");
  o->no_new_privs = nnp && nnp->type == J_BOOL && nnp->boolean;
  const struct json *size = json_get(p, "consoleSize");
  if (size && size->type == J_OBJ) {
    unsigned long h = 0, w = 0;
    if (number(json_get(size, "height"), &h) || number(json_get(size, "width"), &w)) return -1;
    o->rows = (unsigned)h;
    o->cols = (unsigned)w;
  }
  if (read_rlimits(json_get(p, "rlimits"), o)) return -1;
  return read_caps(json_get(p, "capabilities"), o);
}

/* exec/rewrite.ts processFromFlags: the container's original process (launch.json), then the flags */
static int from_flags(const struct json *base, const struct exec_args *a, struct original *o) {
  struct original b = {0};
  if (read_process(base, &b)) return -1;
  *o = b;
  o->args = a->command;
  /* mergeEnv(base.env, --env): later entries win */
  struct strs both = {0};
  for (int i = 0; i < b.env.n; i++) push(&both, b.env.v[i]);
  for (int i = 0; i < a->env.n; i++) push(&both, a->env.v[i]);
  o->env.n = 0;
  merge_env(&both, &o->env);
  if (a->cwd) o->cwd = a->cwd;
  if (a->user) {
    /* runc accepts only UID[:GID] as numbers here */
    char *colon = strchr(a->user, ':');
    char uid[32] = "";
    size_t ul = colon ? (size_t)(colon - a->user) : strlen(a->user);
    if (ul == 0 || ul >= sizeof uid) return -1;
    memcpy(uid, a->user, ul);
    if (!all_digits(uid) || (colon && !all_digits(colon + 1))) return -1;
    o->uid = strtoul(uid, NULL, 10);
    if (colon) o->gid = strtoul(colon + 1, NULL, 10);
  }
  if (a->gids.n) o->gids = a->gids;
  o->terminal = a->tty;
  o->no_new_privs = a->no_new_privs || b.no_new_privs;
  o->rows = o->cols = 0;
  if (b.has_caps || a->caps.n) {
    /* runc 1.1 `exec --cap X`: X joins bounding, effective, permitted and ambient (not inheritable) */
    o->has_caps = 1;
    for (int s = 0; s < 5; s++) {
      if (s == 2) continue;
      for (int i = 0; i < a->caps.n; i++) push(&o->caps[s], a->caps.v[i]);
    }
  }
  o->apparmor = a->apparmor;
  o->selinux = a->process_label;
  return 0;
}

/* one `key=value` entry with its NUL terminator */
static void put_entry(struct sbuf *b, const char *key, const char *value) {
  sb_puts(b, key);
  sb_putn(b, "=", 1);
  sb_puts(b, value);
  sb_putn(b, "", 1); /* copies the terminating NUL of "" */
}

/* agent/exec.ts encodeOpenRequest(rewriteExecProcess(original).request) */
static int request_payload(const struct original *o, struct sbuf *b) {
  char num[32];
  struct strs env = {0};
  merge_env(&o->env, &env);
  snprintf(num, sizeof num, "%lu", o->uid);
  put_entry(b, EXEC_KEY_UID, num);
  snprintf(num, sizeof num, "%lu", o->gid);
  put_entry(b, EXEC_KEY_GID, num);
  struct sbuf g = {0};
  sb_puts(&g, "");
  for (int i = 0; i < o->gids.n; i++) {
    if (i) sb_putn(&g, ",", 1);
    sb_puts(&g, o->gids.v[i]);
  }
  put_entry(b, EXEC_KEY_GROUPS, g.p);
  put_entry(b, EXEC_KEY_CWD, o->cwd);
  put_entry(b, EXEC_KEY_TTY, o->terminal ? "1" : "0");
  if (o->terminal && o->rows && o->cols) {
    snprintf(num, sizeof num, "%u", o->rows);
    put_entry(b, EXEC_KEY_ROWS, num);
    snprintf(num, sizeof num, "%u", o->cols);
    put_entry(b, EXEC_KEY_COLS, num);
  }
  /* runc sets no_new_privs for the exec as the process asks; the agent orders the seccomp load by it */
  if (o->no_new_privs) put_entry(b, EXEC_KEY_NONEWPRIVS, "1");
  /* the five sets always travel (none in the process: five empty sets, as runc 1.1) */
  unsigned long long masks[5];
  cap_masks(o->caps, masks);
  for (int s = 0; s < 5; s++) {
    struct sbuf c = {0};
    sb_puts(&c, CAP_SETS[s]);
    sb_putn(&c, " ", 1);
    int any = 0;
    for (int n = 0; n < CAPABILITY_COUNT; n++) {
      if (!(masks[s] & (1ULL << n))) continue;
      snprintf(num, sizeof num, any ? ",%d" : "%d", n);
      sb_puts(&c, num);
      any = 1;
    }
    if (!any) sb_putn(&c, "-", 1);
    put_entry(b, EXEC_KEY_CAP, c.p);
  }
  for (int i = 0; i < o->nrlimits; i++) {
    char lim[80];
    snprintf(lim, sizeof lim, "%d %llu %llu", o->rlimits[i].res, o->rlimits[i].soft, o->rlimits[i].hard);
    put_entry(b, EXEC_KEY_RLIMIT, lim);
  }
  if (o->args.n == 0) return -1;
  for (int i = 0; i < o->args.n; i++) put_entry(b, EXEC_KEY_ARG, o->args.v[i]);
  for (int i = 0; i < env.n; i++) put_entry(b, EXEC_KEY_ENV, env.v[i]);
  return b->len > FRAME_MAX_PAYLOAD ? -1 : 0;
}

static void json_strs(struct sbuf *b, const struct strs *s) {
  sb_putn(b, "[", 1);
  for (int i = 0; i < s->n; i++) {
    if (i) sb_putn(b, ",", 1);
    sb_json_str(b, s->v[i]);
  }
  sb_putn(b, "]", 1);
}

/* The client's part of the process runc gets: args = runcvm-exec <rid>, the client env, root in /. */
static void client_fields(struct sbuf *b, const char *rid, int terminal) {
  static const char *const client_env[] = EXEC_CLIENT_ENV;
  struct strs args = {0}, env = {0};
  push(&args, PATH_EXEC_CLIENT);
  push(&args, rid);
  for (size_t i = 0; i < sizeof client_env / sizeof client_env[0]; i++) push(&env, client_env[i]);
  sb_puts(b, "\"args\":");
  json_strs(b, &args);
  sb_puts(b, ",\"env\":");
  json_strs(b, &env);
  sb_puts(b, ",\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},\"terminal\":");
  sb_puts(b, terminal ? "true" : "false");
}

/* rewriteExecProcess().process for a --process file: every member kept as the engine wrote it but the ones replaced */
static void client_process_from_file(const struct json *p, const char *rid, int terminal, struct sbuf *b) {
  /* rlimits: the command's, set by the agent in the guest; the client in the launcher container keeps runcvm's own */
  static const char *const replaced[] = {"args", "env", "cwd", "user", "terminal", "commandLine", "rlimits"};
  sb_putn(b, "{", 1);
  for (const struct json *m = p->child; m; m = m->next) {
    int skip = 0;
    for (size_t i = 0; i < sizeof replaced / sizeof replaced[0]; i++) skip |= !strcmp(m->key, replaced[i]);
    if (skip) continue;
    sb_json_str(b, m->key);
    sb_putn(b, ":", 1);
    sb_putn(b, m->raw, m->raw_len);
    sb_putn(b, ",", 1);
  }
  client_fields(b, rid, terminal);
  sb_putn(b, "}", 1);
}

/* rewriteExecProcess().process for the flag form: what processFromFlags built, with the client's fields */
static void client_process_from_flags(const struct original *o, const char *rid, struct sbuf *b) {
  sb_putn(b, "{", 1);
  client_fields(b, rid, o->terminal);
  sb_puts(b, ",\"noNewPrivileges\":");
  sb_puts(b, o->no_new_privs ? "true" : "false");
  if (o->has_caps) {
    sb_puts(b, ",\"capabilities\":{");
    for (int s = 0; s < 5; s++) {
      if (s) sb_putn(b, ",", 1);
      sb_json_str(b, CAP_SETS[s]);
      sb_putn(b, ":", 1);
      json_strs(b, &o->caps[s]);
    }
    sb_putn(b, "}", 1);
  }
  if (o->apparmor) { sb_puts(b, ",\"apparmorProfile\":"); sb_json_str(b, o->apparmor); }
  if (o->selinux) { sb_puts(b, ",\"selinuxLabel\":"); sb_json_str(b, o->selinux); }
  sb_putn(b, "}", 1);
}

/* 0600, complete or absent (temp file + rename, as core/fsx atomicWrite); owner: the state folder's owner when it
 * is not ours (a user namespace's root runs the launcher and its exec client: bundle/transforms/launcher-root.ts),
 * NULL to keep ours */
static int write_private(const char *path, const char *data, size_t len, const struct stat *owner) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (owner && (owner->st_uid != geteuid() || owner->st_gid != getegid()) && fchown(fd, owner->st_uid, owner->st_gid) != 0) {
    close(fd);
    unlink(tmp);
    return -1;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t k = write(fd, data + off, len - off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) { close(fd); unlink(tmp); return -1; }
    off += (size_t)k;
  }
  if (close(fd) != 0 || rename(tmp, path) != 0) { unlink(tmp); return -1; }
  return 0;
}

static int is_socket(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int exec_prep_main(int argc, char **argv) {
  /* argv: runcvm-exec --runtime NODE ENTRY -- <runtime arguments> */
  if (argc < 5 || strcmp(argv[4], "--")) {
    dprintf(2, "runcvm: error: runcvm-exec --runtime needs NODE ENTRY -- ARGS\nruncvm: fix: it is started by bin/runcvm-runtime; do not run it by hand\n");
    return 255;
  }
  int nargs = argc - 5;
  char **args = argv + 5;
  node_argv = calloc((size_t)nargs + 3, sizeof *node_argv);
  if (!node_argv) return 255;
  node_argv[0] = argv[2];
  node_argv[1] = argv[3];
  for (int i = 0; i < nargs; i++) node_argv[i + 2] = args[i];

  /* runtime/args.ts splitRuncArgs: global flags (some with a value), then the verb */
  const char *root = NULL;
  int i = 0;
  while (i < nargs && args[i][0] == '-') {
    static const char *const value_globals[] = {"--root", "--log", "--log-format", "--rootless", "--criu"};
    const char *eq = strchr(args[i], '=');
    size_t nl = eq ? (size_t)(eq - args[i]) : strlen(args[i]);
    int takes = 0;
    for (size_t k = 0; k < sizeof value_globals / sizeof value_globals[0]; k++)
      if (strlen(value_globals[k]) == nl && !strncmp(args[i], value_globals[k], nl)) takes = 1;
    if (takes && !strncmp(args[i], "--root", nl) && nl == 6) root = eq ? eq + 1 : (i + 1 < nargs ? args[i + 1] : NULL);
    i += takes && !eq ? 2 : 1;
  }
  if (i >= nargs || strcmp(args[i], "exec")) return fallback();
  int nglobals = i;
  struct exec_args *a = calloc(1, sizeof *a);
  if (!a || parse_exec_args(nargs - i - 1, args + i + 1, a) || a->preserve_fds > 0) return fallback();

  /* the state folder, and runc's record (needed anyway: it says whether the container runs) */
  const char *runc_root = root;
  char rootbuf[4200];
  if (!runc_root) {
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (geteuid() != 0 && xdg && *xdg) snprintf(rootbuf, sizeof rootbuf, "%s/runc", xdg), runc_root = rootbuf;
    else runc_root = "/run/runc";
  }
  char path[4400];
  snprintf(path, sizeof path, "%s/%s/state.json", runc_root, a->id);
  struct json *record = read_json(path);
  if (!record || !runc_says_running(record)) return fallback();
  const char *state_root = getenv("RUNCVM_STATE_DIR");
  if (!state_root || !*state_root) state_root = "/run/runcvm";
  static char state[4300];
  snprintf(state, sizeof state, "%s/%s", state_root, a->id);
  snprintf(path, sizeof path, "%s/launch.json", state);
  if (!is_file(path)) {
    const char *recorded = recorded_state_dir(record);
    if (!recorded) return fallback();
    snprintf(state, sizeof state, "%s", recorded);
    snprintf(path, sizeof path, "%s/launch.json", state);
    if (!is_file(path)) return fallback();
  }
  struct json *launch = read_json(path);
  if (!launch || launch->type != J_OBJ) return fallback();
  const struct json *hv = json_get(json_get(launch, "vm"), "hypervisor");
  if (hv && (hv->type != J_STR || (strcmp(hv->str, "qemu") && strcmp(hv->str, "firecracker")))) return fallback();
  snprintf(path, sizeof path, "%s/exec.sock", state);
  if (!is_socket(path)) return fallback(); /* not open yet (booting): Node waits for it */

  struct original *o = calloc(1, sizeof *o);
  struct json *file = NULL;
  if (!o) return fallback();
  if (a->process) {
    if (!(file = read_json(a->process)) || read_process(file, o)) return fallback();
  } else if (from_flags(json_get(launch, "process"), a, o)) {
    return fallback();
  }

  unsigned char rnd[8];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return fallback();
  char rid[17];
  for (int k = 0; k < 8; k++) snprintf(rid + 2 * k, 3, "%02x", rnd[k]);
  struct sbuf request = {0}, process = {0};
  if (request_payload(o, &request)) return fallback();
  if (file) client_process_from_file(file, rid, o->terminal, &process);
  else client_process_from_flags(o, rid, &process);
  char request_file[4400], process_file[4400];
  snprintf(request_file, sizeof request_file, "%s/exec-%s.req", state, rid);
  snprintf(process_file, sizeof process_file, "%s/exec-%s.process.json", state, rid);
  /* the request is read by the exec client in the launcher container, as the launcher's user */
  struct stat state_st;
  if (stat(state, &state_st) != 0) return fallback();
  if (write_private(request_file, request.p, request.len, &state_st)) return fallback();
  if (write_private(process_file, process.p, process.len, NULL)) {
    unlink(request_file);
    return fallback();
  }

  /* exec/rewrite.ts runcExecArgv: the globals, the flags about how runc runs the process, the rewritten file */
  const char *runc = getenv("RUNCVM_RUNC");
  if (!runc || !*runc) runc = "runc";
  struct strs rv = {0};
  push(&rv, runc);
  for (int k = 0; k < nglobals; k++) push(&rv, args[k]);
  push(&rv, "exec");
  if (a->detach) push(&rv, "--detach");
  if (a->pid_file) push(&rv, "--pid-file"), push(&rv, a->pid_file);
  if (a->console_socket) push(&rv, "--console-socket"), push(&rv, a->console_socket);
  if (a->cgroup) {
    /* a VM boundary, said (exec/main.ts says the same): runc moves only the exec client */
    dprintf(2, "runcvm: warning: exec --cgroup %s moves only runcvm's exec client into that host cgroup; the command runs inside the microVM, whose cgroups are its own\n", a->cgroup);
    push(&rv, "--cgroup"), push(&rv, a->cgroup);
  }
  if (a->ignore_paused) push(&rv, "--ignore-paused");
  push(&rv, "--process");
  push(&rv, process_file);
  push(&rv, a->id);

  pid_t child = fork();
  if (child < 0) {
    unlink(request_file);
    unlink(process_file);
    return fallback();
  }
  if (child == 0) {
    execvp(rv.v[0], (char **)rv.v);
    dprintf(2, "runcvm: error: cannot run %s: %s\nruncvm: fix: install runc, or set RUNCVM_RUNC to its path\n", rv.v[0], strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
  unlink(process_file); /* runc has read it */
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code != 0) unlink(request_file); /* the client never started, or has already removed it */
  return code;
}
