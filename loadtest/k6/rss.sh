#!/usr/bin/env bash
# Samples a process's resident memory every few seconds until it exits, as
# CSV on stdout: unix time, seconds since start, RSS in KiB, 1-minute load
# average (so a noisy sample can be told apart).
#
#   loadtest/k6/rss.sh PID [INTERVAL_S] > rss.csv
set -euo pipefail

pid=${1:?usage: rss.sh PID [INTERVAL_S]}
every=${2:-10}
start=$(date +%s)
echo 'unix_s,elapsed_s,rss_kib,load1'
while [[ -r "/proc/$pid/status" ]]; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n "$rss" ]] || break
    now=$(date +%s)
    printf '%s,%s,%s,%s\n' "$now" "$((now - start))" "$rss" "$(cut -d' ' -f1 /proc/loadavg)"
    sleep "$every"
done
