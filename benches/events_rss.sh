#!/usr/bin/env bash
# What open GET /api/events streams cost in resident memory: the release
# binary's VmRSS before and with N streams open (curl -N clients), twice, the
# first round also paying for allocator arenas and thread stacks touched for
# the first time. See benches/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N_STREAMS:-50}
HL_BIN=${HOMELINE_BIN:-$ROOT/target/release/homeline}
if [ -z "${HOMELINE_BIN:-}" ] && [ "${1:-}" != --no-build ]; then
    (cd "$ROOT" && flock /tmp/homeline-cargo.lock cargo build --release --bin homeline) || exit 1
fi
for tool in curl sqlite3 sha256sum; do command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }; done

W=$(mktemp -d /tmp/homeline-events-rss.XXXXXX)
HL_PID=""
CLIENTS=()
stop_clients() { for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${CLIENTS[@]}"; do wait "$p" 2>/dev/null || true; done; CLIENTS=(); }
cleanup() {
    stop_clients
    if [ -n "$HL_PID" ]; then kill "$HL_PID" 2>/dev/null || true; wait "$HL_PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT
D="$W/data"
"$HL_BIN" migrate --data-dir "$D" >/dev/null
TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
HASH=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sqlite3 "$D/homeline.db" <<SQL
INSERT INTO users (id, email, display_name, password_hash, role, created_at, updated_at)
VALUES (1, 'bench@example.org', 'Bench', 'not-a-hash', 'admin', '$NOW', '$NOW');
INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
VALUES (X'$HASH', 1, '$NOW', '$NOW', '2099-01-01T00:00:00Z');
SQL
HOMELINE_SIP_TLS_LISTEN="" timeout 300 "$HL_BIN" run --data-dir "$D" --http-listen 127.0.0.1:0 \
    --sip-listen 127.0.0.1:0 --log-level warn --log-target stderr 2>"$W/homeline.log" &
HL_PID=$!
for _ in $(seq 200); do [ -s "$D/run/ports.json" ] && break; sleep 0.1; done
[ -s "$D/run/ports.json" ] || { tail "$W/homeline.log" >&2; exit 1; }
ADDR=$(sed -E 's/.*"http":"([^"]+)".*/\1/' "$D/run/ports.json")
PID=$(pgrep -P "$HL_PID" -x homeline || echo "$HL_PID")
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }

curl -fsS -o /dev/null -H "Cookie: homeline_session=$TOKEN" "http://$ADDR/api/me"
for round in 1 2 3; do
    sleep 1
    before=$(rss)
    for i in $(seq "$N"); do
        curl -sN -H "Cookie: homeline_session=$TOKEN" "http://$ADDR/api/events" >"$W/s$i.out" 2>/dev/null &
        CLIENTS+=($!)
    done
    # Every stream has its first frame (retry:) before we measure.
    for _ in $(seq 100); do
        n=$(grep -l '^retry:' "$W"/s*.out 2>/dev/null | wc -l)
        [ "$n" -ge "$N" ] && break
        sleep 0.1
    done
    sleep 1
    with=$(rss)
    echo "round $round: rss ${before} kB -> ${with} kB with $n streams open: +$((with - before)) kB" \
         "($(( (with - before) * 1024 / N )) bytes per stream)"
    stop_clients
    rm -f "$W"/s*.out
done
