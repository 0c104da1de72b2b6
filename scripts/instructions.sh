#!/usr/bin/env bash
# What the plugin costs the shipped example site per request, counted rather than timed:
# the table "Instructions per request" of docs/benchmarks.md.
#
#   apt-get install valgrind curl   # once
#   scripts/instructions.sh         # about 10 minutes
#
# wrk's requests per second move with whatever else the machine does (docs/benchmarks.md
# records runs whose fastest detached run was twice the slowest). valgrind's callgrind
# counts the instructions the site executes instead, and simulates the processor's caches
# on them, so the same build and requests give the same counts on any x86-64 machine, busy
# or not. The simulated caches are fixed, not read off the machine: 32 KiB first-level
# instruction and data caches and a 2 MiB last level (INSTR_CACHES overrides them).
#
# The workload is the benchmark's: the 2,000 visitors of scripts/bench.sh (their cookies
# taken from the attached site), each request a visitor at random asking for `/` 80% of
# the time and `/contact/` 20%, sent by one curl process over one connection, in the same
# order both ways (INSTR_SEED). The site runs under callgrind, attached then detached; it
# is given INSTR_WARMUP (20,000) requests, so that every worker thread has decoded every
# visitor's cookie once, its counts are reset, and INSTR_REQUESTS (10,000) more are
# counted. Counts include every thread of the site, user space only: the kernel's share of
# a request and the load generator's CPU, the same both ways, are not counted, so the
# ratio printed is lower than a throughput ratio would be. The flush loop runs once a
# minute instead of twice a second: under callgrind the site serves some fifty times
# fewer requests per second, so each round would weigh fifty times more per request than
# it does at full speed (scripts/bench.sh measures the flushes as they ship). The counts of
# the visitors collected first are written before the warm-up starts.
# INSTR_FLAGS=N runs the attached site with N flags instead of the three experiments
# (EXAMPLE_SITE_FLAGS of the example site: `headline-flag` on `/`, the others on pages of
# their own), as scripts/bench.sh's "1 flag" and "1,000 flags" setups do.
# The site runs one worker thread (INSTR_WORKERS, default 1). Each worker keeps its own
# cache of decoded visitor cookies, and the warm-up and the counted requests come over two
# connections: with two workers tokio may serve the counted connection on the thread the
# warm-up did not reach, which then decodes every visitor's cookie once inside the counted
# window (some 2,300 instructions a request), or may not, depending on the run. One worker
# makes the counted requests meet a warm cache every time. Under callgrind the threads run
# one at a time anyway.
# INSTR_OUT=dir keeps the two counted dumps there (attached.callgrind, detached.callgrind),
# for `callgrind_annotate --inclusive=yes dir/attached.callgrind` or KCachegrind. Nothing
# listens beyond 127.0.0.1; every process started is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

warmup=${INSTR_WARMUP:-20000}
requests=${INSTR_REQUESTS:-10000}
seed=${INSTR_SEED:-7}
caches=${INSTR_CACHES:---I1=32768,8,64 --D1=32768,8,64 --LL=2097152,16,64}

for tool in valgrind callgrind_control; do
  command -v "$tool" >/dev/null || { echo "instructions.sh needs $tool: apt-get install valgrind" >&2; exit 2; }
done

needs_wrk=no
export ROCKET_WORKERS=${INSTR_WORKERS:-1}
# Rocket starts and migrates its database about fifty times slower under callgrind.
start_tries=3000
bandits_config="flush_interval_ms=60000"
# shellcheck source=bench/common.sh
. scripts/bench/common.sh

# shellcheck disable=SC2206 # the cache options are meant to split into words
runner=(valgrind --tool=callgrind --cache-sim=yes $caches --callgrind-out-file="$work/callgrind.%p")

# requests_file count seed file: a curl config asking for `count` requests, each from a
# visitor of $work/cookies at random, for `/` (80%) or `/contact/` (20%).
requests_file() {
  awk -v n="$1" -v seed="$2" -v base="$base" -v agent="$agent" '
    { cookies[NR] = $0 }
    END {
      srand(seed)
      for (i = 0; i < n; i++) {
        path = rand() < 0.2 ? "/contact/" : "/"
        cookie = cookies[int(rand() * NR) + 1]
        if (i > 0) print "next"
        print "url = \"" base path "\""
        print "user-agent = \"" agent "\""
        print "header = \"Cookie: " cookie "\""
        print "output = \"/dev/null\""
        print "write-out = \"%{http_code}\\n\""
      }
    }' "$work/cookies" >"$3"
}

# send file: the requests of `file`, failing on any answer but 200.
send() {
  curl -s -K "$1" >"$work/codes"
  local bad
  bad=$(grep -vc '^200$' "$work/codes" || true)
  if [ "$bad" -ne 0 ]; then
    echo "the site answered $bad requests with something else than 200" >&2
    exit 1
  fi
}

# totals dump: the event counts of a callgrind dump, as "name=value" lines.
totals() {
  awk '/^events:/ { for (i = 2; i <= NF; i++) name[i - 1] = $i }
       /^(summary|totals):/ { for (i = 2; i <= NF; i++) print name[i - 1] "=" $i }' "$1"
}

# measure label: warm the running site up, reset its counts, count `requests`, stop it;
# writes the counts per request to $work/label.
measure() {
  send "$work/warmup.curl"
  callgrind_control --dump=warmup "$site_pid" >/dev/null 2>&1
  send "$work/measured.curl"
  callgrind_control --dump=measured "$site_pid" >/dev/null 2>&1
  local dump
  dump=$(ls -t "$work"/callgrind."$site_pid"* | head -n 1)
  totals "$dump" >"$work/$1.totals"
  if [ -n "${INSTR_OUT:-}" ]; then
    mkdir -p "$INSTR_OUT"
    cp "$dump" "$INSTR_OUT/$1.callgrind"
  fi
  stop_site
  awk -v n="$requests" -F= '{ v[$1] = $2 } END {
      l1 = v["I1mr"] + v["D1mr"] + v["D1mw"]
      ll = v["ILmr"] + v["DLmr"] + v["DLmw"]
      # The estimate of callgrind_annotate and KCachegrind: 10 cycles a first-level miss,
      # 100 a last-level one.
      printf "%.0f %.1f %.2f %.0f\n", v["Ir"] / n, l1 / n, ll / n, (v["Ir"] + 10 * l1 + 100 * ll) / n
    }' "$work/$1.totals" >"$work/$1"
}

flags=${INSTR_FLAGS:-}
start_site on "$flags" attached
collect_cookies
# The visitors just collected were counted; their counts are written at the first flush.
# Wait for it, so that it lands before the counted window and not, depending on how fast
# the machine runs the site under callgrind, inside it (a flush of 4,000 counts weighs
# some 55,000 instructions on each of the 10,000 requests counted).
for _ in $(seq 1 150); do
  [ "$(status_field write_transactions)" -ge 1 ] 2>/dev/null && break
  sleep 1
done
if [ "$(status_field write_transactions)" -lt 1 ] 2>/dev/null; then
  echo "the collected visitors' counts were not written within 150 seconds" >&2
  exit 1
fi
requests_file "$warmup" "$seed" "$work/warmup.curl"
requests_file "$requests" "$((seed + 1))" "$work/measured.curl"
measure attached
read -r a_ir a_l1 a_ll a_cycles <"$work/attached"

start_site off "" detached
measure detached
read -r d_ir d_l1 d_ll d_cycles <"$work/detached"

echo "## Instructions per request ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD))"
echo
echo "callgrind's counts over $requests requests of the example site (${flags:+$flags flags, }attached and detached)"
echo "after $warmup to warm up (seed $seed), $ROCKET_WORKERS worker thread(s); simulated caches: $caches."
echo
echo "| | instructions | first-level misses | last-level misses | estimated cycles |"
echo "|---|---:|---:|---:|---:|"
echo "| attached | $a_ir | $a_l1 | $a_ll | $a_cycles |"
echo "| detached | $d_ir | $d_l1 | $d_ll | $d_cycles |"
awk -v ai="$a_ir" -v di="$d_ir" -v al="$a_l1" -v dl="$d_l1" -v all="$a_ll" -v dll="$d_ll" \
  -v ac="$a_cycles" -v dc="$d_cycles" 'BEGIN {
    printf "| the plugin | %+.0f | %+.1f | %+.2f | %+.0f |\n", ai - di, al - dl, all - dll, ac - dc
    printf "| detached / attached | %.3f | | | %.3f |\n", di / ai, dc / ac
  }'
