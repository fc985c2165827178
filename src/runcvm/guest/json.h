/* A small JSON reader and string writer for the host side of the exec client (exec-prep.c): it reads runc's
 * state.json, runcvm's launch.json and the engine's OCI process file. Values keep their raw text span, so a member
 * can be copied out unchanged. Strings are decoded to UTF-8; a string holding U+0000 is refused (the exec request
 * cannot carry it). Memory is never freed: the process is short-lived. */
#ifndef RUNCVM_GUEST_JSON_H
#define RUNCVM_GUEST_JSON_H
#include <stddef.h>

enum json_type { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct json {
  enum json_type type;
  const char *raw; /* the value's text in the parsed buffer */
  size_t raw_len;
  char *str;       /* J_STR: decoded, NUL-terminated */
  double num;      /* J_NUM */
  int boolean;     /* J_BOOL */
  char *key;       /* member of an object: its decoded name */
  struct json *child, *next; /* J_ARR / J_OBJ: elements or members in order */
};

/* The whole text must be one value (surrounding white space allowed); NULL on any syntax error. */
struct json *json_parse(const char *text, size_t len);

/* A member of an object by name (the last one wins, as in JavaScript), or NULL. */
const struct json *json_get(const struct json *obj, const char *key);

/* A growing, NUL-terminated output buffer. */
struct sbuf {
  char *p;
  size_t len, cap;
};
void sb_putn(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
/* s as a JSON string literal (quotes and escapes) */
void sb_json_str(struct sbuf *b, const char *s);

#endif
