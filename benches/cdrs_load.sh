#!/usr/bin/env bash
# GET /api/cdrs under load: 100,000 call records, 50 concurrent clients, three
# queries (first page, a deep page, a filtered page), p50/p95/p99 and req/s.
# See benches/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/benches"
N_CDRS=${N_CDRS:-100000}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
SECS=${SECS:-10}
NO_BUILD=0
for a in "$@"; do
    case "$a" in
        --no-build) NO_BUILD=1 ;;
        --quick) SECS=3 ;;
        *) echo "usage: $0 [--no-build] [--quick]" >&2; exit 2 ;;
    esac
done

die() { echo "cdrs_load: $*" >&2; exit 1; }
for tool in wrk sqlite3 curl sha256sum; do
    command -v "$tool" >/dev/null || die "needs $tool (apt-get install -y wrk sqlite3 curl)"
done

HL_BIN=${HOMELINE_BIN:-$ROOT/target/release/homeline}
if [ -z "${HOMELINE_BIN:-}" ] && [ "$NO_BUILD" = 0 ]; then
    (cd "$ROOT" && flock /tmp/homeline-cargo.lock cargo build --release --bin homeline) || die "build failed"
fi
[ -x "$HL_BIN" ] || die "no binary at $HL_BIN"

W=$(mktemp -d /tmp/homeline-cdrs-bench.XXXXXX)
HL_PID=""
cleanup() {
    if [ -n "$HL_PID" ]; then kill "$HL_PID" 2>/dev/null || true; wait "$HL_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
D="$W/data"

# ---- Seed: an admin with a known session, two numbers, N call records ----
"$HL_BIN" migrate --data-dir "$D" >/dev/null || die "migrate failed"
TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
HASH=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sqlite3 "$D/homeline.db" <<SQL
PRAGMA foreign_keys = ON;
INSERT INTO users (id, email, display_name, password_hash, role, created_at, updated_at)
VALUES (1, 'bench@example.org', 'Bench', 'not-a-hash', 'admin', '$NOW', '$NOW');
INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
VALUES (X'$HASH', 1, '$NOW', '$NOW', '2099-01-01T00:00:00Z');
INSERT INTO dids (id, number, created_at) VALUES (1, '+15551230001', '$NOW'), (2, '+15551230002', '$NOW');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N_CDRS)
INSERT INTO cdrs (call_sid, direction, from_number, to_number, did_id, started_at, ended_at,
                  duration_secs, disposition, hangup_cause)
SELECT 'CA' || printf('%032x', i),
       CASE i % 5 WHEN 0 THEN 'outbound' WHEN 1 THEN 'internal' ELSE 'inbound' END,
       '+1555987' || printf('%04d', abs(random()) % 500),
       CASE i % 2 WHEN 0 THEN '+15551230001' ELSE '+15551230002' END,
       1 + i % 2,
       -- about a year of calls, several sharing a second
       strftime('%Y-%m-%dT%H:%M:%SZ', 1764547200 + (i / 3) * 900, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%SZ', 1764547200 + (i / 3) * 900 + 60, 'unixepoch'),
       60,
       CASE abs(random()) % 10 WHEN 6 THEN 'missed' WHEN 7 THEN 'missed' WHEN 8 THEN 'voicemail'
            WHEN 9 THEN 'no_answer' ELSE 'answered' END,
       'bye'
FROM n;
ANALYZE;
SQL
echo "seeded $(sqlite3 "$D/homeline.db" 'SELECT count(*) FROM cdrs') call records" \
     "($(sqlite3 "$D/homeline.db" "SELECT count(*) FROM cdrs WHERE disposition = 'missed'") missed)"

# ---- Start the release binary on loopback ----
HOMELINE_SIP_TLS_LISTEN="" timeout 600 "$HL_BIN" run --data-dir "$D" --http-listen 127.0.0.1:0 \
    --sip-listen 127.0.0.1:0 --log-level warn --log-target stderr 2>"$W/homeline.log" &
HL_PID=$!
for _ in $(seq 200); do [ -s "$D/run/ports.json" ] && break; sleep 0.1; done
[ -s "$D/run/ports.json" ] || { tail -20 "$W/homeline.log" >&2; die "Homeline did not start"; }
ADDR=$(sed -E 's/.*"http":"([^"]+)".*/\1/' "$D/run/ports.json")
BASE="http://$ADDR"
COOKIE="Cookie: homeline_session=$TOKEN"
echo "binary: $HL_BIN ($("$HL_BIN" version 2>/dev/null | head -1))"

get() { curl -fsS -H "$COOKIE" "$BASE$1"; }
get "/api/cdrs" >/dev/null || die "GET /api/cdrs failed"
# The cursor that continues after a page, if the server hands out cursors.
cursor_after() { get "$1" | sed -nE 's/.*"next_cursor":"([^"]+)".*/\1/p'; }

DEEP_CURSOR=$(cursor_after "/api/cdrs?page=2499&per_page=20")
MISSED_CURSOR=$(cursor_after "/api/cdrs?disposition=missed&page=99&per_page=20")

cat >"$W/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("%8.2f %8.2f %8.2f %8.2f %9.1f %7d %7d\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests / (summary.duration / 1e6),
    e.connect + e.read + e.write + e.status, e.timeout))
end
LUA

run() {
    local label=$1 path=$2
    printf '%-34s' "$label"
    wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --timeout 5s -H "$COOKIE" -s "$W/report.lua" "$BASE$path" \
        | tail -1
}

echo
echo "$CONNS connections, $THREADS wrk threads, ${SECS}s per query; latencies in ms"
printf '%-34s%8s %8s %8s %8s %9s %7s %7s\n' query p50 p95 p99 max req/s errors timeout
run "first page" "/api/cdrs"
if [ -n "$DEEP_CURSOR" ]; then
    run "deep page (keyset, row 50,000)" "/api/cdrs?cursor=$DEEP_CURSOR"
    run "disposition=missed (keyset, p100)" "/api/cdrs?disposition=missed&cursor=$MISSED_CURSOR"
    run "deep page (page=2500, OFFSET)" "/api/cdrs?page=2500"
    run "missed page=100 (OFFSET)" "/api/cdrs?disposition=missed&page=100"
else
    run "deep page (page=2500)" "/api/cdrs?page=2500"
    run "disposition=missed page=100" "/api/cdrs?disposition=missed&page=100"
fi
echo "homeline rss: $(awk '/VmRSS/ {print $2 " kB"}' "/proc/$(pgrep -P "$HL_PID" homeline || echo "$HL_PID")/status" 2>/dev/null || echo '?')"
