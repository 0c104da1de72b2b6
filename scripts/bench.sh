#!/usr/bin/env bash
# The request-path benchmark of docs/benchmarks.md: the release build of the example site
# on 127.0.0.1 under wrk, with the plugin attached and detached, with the three shipped
# experiments, with 1 flag and with 1,000 flags.
#
#   apt-get install wrk        # once: the load generator, from Debian's packages
#   scripts/bench.sh           # about 12 minutes; prints the tables of docs/benchmarks.md
#
# Workload (each run): 2,000 visitors, each with the cookie the site gave it; every request
# picks one at random and asks for `/` 80% of the time, `/contact/` 20%;
# `wrk -t2 -c32 -d20s --latency`. Runs alternate attached and detached, three of each per
# setup; the tables give medians. Then a run lets a fifth of the requests for `/` come
# from new visitors, so the plugin counts all run long, and compares the database writes
# with the requests counted; a last one measures the CPU the site with 1,000 flags uses
# while idle. Environment: BENCH_RUNS (3), BENCH_DURATION (20s),
# BENCH_PORT (8199). Nothing listens beyond 127.0.0.1; every process started is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${BENCH_RUNS:-3}
duration=${BENCH_DURATION:-20s}

# shellcheck source=bench/common.sh
. scripts/bench/common.sh

seconds=$(awk -v d="$duration" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print n }')
results="$work/results"
: >"$results"

# Each run starts its site afresh, gives it 5 seconds of the same load to warm up, then
# measures. Attached runs start with 2,000 new visitors (counted then), whose cookies the
# detached run after them sends too.
for setup in "shipped:" "1-flag:1" "1000-flags:1000"; do
  label=${setup%%:*}
  flags=${setup#*:}
  for run in $(seq 1 "$runs"); do
    start_site on "$flags" "$label"
    collect_cookies
    load 5s >/dev/null
    before=$(status_field write_transactions)
    read -r rps p50 p99 < <(load "$duration")
    after=$(status_field write_transactions)
    stop_site
    writes=$(awk -v a="$after" -v b="$before" -v s="$seconds" 'BEGIN { printf "%.2f", (a - b) / s }')
    echo "$label attached $run $rps $p50 $p99 $writes" | tee -a "$results"

    start_site off "" detached
    load 5s >/dev/null
    read -r rps p50 p99 < <(load "$duration")
    stop_site
    echo "$label detached $run $rps $p50 $p99 -" | tee -a "$results"
  done
done

# Counting all run long: a fifth of the requests for `/` come from new visitors.
start_site on 1 counting
collect_cookies
load 5s 0.2 >/dev/null
before=$(status_field write_transactions)
views_before=$(headline_views)
read -r rps p50 p99 < <(load "$duration" 0.2)
after=$(status_field write_transactions)
stop_site
# The shutdown flush wrote the rest; a detached restart is not needed to read them.
start_site on 1 counting
views_after=$(headline_views)
stop_site
counting=$(awk -v r="$rps" -v vb="$views_before" -v va="$views_after" -v a="$after" -v b="$before" \
  -v s="$seconds" 'BEGIN { printf "%.0f %.0f %.2f", r, (va - vb) / s, (a - b) / s }')

# Idle: the CPU the site with 1,000 flags uses over 20 seconds without a request (its flush
# loop's rounds), from the kernel's count of the process's CPU time.
start_site on 1000 idle
sleep 5
ticks_before=$(awk '{ print $14 + $15 }' "/proc/$site_pid/stat")
sleep 20
ticks_after=$(awk '{ print $14 + $15 }' "/proc/$site_pid/stat")
stop_site
idle=$(awk -v a="$ticks_after" -v b="$ticks_before" -v hz="$(getconf CLK_TCK)" \
  'BEGIN { printf "%.1f", 100 * (a - b) / hz / 20 }')

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
column_of() { awk -v l="$1" -v m="$2" -v c="$3" '$1 == l && $2 == m { print $c }' "$results" | median; }
# The median over runs of attached/detached, each attached run with the detached run right
# after it: drift of the machine's speed between runs cancels out within a pair.
pair_ratio() {
  awk -v l="$1" '$1 == l && $2 == "attached" { a[$3] = $4 } $1 == l && $2 == "detached" { d[$3] = $4 }
    END { for (r in a) if (r in d) printf "%.3f\n", a[r] / d[r] }' "$results" | median
}

echo
echo "## Request path ($(date -u +%Y-%m-%d), $(nproc) cores, $(git rev-parse --short HEAD))"
echo
echo "Medians of $runs runs of \`wrk -t2 -c32 -d$duration --latency\`, $visitors visitors, 80% \`/\` 20% \`/contact/\`."
echo
echo "| setup | attached req/s | detached req/s | ratio | ratio of pairs | attached p50 / p99 ms | detached p50 / p99 ms | DB writes/s attached |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for label in shipped 1-flag 1000-flags; do
  a=$(column_of "$label" attached 4)
  d=$(column_of "$label" detached 4)
  ratio=$(awk -v a="$a" -v d="$d" 'BEGIN { printf "%.3f", a / d }')
  echo "| $label | $a | $d | $ratio | $(pair_ratio "$label") | $(column_of "$label" attached 5) / $(column_of "$label" attached 6) | $(column_of "$label" detached 5) / $(column_of "$label" detached 6) | $(column_of "$label" attached 7) |"
done
one=$(column_of 1-flag attached 4)
thousand=$(column_of 1000-flags attached 4)
echo
echo "1,000 flags against 1 flag, attached: $(awk -v a="$thousand" -v b="$one" 'BEGIN { printf "%.3f", a / b }') of the throughput."
echo
read -r crps cviews cwrites <<<"$counting"
echo "Counting all run long (1 flag, 20% of \`/\` from new visitors): $crps req/s, $cviews views counted/s, $cwrites database write transactions/s."
echo
echo "Idle with 1,000 flags: $idle% of one core (the flush loop's rounds, over 20 s)."
echo
# The detached site is the same in every setup: how far its runs differ is this machine's
# noise, against which the ratios above are to be read.
awk '$2 == "detached" { n++; if (n == 1 || $4 < lo) lo = $4; if (n == 1 || $4 > hi) hi = $4 }
  END { printf "The detached site, the same in all %d of its runs: %.0f to %.0f req/s, the fastest %.0f%% above the slowest (the machine'"'"'s own noise, against which to read the ratios).\n", n, lo, hi, 100 * (hi / lo - 1) }' "$results"
echo
echo "Every run:"
echo
echo '```'
echo "setup attached|detached run req/s p50-ms p99-ms writes/s"
cat "$results"
echo '```'
