#!/usr/bin/env bash
# Takes the admin screenshots in docs/images/: seeds two weeks of a simulated experiment
# into a temporary database, starts the example site on it (127.0.0.1:8123 only), signs in
# with headless Chromium and saves the pages. Needs Debian's chromium package and npm
# (playwright-core is installed into a temporary directory, not the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
site_pid=""
cleanup() {
  [ -n "$site_pid" ] && kill "$site_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

url="sqlite://$work/demo.sqlite?mode=rwc"
cargo run -q -p bandits --example seed_demo -- "$url"
cargo build -q -p example-site
ROCKET_PORT=8123 ROCKET_LOG_LEVEL=off ROCKET_DATABASES="{bandits={url=\"$url\"}}" \
  target/debug/example-site &
site_pid=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null http://127.0.0.1:8123/bandits/admin/login && break
  sleep 0.2
done

(cd "$work" && npm init -y >/dev/null && npm install --silent playwright-core@1 >/dev/null)
cp scripts/screenshots.mjs "$work/"
OUT="$PWD/docs/images" node "$work/screenshots.mjs"
ls -l docs/images
