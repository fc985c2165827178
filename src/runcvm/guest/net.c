/*
 * runcvm guest networking (owner: networking; contract in docs/dev/notes/network.md and src/runcvm/network/plan.ts).
 *
 * The launcher hands the pod's interfaces to the VM and describes them on the kernel command line:
 *   runcvm.net.if=NAME,MAC,MTU[,ADDR/PREFIX...]        one per interface
 *   runcvm.net.route=DST,VIA|-,DEV[,onlink][,metric=N]  in the order to add them (IPv6 when DST or VIA holds ':')
 *   runcvm.net.dns=NS,...  runcvm.net.search=D,...  runcvm.net.dnsopt=O,...  runcvm.net.wait=MS
 * runcvm_net_setup() waits (10 s by default) for every NIC to appear, names it after its MAC (virtio probe order is
 * not guaranteed), sets MTU and addresses, brings it up, adds the routes with busybox `ip`, and writes
 * /etc/resolv.conf when the image has none with a nameserver. No runcvm.net.if → loopback only (--network none).
 *
 * Docker's embedded DNS (runcvm.net.dnsrelay=127.0.0.11,169.254.1.254 and runcvm.net.resolvconf=BASE64, see
 * planDnsRelay in plan.ts): /etc/resolv.conf becomes the engine's file as it is at start, and a relay process
 * listens on 127.0.0.11:53 (UDP and TCP; the address is on lo already, as 127.0.0.0/8 is) and forwards each query
 * to the launcher on the identity IP, which forwards it to the real 127.0.0.11 in the container's namespace. The
 * workload keeps `nameserver 127.0.0.11`, as under runc. The guest kernel has no netfilter, so no DNAT: a process.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "contract.h"
#include "net.h"
#include "resume.h"
#include "util.h"

#include <dirent.h>

#define MAX_IFS 8
#define MAX_ROUTES 64
#define MAX_ADDRS 8

struct net_if {
  char name[16], mac[18], cur[16];
  int mtu, naddrs;
  char *addrs[MAX_ADDRS];
};

static struct net_if ifs[MAX_IFS];
static int nifs;
static char *routes[MAX_ROUTES];
static int nroutes;
static char *dns, *search, *dnsopt, *dnsrelay, *resolvconf;
static long wait_ms = 10000;
static net_log_fn logf_;
/* VM templates (issue 17): the MACs of the RESUME frame, in NIC (virtio) order; set → NICs are matched by order */
#define MAX_MACS MAX_IFS
static char macs[MAX_MACS][18];
static int nmacs;

static void nlog(int is_debug, const char *fmt, ...) {
  if (!logf_) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  logf_(is_debug, buf);
}
#define INFO(...) nlog(0, "[RunCVM-FC-Init] [INFO]   " __VA_ARGS__)
#define ERROR(...) nlog(0, "[RunCVM-FC-Init] [ERROR]  " __VA_ARGS__)
#define DEBUG(...) nlog(1, "[RunCVM-FC-Init] [DEBUG]  " __VA_ARGS__)

/* run busybox ip ARGS...; returns the exit status (stderr goes to the console) */
static int ip(const char *first, ...) {
  const char *argv[32];
  int n = 0;
  argv[n++] = "ip";
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && n < 31; a = va_arg(ap, const char *)) argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  char line[400] = "ip";
  for (int i = 1; i < n; i++) {
    strncat(line, " ", sizeof line - strlen(line) - 1);
    strncat(line, argv[i], sizeof line - strlen(line) - 1);
  }
  pid_t p = fork();
  if (p < 0) return -1;
  if (p == 0) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) dup2(fd, 0);
    execv(PATH_BUSYBOX, (char *const *)argv);
    _exit(127);
  }
  int status = 0;
  while (waitpid(p, &status, 0) < 0 && errno == EINTR) {}
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  if (rc) ERROR("%s failed (exit %d)", line, rc);
  else DEBUG("%s", line);
  return rc;
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t w = write(fd, text, strlen(text));
  (void)w;
  close(fd);
}

/* split s at c in place; returns the pieces (up to max) */
static int split(char *s, char c, char **out, int max) {
  int n = 0;
  while (s && n < max) {
    out[n++] = s;
    char *p = strchr(s, c);
    if (!p) break;
    *p = 0;
    s = p + 1;
  }
  return n;
}

static void parse_cmdline(char *cmdline) {
  char *save = NULL;
  for (char *w = strtok_r(cmdline, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
    if (!strncmp(w, "runcvm.net.if=", 14) && nifs < MAX_IFS) {
      char *f[3 + MAX_ADDRS];
      int n = split(w + 14, ',', f, 3 + MAX_ADDRS);
      if (n < 3) continue;
      struct net_if *i = &ifs[nifs++];
      snprintf(i->name, sizeof i->name, "%.15s", f[0]);
      snprintf(i->mac, sizeof i->mac, "%.17s", f[1]);
      i->mtu = atoi(f[2]);
      for (int k = 3; k < n; k++) i->addrs[i->naddrs++] = f[k];
    } else if (!strncmp(w, "runcvm.net.route=", 17) && nroutes < MAX_ROUTES) routes[nroutes++] = w + 17;
    else if (!strncmp(w, "runcvm.net.dns=", 15)) dns = w + 15;
    else if (!strncmp(w, "runcvm.net.search=", 18)) search = w + 18;
    else if (!strncmp(w, "runcvm.net.dnsopt=", 18)) dnsopt = w + 18;
    else if (!strncmp(w, "runcvm.net.wait=", 16)) wait_ms = atol(w + 16);
    else if (!strncmp(w, "runcvm.net.dnsrelay=", 20)) dnsrelay = w + 20;
    else if (!strncmp(w, "runcvm.net.resolvconf=", 22)) resolvconf = w + 22;
  }
}

/* find the interface carrying mac; fills cur. Returns 1 when found. */
static int find_by_mac(struct net_if *want) {
  return sysfs_find("net", "address", want->mac, 1, want->cur, sizeof want->cur);
}

/* The k-th virtio NIC in probe order (its virtioN device number), for a VM restored from a template: every NIC
 * still has the template's MAC (docs/dev/notes/templates.md constraint 4). Fills name; 1 when found. */
static int find_virtio_nic(int k, char *name, size_t namelen) {
  DIR *d = opendir("/sys/class/net");
  if (!d) return 0;
  struct { long n; char name[16]; } nics[MAX_IFS];
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d)) && count < MAX_IFS) {
    if (e->d_name[0] == '.') continue;
    char link[512], target[256];
    snprintf(link, sizeof link, "/sys/class/net/%s/device", e->d_name);
    ssize_t t = readlink(link, target, sizeof target - 1);
    if (t <= 0) continue;
    target[t] = 0;
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (strncmp(base, "virtio", 6) != 0) continue;
    nics[count].n = atol(base + 6);
    snprintf(nics[count].name, sizeof nics[count].name, "%.15s", e->d_name);
    count++;
  }
  closedir(d);
  if (k >= count) return 0;
  /* selection of the k-th smallest device number (a handful of NICs) */
  for (int i = 0; i <= k; i++)
    for (int j = i + 1; j < count; j++)
      if (nics[j].n < nics[i].n) {
        long tn = nics[i].n;
        char tname[16];
        memcpy(tname, nics[i].name, sizeof tname);
        nics[i].n = nics[j].n;
        memcpy(nics[i].name, nics[j].name, sizeof tname);
        nics[j].n = tn;
        memcpy(nics[j].name, tname, sizeof tname);
      }
  snprintf(name, namelen, "%s", nics[k].name);
  return 1;
}

/* template: the NIC for ifs[i] is the one at the position of its MAC in the RESUME frame's list */
static int find_nic(struct net_if *want) {
  if (nmacs == 0) return find_by_mac(want);
  for (int k = 0; k < nmacs; k++)
    if (!strcasecmp(macs[k], want->mac)) return find_virtio_nic(k, want->cur, sizeof want->cur);
  return 0;
}

void runcvm_net_resume_handoff(void) {
  size_t len;
  char *text = read_file(RESUME_HANDOFF_FILE, &len, 0);
  if (!text) return; /* a cold boot */
  mkdir_p("/run/runcvm", 0700);
  int fd = open(RESUME_NET_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ssize_t w = write(fd, text, len);
    (void)w;
    close(fd);
  }
  free(text);
  unlink(RESUME_HANDOFF_FILE);
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static void write_resolv_conf(void) {
  if (!dns) return;
  int fd = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      if (strstr(buf, "nameserver")) {
        DEBUG("/etc/resolv.conf already names a nameserver; kept");
        return;
      }
    }
  }
  mkdir("/etc", 0755);
  char text[2048] = "";
  char tmp[1024];
  char *f[16];
  snprintf(tmp, sizeof tmp, "%s", dns);
  int n = split(tmp, ',', f, 16);
  for (int i = 0; i < n; i++) {
    strncat(text, "nameserver ", sizeof text - strlen(text) - 1);
    strncat(text, f[i], sizeof text - strlen(text) - 1);
    strncat(text, "\n", sizeof text - strlen(text) - 1);
  }
  const char *keys[2] = {"search ", "options "};
  char *vals[2] = {search, dnsopt};
  for (int k = 0; k < 2; k++) {
    if (!vals[k]) continue;
    strncat(text, keys[k], sizeof text - strlen(text) - 1);
    for (char *p = vals[k]; *p; p++) {
      char ch[2] = {*p == ',' ? ' ' : *p, 0};
      strncat(text, ch, sizeof text - strlen(text) - 1);
    }
    strncat(text, "\n", sizeof text - strlen(text) - 1);
  }
  int w = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w < 0) {
    ERROR("cannot write /etc/resolv.conf: %s", strerror(errno));
    return;
  }
  ssize_t r = write(w, text, strlen(text));
  (void)r;
  close(w);
  DEBUG("wrote /etc/resolv.conf");
}

/* standard base64 (RFC 4648) in place; returns the decoded length, -1 on a bad character */
static int base64_decode(char *s) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int out = 0, bits = 0;
  unsigned acc = 0;
  for (char *p = s; *p && *p != '='; p++) {
    const char *at = strchr(abc, *p);
    if (!at) return -1;
    acc = (acc << 6) | (unsigned)(at - abc);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      s[out++] = (char)((acc >> bits) & 0xff);
    }
  }
  s[out] = 0;
  return out;
}

/* the engine's resolv.conf as it is at start (Docker rewrote it after create copied it into the VM's disk) */
static int write_engine_resolv_conf(void) {
  int len = base64_decode(resolvconf);
  if (len < 0) {
    ERROR("runcvm.net.resolvconf is not base64; /etc/resolv.conf kept");
    return -1;
  }
  mkdir("/etc", 0755);
  int w = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w < 0) {
    ERROR("cannot write /etc/resolv.conf: %s", strerror(errno));
    return -1;
  }
  ssize_t r = write(w, resolvconf, (size_t)len);
  close(w);
  if (r != len) {
    ERROR("cannot write /etc/resolv.conf: %s", strerror(errno));
    return -1;
  }
  DEBUG("wrote the engine's /etc/resolv.conf (%d bytes)", len);
  return 0;
}

/* ----- DNS relay: 127.0.0.11:53 in the VM → the launcher (identity IP):53 -----
 * One process in init's PID namespace (the workload's `ps` does not show it), started before the workload. UDP: one
 * connected upstream socket per query, its first answer goes back to the asker from 127.0.0.11:53; TCP: a child per
 * connection copies the bytes both ways (DNS over TCP already frames its messages), half-closes included. */
#define RELAY_SLOTS 64
#define RELAY_QUERY_MS 10000

static struct sockaddr_in relay_up;

static void relay_tcp(int c) {
  int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (u < 0 || connect(u, (struct sockaddr *)&relay_up, sizeof relay_up) != 0) _exit(1);
  int fds[2] = {c, u}, open_in[2] = {1, 1};
  static char buf[65536];
  while (open_in[0] || open_in[1]) {
    struct pollfd p[2];
    int n = 0, which[2];
    for (int i = 0; i < 2; i++)
      if (open_in[i]) { p[n] = (struct pollfd){fds[i], POLLIN, 0}; which[n++] = i; }
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < n; k++) {
      if (!p[k].revents) continue;
      int from = which[k], to = 1 - from;
      ssize_t got = read(fds[from], buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        /* this direction is over: pass the end on, keep the other direction open for the answer */
        shutdown(fds[to], SHUT_WR);
        open_in[from] = 0;
        if (got < 0) _exit(0);
        continue;
      }
      for (ssize_t off = 0; off < got;) {
        ssize_t w = write(fds[to], buf + off, (size_t)(got - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(0);
        off += w;
      }
    }
  }
  _exit(0);
}

static void relay_loop(int udp, int tcp) {
  struct { int fd; struct sockaddr_in from; long deadline; } q[RELAY_SLOTS];
  for (int i = 0; i < RELAY_SLOTS; i++) q[i].fd = -1;
  static unsigned char buf[65536];
  for (;;) {
    struct pollfd p[2 + RELAY_SLOTS];
    int slot_of[2 + RELAY_SLOTS];
    int n = 0;
    p[n] = (struct pollfd){udp, POLLIN, 0}; slot_of[n++] = -1;
    p[n] = (struct pollfd){tcp, POLLIN, 0}; slot_of[n++] = -1;
    for (int i = 0; i < RELAY_SLOTS; i++)
      if (q[i].fd >= 0) { p[n] = (struct pollfd){q[i].fd, POLLIN, 0}; slot_of[n++] = i; }
    if (poll(p, (nfds_t)n, 1000) < 0 && errno != EINTR) _exit(1);
    long now = now_ms();
    for (int k = 2; k < n; k++) {
      int i = slot_of[k];
      if (p[k].revents) {
        ssize_t got = recv(q[i].fd, buf, sizeof buf, 0);
        if (got > 0) sendto(udp, buf, (size_t)got, 0, (struct sockaddr *)&q[i].from, sizeof q[i].from);
        close(q[i].fd);
        q[i].fd = -1;
      } else if (now > q[i].deadline) {
        close(q[i].fd); /* no answer: the asker retries on its own */
        q[i].fd = -1;
      }
    }
    if (p[0].revents & POLLIN) {
      struct sockaddr_in from;
      socklen_t fl = sizeof from;
      ssize_t got = recvfrom(udp, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
      int i = 0;
      while (i < RELAY_SLOTS && q[i].fd >= 0) i++;
      if (got > 0 && i < RELAY_SLOTS) {
        int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (u >= 0 && connect(u, (struct sockaddr *)&relay_up, sizeof relay_up) == 0 && send(u, buf, (size_t)got, 0) == got) {
          q[i].fd = u;
          q[i].from = from;
          q[i].deadline = now + RELAY_QUERY_MS;
        } else if (u >= 0) close(u);
      }
    }
    if (p[1].revents & POLLIN) {
      int c = accept4(tcp, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0) {
        if (fork() == 0) {
          close(udp);
          close(tcp);
          for (int i = 0; i < RELAY_SLOTS; i++)
            if (q[i].fd >= 0) close(q[i].fd);
          relay_tcp(c);
        }
        close(c);
      }
    }
  }
}

static int relay_socket(int type, struct sockaddr_in *at) {
  int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  int one = 1;
  if (s < 0) return -1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, (struct sockaddr *)at, sizeof *at) != 0 || (type == SOCK_STREAM && listen(s, 16) != 0)) {
    close(s);
    return -1;
  }
  return s;
}

/* runcvm.net.dnsrelay=LISTEN,VIA: bind here (so a failure is logged before the workload starts), relay in a child */
static int start_dns_relay(void) {
  char copy[64], *f[2];
  snprintf(copy, sizeof copy, "%s", dnsrelay);
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(53)};
  relay_up = at;
  if (split(copy, ',', f, 2) != 2 || inet_pton(AF_INET, f[0], &at.sin_addr) != 1 || inet_pton(AF_INET, f[1], &relay_up.sin_addr) != 1) {
    ERROR("runcvm.net.dnsrelay=%s: want LISTEN,VIA (IPv4)", dnsrelay);
    return -1;
  }
  int udp = relay_socket(SOCK_DGRAM, &at);
  int tcp = udp >= 0 ? relay_socket(SOCK_STREAM, &at) : -1;
  if (tcp < 0) {
    ERROR("DNS relay: cannot listen on %s:53: %s", f[0], strerror(errno));
    if (udp >= 0) close(udp);
    return -1;
  }
  pid_t p = fork();
  if (p == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGCHLD, SIG_IGN); /* the TCP children reap themselves */
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) { dup2(nul, 0); dup2(nul, 1); dup2(nul, 2); }
    for (int fd = 3; fd < 1024; fd++)
      if (fd != udp && fd != tcp) close(fd);
    relay_loop(udp, tcp);
    _exit(0);
  }
  close(udp);
  close(tcp);
  if (p < 0) {
    ERROR("DNS relay: fork: %s", strerror(errno));
    return -1;
  }
  INFO("DNS relay: %s:53 -> %s:53 (udp, tcp)", f[0], f[1]);
  return 0;
}

int runcvm_net_setup(net_log_fn log) {
  logf_ = log;
  /* a VM restored from a template: the words came in its RESUME frame (/proc/cmdline is the template's) */
  int resumed = access(RESUME_NET_FILE, F_OK) == 0;
  int fd = open(resumed ? RESUME_NET_FILE : "/proc/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  static char cmdline[8192];
  ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
  close(fd);
  if (n <= 0) return 0;
  cmdline[n] = 0;
  if (resumed) {
    char *save = NULL;
    static char copy[sizeof cmdline];
    memcpy(copy, cmdline, (size_t)n + 1);
    for (char *w = strtok_r(copy, "\n", &save); w; w = strtok_r(NULL, "\n", &save))
      if (!strncmp(w, "mac=", 4) && nmacs < MAX_MACS) snprintf(macs[nmacs++], sizeof macs[0], "%.17s", w + 4);
  }
  parse_cmdline(cmdline);
  if (nifs == 0) {
    DEBUG("no network interfaces for this VM (loopback only)");
    return 0;
  }

  /* 1. wait for every NIC (virtio-net probes asynchronously) */
  INFO("Waiting for eth* interface...");
  long start = now_ms();
  int missing;
  for (;;) {
    missing = 0;
    for (int i = 0; i < nifs; i++)
      if (!find_nic(&ifs[i])) missing++;
    if (!missing || now_ms() - start >= wait_ms) break;
    usleep(100000);
  }
  if (missing) {
    for (int i = 0; i < nifs; i++)
      if (!ifs[i].cur[0]) ERROR("No ethernet interfaces found: none with MAC %s (%s) appeared within %ld ms (is virtio_net loaded?)", ifs[i].mac, ifs[i].name, wait_ms);
  }
  INFO("Found %d of %d interface(s) after %ld ms", nifs - missing, nifs, now_ms() - start);

  /* 1b. template: each NIC still has the template's MAC; it gets its own before anything else (down, as probed) */
  for (int i = 0; nmacs && i < nifs; i++)
    if (ifs[i].cur[0] && ip("link", "set", "dev", ifs[i].cur, "address", ifs[i].mac, NULL) != 0)
      ERROR("%s: cannot set mac %s", ifs[i].cur, ifs[i].mac);

  /* 2. names: through temporary names first, so eth0/eth1 can swap */
  for (int i = 0; i < nifs; i++) {
    if (!ifs[i].cur[0] || !strcmp(ifs[i].cur, ifs[i].name)) continue;
    char tmp[16];
    snprintf(tmp, sizeof tmp, "rcvm%d", i);
    if (ip("link", "set", "dev", ifs[i].cur, "name", tmp, NULL) == 0) snprintf(ifs[i].cur, sizeof ifs[i].cur, "%.15s", tmp);
  }
  for (int i = 0; i < nifs; i++) {
    if (!ifs[i].cur[0] || !strcmp(ifs[i].cur, ifs[i].name)) continue;
    if (ip("link", "set", "dev", ifs[i].cur, "name", ifs[i].name, NULL) == 0) snprintf(ifs[i].cur, sizeof ifs[i].cur, "%.15s", ifs[i].name);
  }

  /* 3. MTU, addresses (IPv6 without duplicate address detection: the address moved here from the pod), up */
  int failures = missing;
  for (int i = 0; i < nifs; i++) {
    struct net_if *f = &ifs[i];
    if (!f->cur[0]) continue;
    char path[128], mtu[16];
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/accept_dad", f->cur);
    write_file(path, "0");
    snprintf(mtu, sizeof mtu, "%d", f->mtu > 0 ? f->mtu : 1500);
    failures += ip("link", "set", "dev", f->cur, "mtu", mtu, NULL) != 0;
    for (int k = 0; k < f->naddrs; k++) {
      if (strchr(f->addrs[k], ':')) failures += ip("-6", "addr", "add", f->addrs[k], "dev", f->cur, NULL) != 0;
      else {
        /* a broadcast address as CNI and docker set it (iproute2 `brd +`), except for /31 and /32 */
        const char *slash = strchr(f->addrs[k], '/');
        int prefix = slash ? atoi(slash + 1) : 32;
        if (prefix <= 30) failures += ip("addr", "add", f->addrs[k], "broadcast", "+", "dev", f->cur, NULL) != 0;
        else failures += ip("addr", "add", f->addrs[k], "dev", f->cur, NULL) != 0;
      }
    }
    failures += ip("link", "set", "dev", f->cur, "up", NULL) != 0;
    INFO("%s: mac %s mtu %s, %d address(es)", f->cur, f->mac, mtu, f->naddrs);
  }

  /* 4. routes, in the given order */
  for (int r = 0; r < nroutes; r++) {
    char copy[256];
    snprintf(copy, sizeof copy, "%s", routes[r]);
    char *f[8];
    int nf = split(copy, ',', f, 8);
    if (nf < 3) continue;
    const char *argv[16];
    int a = 0;
    int v6 = strchr(f[0], ':') || strchr(f[1], ':');
    if (v6) argv[a++] = "-6";
    argv[a++] = "route";
    argv[a++] = "add";
    argv[a++] = f[0];
    if (strcmp(f[1], "-")) { argv[a++] = "via"; argv[a++] = f[1]; }
    argv[a++] = "dev";
    argv[a++] = f[2];
    for (int k = 3; k < nf && a < 13; k++) {
      if (!strcmp(f[k], "onlink")) argv[a++] = "onlink";
      else if (!strncmp(f[k], "metric=", 7)) { argv[a++] = "metric"; argv[a++] = f[k] + 7; }
    }
    while (a < 15) argv[a++] = NULL;
    failures += ip(argv[0], argv[1], argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], argv[10], argv[11], argv[12], NULL) != 0;
  }

  if (resolvconf) failures += write_engine_resolv_conf() != 0;
  else write_resolv_conf();
  if (dnsrelay) failures += start_dns_relay() != 0;
  if (failures) ERROR("network set-up finished with %d problem(s)", failures);
  else INFO("Network configured: %d interface(s), %d route(s)", nifs, nroutes);
  return failures ? -1 : 0;
}
