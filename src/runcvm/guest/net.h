/* runcvm guest networking (net.c): called by init.c once /proc, /sys and the io port are up, before the workload. */
#ifndef RUNCVM_GUEST_NET_H
#define RUNCVM_GUEST_NET_H

/* one log line; is_debug lines are for RUNCVM_LOG_LEVEL=DEBUG only, the others are INFO or ERROR (in the text) */
typedef void (*net_log_fn)(int is_debug, const char *line);

/* configure the NICs described by runcvm.net.* on /proc/cmdline; 0 when done (or nothing to do), -1 on problems
   (already logged; the workload still starts, as under runc when a network is unreachable) */
int runcvm_net_setup(net_log_fn log);

/* VM templates (issue 17): move the resume hand-off (the RESUME frame's mac and net entries, left on /dev by the
   initramfs's runcvm-resume) to RESUME_NET_FILE, where runcvm_net_setup reads them instead of /proc/cmdline. Call
   once /run is mounted. No hand-off (a cold boot): nothing. */
void runcvm_net_resume_handoff(void);

#endif
