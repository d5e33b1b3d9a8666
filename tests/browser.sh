#!/usr/bin/env bash
# Drives the real web UI in Debian's Chromium (playwright-core, no browser
# download): starts the appliance on a free loopback port with a temporary
# data dir, runs ui/tests/smoke.cjs against it, stops it.
#
#   tests/browser.sh BINARY [SCREENSHOT_DIR]
#
# As root it runs inside a private network namespace with only loopback, so
# neither Chromium nor the server can reach anything else.
set -euo pipefail
BIN=$(realpath "$1")
SHOTS=$(realpath -m "${2:-target/browser-shots}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$SHOTS"

DATA="" PID=""
cleanup() {
  [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  [ -n "$DATA" ] && rm -rf "$DATA"
  return 0
}

inner() {
  local addr
  DATA=$(mktemp -d)
  trap cleanup EXIT
  timeout 120 "$BIN" run --data-dir "$DATA" --http-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 --sip-tls-listen 127.0.0.1:0 \
    --log-target stderr 2>"$SHOTS/server.log" &
  PID=$!
  for _ in $(seq 1 200); do
    [ -s "$DATA/run/ports.json" ] && break
    sleep 0.05
  done
  addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$DATA/run/ports.json")
  (cd "$ROOT/ui" && timeout 90 node tests/smoke.cjs "http://$addr" "$SHOTS")
}

if [ "${BROWSER_TEST_INNER:-}" = 1 ]; then
  inner
elif [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
  BROWSER_TEST_INNER=1 exec unshare -n bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$BIN" "$SHOTS"
else
  echo "browser test: not root or no unshare; running without a private network namespace" >&2
  inner
fi
