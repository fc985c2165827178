/* Filesystem helpers shared by every guest program (runcvm-init and its parts, runcvm-agent, runcvm-exec) and the
 * network test's bare-QEMU driver: each is written once here. No state, no logging. */
#ifndef RUNCVM_GUEST_UTIL_H
#define RUNCVM_GUEST_UTIL_H
#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: parents 0755, the last component `mode`; errors are left to the caller's next step (mount, open) */
void mkdir_p(const char *path, mode_t mode);

/* %XX → byte, in place (the hand-off's escaping: contract.ts ConfigKey); a lone or malformed % stays as it is */
void pct_unescape(char *s);

/* The whole file, NUL-terminated, with `spare` more bytes allocated after it (to append to); its length in *len
 * when len is not NULL. NULL with errno set when it cannot be opened (or memory runs out). Free with free(). */
char *read_file(const char *path, size_t *len, size_t spare);

/* One scan of /sys/class/<class>/<entry>/<attr>: the first entry whose attribute (without its newline) equals
 * `want` (ignoring case when ignore_case) is copied into name. 1 when found, 0 when not (or no such class). */
int sysfs_find(const char *class_name, const char *attr, const char *want, int ignore_case, char *name, size_t namelen);

/* The home folder of uid in the image's /etc/passwd, as runc sets HOME when the process has none; "/" when the
 * file or the user is missing. Returns out. */
const char *passwd_home(uid_t uid, char *out, size_t outlen);

/* runc's fixStdioPermissions: fds 0-2 (a pty, a pipe; never /dev/null) change owner to uid, keeping their group
 * (a pty keeps the devpts gid=5), so a non-root process owns its terminal. Call as root, before the user change. */
void fix_stdio_owner(uid_t uid);

/* Write text to an existing file (a /proc/sys or /proc/self entry): 0, or -1 with errno. */
int write_text(const char *path, const char *text);

#endif
