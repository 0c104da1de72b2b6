# What scripts/bench.sh and scripts/profile.sh share: the example site's release build
# started and stopped on 127.0.0.1, the 2,000 visitors' cookies, and one wrk run. Sourced
# from the repository's root, after `set -euo pipefail`; BENCH_PORT (8199) sets the port.
# A script may set the array `runner` before sourcing this to start the site under
# another program (scripts/instructions.sh runs it under valgrind), `needs_wrk=no` when it
# does not load the site with wrk, `start_tries` to wait longer than 60 s for it, and
# `bandits_config` to add keys to the plugin's configuration (`flush_interval_ms=60000`).

port=${BENCH_PORT:-8199}
visitors=2000
base="http://127.0.0.1:$port"
agent="Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

if [ "${needs_wrk:-yes}" = yes ]; then
  command -v wrk >/dev/null || { echo "this needs wrk: apt-get install wrk" >&2; exit 2; }
fi
command -v curl >/dev/null || { echo "this needs curl: apt-get install curl" >&2; exit 2; }

cargo build --release --locked -q -p example-site

work=$(mktemp -d)
site_pid=""
cleanup() {
  if [ -n "$site_pid" ]; then kill "$site_pid" 2>/dev/null || true; wait "$site_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Release builds need a secret key (the cookies are encrypted with it) and an admin token
# (the status read below); both fresh for each benchmark.
secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
token="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# start_site on|off flags database: the example site in the background, once it answers.
start_site() {
  EXAMPLE_SITE_BANDITS=$1 EXAMPLE_SITE_FLAGS=$2 \
    ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT=$port ROCKET_SECRET_KEY=$secret \
    ROCKET_LOG_LEVEL=critical ROCKET_CLI_COLORS=false \
    ROCKET_DATABASES="{bandits={url=\"sqlite://$work/$3.sqlite?mode=rwc\"}}" \
    ROCKET_BANDITS="{admin_token=\"$token\"${bandits_config:+,$bandits_config}}" \
    ${runner[@]+"${runner[@]}"} target/release/example-site >>"$work/site.log" 2>&1 &
  site_pid=$!
  for _ in $(seq 1 "${start_tries:-600}"); do
    curl -sf -o /dev/null "$base/contact/" && return 0
    kill -0 "$site_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the example site did not start; its log:" >&2
  cat "$work/site.log" >&2
  exit 1
}

stop_site() {
  kill -TERM "$site_pid"
  wait "$site_pid" || true
  site_pid=""
}

# New visitors, each with the cookie a browser would hold after its first visit to `/`
# (counted as a view) and its first to `/contact/` (counted as a conversion). wrk sends a
# fixed cookie per visitor; a browser keeps the one the site last set, so the cookie is
# taken after the only change it would see. One curl process each way, keeping its
# connection.
collect_cookies() {
  curl -s -A "$agent" -D "$work/headers" "$base/?visitor=[1-$visitors]" >/dev/null
  grep -i '^set-cookie: bandits=' "$work/headers" | sed 's/^[^:]*: //; s/;.*//' | tr -d '\r' \
    >"$work/seen"
  check_count "$work/seen" "after /"
  awk -v base="$base" -v agent="$agent" '{
      if (NR > 1) print "next"
      print "url = \"" base "/contact/\""
      print "user-agent = \"" agent "\""
      print "header = \"Cookie: " $0 "\""
      print "output = \"/dev/null\""
      print "write-out = \"%header{set-cookie}\\n\""
    }' "$work/seen" >"$work/contact.curl"
  curl -s -K "$work/contact.curl" | grep '^bandits=' | sed 's/;.*//' >"$work/cookies"
  check_count "$work/cookies" "after /contact/"
}

check_count() {
  local got
  got=$(wc -l <"$1")
  if [ "$got" -ne "$visitors" ]; then
    echo "expected $visitors visitor cookies $2, got $got" >&2
    exit 1
  fi
}

# A number from the instance's status (GET /bandits/api/status).
status_field() {
  curl -sf -H "Authorization: Bearer $token" "$base/bandits/api/status" |
    grep -o "\"$1\":[0-9]*" | cut -d: -f2
}

# Views counted so far of headline-flag, over its arms.
headline_views() {
  curl -sf -H "Authorization: Bearer $token" "$base/bandits/api/flags/headline-flag/stats" |
    grep -o '"views":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'
}

# wrk's latency ("850.00us", "1.20ms", "1.02s") in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else { sub(/s$/, "", v); printf "%.3f", v * 1000 } }'
}

# load duration [new-visitor share]: one wrk run; prints "requests/s p50-ms p99-ms".
load() {
  BENCH_COOKIES="$work/cookies" BENCH_NEW_VISITORS="${2:-0}" \
    wrk -t2 -c32 -d"$1" --latency -s scripts/bench/visitors.lua "$base/" >"$work/wrk.txt"
  if grep -q "Non-2xx" "$work/wrk.txt"; then
    echo "wrk saw error answers:" >&2
    cat "$work/wrk.txt" >&2
    exit 1
  fi
  local rps p50 p99
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" { print $2 }' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$work/wrk.txt")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
