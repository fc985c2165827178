#define _GNU_SOURCE
#include "json.h"

#include <stdlib.h>
#include <string.h>

struct parser {
  const char *p, *end;
  int depth;
};

static void *zalloc(size_t n) {
  void *v = calloc(1, n);
  if (!v) abort();
  return v;
}

static void skip_ws(struct parser *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static void put_utf8(char **o, unsigned cp) {
  unsigned char *u = (unsigned char *)*o;
  if (cp < 0x80) *u++ = (unsigned char)cp;
  else if (cp < 0x800) { *u++ = (unsigned char)(0xC0 | (cp >> 6)); *u++ = (unsigned char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { *u++ = (unsigned char)(0xE0 | (cp >> 12)); *u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); *u++ = (unsigned char)(0x80 | (cp & 0x3F)); }
  else { *u++ = (unsigned char)(0xF0 | (cp >> 18)); *u++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F)); *u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); *u++ = (unsigned char)(0x80 | (cp & 0x3F)); }
  *o = (char *)u;
}

/* at the opening quote; the decoded string (never longer than its escaped form) */
static char *parse_string(struct parser *s) {
  if (s->p >= s->end || *s->p != '"') return NULL;
  s->p++;
  const char *q = s->p;
  while (q < s->end && *q != '"') q += (*q == '\\') ? 2 : 1;
  if (q >= s->end) return NULL;
  char *out = zalloc((size_t)(q - s->p) + 1), *o = out;
  while (s->p < q) {
    unsigned char c = (unsigned char)*s->p++;
    if (c < 0x20) return NULL;
    if (c != '\\') { *o++ = (char)c; continue; }
    char e = *s->p++;
    switch (e) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp;
        if (q - s->p < 4 || hex4(s->p, &cp)) return NULL;
        s->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00) { /* a surrogate pair */
          unsigned lo;
          if (q - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) return NULL;
          s->p += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) return NULL;
        if (cp == 0) return NULL; /* a NUL cannot travel in a C string */
        put_utf8(&o, cp);
        break;
      }
      default: return NULL;
    }
  }
  *o = 0;
  s->p = q + 1;
  return out;
}

static struct json *parse_value(struct parser *s);

static struct json *parse_container(struct parser *s, int object) {
  struct json *v = zalloc(sizeof *v), **tail = &v->child;
  v->type = object ? J_OBJ : J_ARR;
  if (++s->depth > 64) return NULL;
  s->p++;
  skip_ws(s);
  if (s->p < s->end && *s->p == (object ? '}' : ']')) { s->p++; s->depth--; return v; }
  for (;;) {
    char *key = NULL;
    skip_ws(s);
    if (object) {
      if (!(key = parse_string(s))) return NULL;
      skip_ws(s);
      if (s->p >= s->end || *s->p++ != ':') return NULL;
    }
    struct json *m = parse_value(s);
    if (!m) return NULL;
    m->key = key;
    *tail = m;
    tail = &m->next;
    skip_ws(s);
    if (s->p >= s->end) return NULL;
    if (*s->p == ',') { s->p++; continue; }
    if (*s->p == (object ? '}' : ']')) { s->p++; s->depth--; return v; }
    return NULL;
  }
}

static struct json *parse_value(struct parser *s) {
  skip_ws(s);
  if (s->p >= s->end) return NULL;
  const char *start = s->p;
  struct json *v;
  char c = *s->p;
  if (c == '{' || c == '[') {
    v = parse_container(s, c == '{');
  } else if (c == '"') {
    char *str = parse_string(s);
    if (!str) return NULL;
    v = zalloc(sizeof *v);
    v->type = J_STR;
    v->str = str;
  } else if (c == 't' && s->end - s->p >= 4 && !memcmp(s->p, "true", 4)) {
    v = zalloc(sizeof *v); v->type = J_BOOL; v->boolean = 1; s->p += 4;
  } else if (c == 'f' && s->end - s->p >= 5 && !memcmp(s->p, "false", 5)) {
    v = zalloc(sizeof *v); v->type = J_BOOL; s->p += 5;
  } else if (c == 'n' && s->end - s->p >= 4 && !memcmp(s->p, "null", 4)) {
    v = zalloc(sizeof *v); v->type = J_NULL; s->p += 4;
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    char buf[64];
    size_t n = 0;
    while (s->p < s->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", *s->p)) buf[n++] = *s->p++;
    buf[n] = 0;
    char *endp;
    double d = strtod(buf, &endp);
    if (endp != buf + n) return NULL;
    v = zalloc(sizeof *v);
    v->type = J_NUM;
    v->num = d;
  } else {
    return NULL;
  }
  if (!v) return NULL;
  v->raw = start;
  v->raw_len = (size_t)(s->p - start);
  return v;
}

struct json *json_parse(const char *text, size_t len) {
  struct parser s = {text, text + len, 0};
  struct json *v = parse_value(&s);
  skip_ws(&s);
  return v && s.p == s.end ? v : NULL;
}

const struct json *json_get(const struct json *obj, const char *key) {
  const struct json *found = NULL;
  if (!obj || obj->type != J_OBJ) return NULL;
  for (const struct json *m = obj->child; m; m = m->next)
    if (m->key && !strcmp(m->key, key)) found = m;
  return found;
}

void sb_putn(struct sbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) abort();
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void sb_puts(struct sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

void sb_json_str(struct sbuf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  sb_putn(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char e[2] = {'\\', (char)*p};
      sb_putn(b, e, 2);
    } else if (*p < 0x20) {
      char u[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
      sb_putn(b, u, 6);
    } else {
      sb_putn(b, (const char *)p, 1);
    }
  }
  sb_putn(b, "\"", 1);
}
