#!/bin/sh
echo "$GREETING"
echo "kernel: $(uname -r)"
echo "cpus: $(grep -c ^processor /proc/cpuinfo), memory: $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
echo "this line goes to stderr" >&2
exit 3
