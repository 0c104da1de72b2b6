#!/usr/bin/env bash
# Where the shipped example site's CPU goes per request, with the plugin attached and
# detached: the table "What a request costs" of docs/benchmarks.md.
#
#   apt-get install wrk linux-perf   # once
#   scripts/profile.sh               # about 2 minutes
#
# The same site, visitors and load as scripts/bench.sh (one 20-second wrk run each way).
# While wrk runs, `perf record` samples the site's call stacks for PROFILE_SECONDS (8) at
# PROFILE_HZ (499) per second; scripts/bench/breakdown.py turns the samples and wrk's
# requests per second into CPU microseconds per request, by part of the request. Unlike
# the throughput ratio, this shows what the plugin's own code costs however fast the
# machine runs at the moment. Nothing listens beyond 127.0.0.1; every process started is
# stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

hz=${PROFILE_HZ:-499}
seconds=${PROFILE_SECONDS:-8}

command -v perf >/dev/null || { echo "profile.sh needs perf: apt-get install linux-perf" >&2; exit 2; }
command -v python3 >/dev/null || { echo "profile.sh needs python3" >&2; exit 2; }

# shellcheck source=bench/common.sh
. scripts/bench/common.sh

# profile label: one wrk run against the site started already, its stacks sampled in the
# middle of it; prints wrk's requests/s.
profile() {
  load 3s >/dev/null
  perf record -q -e cpu-clock -F "$hz" --call-graph dwarf,16384 -p "$site_pid" \
    -o "$work/$1.data" -- sleep "$seconds" >/dev/null 2>&1 &
  local perf_pid=$!
  local rps _
  read -r rps _ < <(load 20s)
  wait "$perf_pid"
  perf script -i "$work/$1.data" -F comm,tid,ip,sym >"$work/$1.txt" 2>/dev/null
  echo "$rps"
}

start_site on "" profile
collect_cookies
attached=$(profile attached)
stop_site

start_site off "" detached
detached=$(profile detached)
stop_site

echo "## What a request costs ($(date -u +%Y-%m-%d), $(nproc) cores, $(git rev-parse --short HEAD))"
echo
echo "CPU per request of the shipped example site, from perf's samples over $seconds s of a"
echo "20-second wrk run each way: $attached requests/s attached, $detached detached."
echo
python3 scripts/bench/breakdown.py "$hz" "$seconds" "$work/attached.txt" "$attached" \
  "$work/detached.txt" "$detached"
