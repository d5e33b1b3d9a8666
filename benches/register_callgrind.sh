#!/bin/bash
# Instructions per REGISTER-with-digest registration, repeatably: Homeline
# under valgrind's callgrind, the phones registered once (warm-up), the
# counters zeroed, N registrations at RATE/s (benches/register_load.xml),
# the counters dumped. CPU time on a shared machine moves +-15 % between
# runs; this count moves well under 1 %, so it compares two builds.
#
#   benches/register_callgrind.sh [BIN]     (default target/release/homeline)
#   N=2000 RATE=100 OUT=/tmp/hl-callgrind benches/register_callgrind.sh
#
# Prints the instructions (user space only: no kernel, no sipp) per
# registration; OUT.<pid>.1 is the dump (callgrind_annotate it; build with
# CARGO_PROFILE_RELEASE_STRIP=none for symbols). Needs valgrind, sipp and
# the provisioning helper (benches/provision, built by register_load.sh).
# Binds 127.0.0.1 only (ports 25160/25191); processes stopped by PID.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B="$ROOT/benches"
BIN=${1:-$ROOT/target/release/homeline}
RATE=${RATE:-100}; N=${N:-2000}; OUT=${OUT:-/tmp/hl-callgrind}
PROV="$B/provision/target/debug/homeline-bench-provision"
for tool in valgrind callgrind_control sipp python3; do
    command -v $tool >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
[ -x "$PROV" ] || { echo "build benches/provision first (benches/register_load.sh does)" >&2; exit 1; }
W=$(mktemp -d /tmp/homeline-callgrind.XXXXXX)
VP=""
cleanup() { [ -n "$VP" ] && kill "$VP" 2>/dev/null; [ -n "$VP" ] && wait "$VP" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
{
    echo SEQUENTIAL
    for i in $(seq 1 100); do
        printf 'u%04d;pw-%04d-Kx7;[authentication username=u%04d password=pw-%04d-Kx7]\n' "$i" "$i" "$i" "$i"
    done
} >"$W/users.csv"
"$PROV" "$W/d" "$W/users.csv" >/dev/null || { echo "provisioning failed" >&2; exit 1; }
HOMELINE_SIP_GUARD_MAX_REQUESTS=1000000 HOMELINE_SIP_GUARD_MAX_AUTH_FAILURES=1000000 HOMELINE_SIP_TLS_LISTEN="" \
    timeout 900 valgrind --tool=callgrind --callgrind-out-file="$OUT.%p" "$BIN" run --data-dir "$W/d" \
    --http-listen 127.0.0.1:0 --sip-listen 127.0.0.1:25160 --log-target stderr 2>"$W/homeline.log" &
VP=$!
for _ in $(seq 1 300); do [ -s "$W/d/run/ports.json" ] && break; sleep 0.2; done
[ -s "$W/d/run/ports.json" ] || { tail "$W/homeline.log" >&2; echo "Homeline did not start" >&2; exit 1; }
PID=$(pgrep -P "$VP" | head -1)
sipp_run() {  # RATE CALLS
    (cd "$W" && timeout 600 sipp 127.0.0.1:25160 -sf "$B/register_load.xml" -inf users.csv -i 127.0.0.1 -p 25191 \
        -t u1 -r "$1" -rp 1000 -m "$2" -l 2000 -recv_timeout 10000 -timeout 300s -nostdin \
        -trace_stat -stf stat.csv </dev/null >sipp.out 2>&1)
}
sipp_run 50 100 || { tail "$W/sipp.out" >&2; echo "warm-up failed" >&2; exit 1; }
callgrind_control -z "$PID" >/dev/null
rm -f "$W/stat.csv"
sipp_run "$RATE" "$N"; rc=$?
callgrind_control -d "$PID" >/dev/null
python3 - "$W/stat.csv" "$OUT.$PID.1" "$rc" <<'PY'
import sys
rows = [l.strip() for l in open(sys.argv[1]) if l.strip()]
d = dict(zip(rows[0].split(";"), rows[-1].split(";")))
ok = int(d["SuccessfulCall(C)"])
ir = next(int(l.split()[1]) for l in open(sys.argv[2]) if l.startswith("totals:"))
print(f"registrations ok {ok}, failed {d['FailedCall(C)']}, retransmissions {d['Retransmissions(C)']} (sipp rc {sys.argv[3]})")
print(f"instructions {ir:,} = {ir / max(ok, 1):,.0f} per registration ({sys.argv[2]})")
PY
