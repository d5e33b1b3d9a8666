#!/bin/bash
# REGISTER-with-digest load: Homeline and the reference kamailio side by side.
#
#   benches/register_load.sh [--quick] [--no-build] [--only homeline|kamailio]
#
# For each target: provision N phones (u0001..), start the registrar on
# 127.0.0.1, register every phone once (warm-up, must succeed), then run sipp
# (benches/register_load.xml: REGISTER -> 401 -> REGISTER+digest -> 200) at
# increasing offered rates for a fixed time per step and report, per step:
# successful registrations/s, failed calls, UDP retransmissions, the latency
# percentiles of the 401->200 round trip (and of REGISTER->401) and
# the registrar's CPU time per registration and its peak resident set so far.
#
#   --quick      ~30 s smoke run, plus any build (2 steps of 5 s per target, kamailio -n 2)
#   (default)    ~9 minutes: 5 steps x 30 s each for Homeline, kamailio -n 1, kamailio -n 2
#   --no-build   use target/release/homeline as it is (default: cargo build --release)
#   --only X     run only homeline or only kamailio
#
# Environment: N_USERS (100), HL_PORT (25060), KAM_PORT (25070), SIPP_PORT
# (25091), RATES ("250 500 1000 2000 3000"), STEP_SECS (30), KAM_CHILDREN
# ("1 2"), HOMELINE_BIN (a prebuilt binary), KEEP=1 keeps the scratch dir.
#
# Safety: everything binds 127.0.0.1 only; every process runs under `timeout`
# and is stopped by its PID on exit (never pkill). Needs: sipp (Debian
# sip-tester), kamailio, python3, cargo.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/benches"
REF_CFG=${REF_CFG:-$ROOT/../shared/peers/kamailio/kamailio.cfg}
QUICK=0; BUILD=1; ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-build) BUILD=0 ;;
        --only) ONLY=${2:?--only needs homeline or kamailio}; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

N_USERS=${N_USERS:-100}
HL_PORT=${HL_PORT:-25060}
KAM_PORT=${KAM_PORT:-25070}
SIPP_PORT=${SIPP_PORT:-25091}
if [ $QUICK = 1 ]; then
    RATES=${RATES:-"300 1500"}; STEP_SECS=${STEP_SECS:-5}; KAM_CHILDREN=${KAM_CHILDREN:-"2"}
else
    # Steps of 30 s, back to back on one server: a UDP non-INVITE server
    # transaction lives 32 s (Timer J) after its answer, so the later steps
    # run with a steady-state transaction table, as a real registrar does.
    RATES=${RATES:-"250 500 1000 2000 3000"}; STEP_SECS=${STEP_SECS:-30}; KAM_CHILDREN=${KAM_CHILDREN:-"1 2"}
fi
LIMIT=${LIMIT:-2000}        # sipp -l: most registrations in flight at once
SCEN="$BENCH/register_load.xml"

die() { echo "register_load: $*" >&2; exit 1; }
for tool in sipp python3; do command -v $tool >/dev/null || die "$tool is missing (apt-get install sip-tester python3)"; done
if [ "$ONLY" != homeline ]; then
    command -v kamailio >/dev/null || die "kamailio is missing (apt-get install kamailio)"
    [ -r "$REF_CFG" ] || die "reference kamailio.cfg not found at $REF_CFG (set REF_CFG)"
fi

W=$(mktemp -d /tmp/homeline-regload.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then echo "scratch dir kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() {  # UDP and TCP on 127.0.0.1
    python3 - "$1" <<'EOF'
import socket, sys
p = int(sys.argv[1])
for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
EOF
}
for p in $HL_PORT $KAM_PORT $SIPP_PORT; do port_free $p || die "port 127.0.0.1:$p is in use (set HL_PORT/KAM_PORT/SIPP_PORT)"; done

# ---- users -------------------------------------------------------------------
{
    echo SEQUENTIAL
    # user;password;[authentication ...] (see register_load.xml for why)
    for i in $(seq 1 "$N_USERS"); do
        printf 'u%04d;pw-%04d-Kx7;[authentication username=u%04d password=pw-%04d-Kx7]\n' "$i" "$i" "$i" "$i"
    done
} >"$W/users.csv"

# ---- Homeline binary and provisioning helper -----------------------------------
HL_BIN=${HOMELINE_BIN:-$ROOT/target/release/homeline}
if [ "$ONLY" != kamailio ]; then
    if [ -z "${HOMELINE_BIN:-}" ] && [ $BUILD = 1 ]; then
        echo "building Homeline (release)..."
        (cd "$ROOT" && timeout 1800 cargo build --release --bin homeline -q) || die "cargo build --release failed"
    fi
    [ -x "$HL_BIN" ] || die "no Homeline binary at $HL_BIN (drop --no-build)"
    PROV="$BENCH/provision"
    PROV_BIN="$PROV/target/debug/homeline-bench-provision"
    echo "building the provisioning helper (benches/provision, debug)..."
    # Follow the main project's dependency versions (and reuse its lock file).
    cp "$ROOT/Cargo.lock" "$PROV/Cargo.lock"
    (cd "$PROV" && timeout 1800 cargo build -q) || die "building benches/provision failed"
fi

peak_rss_kb() {  # the largest VmHWM (peak resident set, kB) of a process and its direct children
    python3 - "$@" <<'EOF'
import os, sys
roots = {int(p) for p in sys.argv[1:]}
peak = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        stat = open(f"/proc/{pid}/stat").read()
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        continue
    ppid = int(stat[stat.rindex(")") + 2:].split()[1])
    if int(pid) in roots or ppid in roots:
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
print(peak)
EOF
}

cpu_ticks() {  # utime+stime (clock ticks) of a process and its direct children
    python3 - "$@" <<'EOF'
import os, sys
roots = {int(p) for p in sys.argv[1:]}
total = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    f = stat[stat.rindex(")") + 2:].split()
    ppid, utime, stime = int(f[1]), int(f[11]), int(f[12])
    if int(pid) in roots or ppid in roots:
        total += utime + stime
print(total)
EOF
}
HZ=$(getconf CLK_TCK)

# run_sipp NAME PORT RATE SECS -> writes $W/NAME/{stat.csv,*_rtt.csv,sipp.out,rc}
run_sipp() {
    local name=$1 port=$2 rate=$3 secs=$4 calls
    calls=$((rate * secs))
    mkdir -p "$W/$name"
    (
        cd "$W/$name" || exit 1
        /usr/bin/time -f "%U %S" -o sipp.cpu \
        timeout $((secs * 3 + 60)) sipp "127.0.0.1:$port" -sf "$SCEN" -inf "$W/users.csv" \
            -i 127.0.0.1 -p "$SIPP_PORT" -t u1 \
            -r "$rate" -rp 1000 -m "$calls" -l "$LIMIT" \
            -recv_timeout 10000 -timeout $((secs * 3 + 30))s \
            -max_recv_loops 10000 -max_sched_loops 10000 \
            -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 200 -trace_err \
            -nostdin </dev/null >sipp.out 2>&1
        echo $? >rc
    )
}

# measure TARGET_LABEL PORT SERVER_PIDS...
measure() {
    local label=$1 port=$2; shift 2
    local pids=("$@") rate t0 t1 l0
    echo "warm-up: registering $N_USERS phones on $label"
    run_sipp "$label-warmup" "$port" 100 $(((N_USERS + 99) / 100))
    if [ "$(cat "$W/$label-warmup/rc")" != 0 ]; then
        echo "warm-up against $label FAILED (sipp rc $(cat "$W/$label-warmup/rc")):" >&2
        tail -20 "$W/$label-warmup/sipp.out" >&2
        tail -20 "$W/$label-warmup/"*errors.log 2>/dev/null >&2
        return 1
    fi
    python3 "$BENCH/register_load_report.py" --header
    local i=0
    for rate in $RATES; do
        i=$((i + 1))
        l0=$(cut -d' ' -f1 /proc/loadavg)
        t0=$(cpu_ticks "${pids[@]}")
        run_sipp "$label-s$i" "$port" "$rate" "$STEP_SECS"
        t1=$(cpu_ticks "${pids[@]}")
        echo "$label $rate $((t1 - t0)) $HZ $l0 $i $(peak_rss_kb "${pids[@]}")" >"$W/$label-s$i/meta"
        python3 "$BENCH/register_load_report.py" --row "$W/$label-s$i" || true
    done
}

wait_for_file() { local f=$1 n=0; while [ ! -s "$f" ] && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done; [ -s "$f" ]; }
TOTAL_TIMEOUT=$((900 + STEP_SECS * 40))

# ---- Homeline ----------------------------------------------------------------
if [ "$ONLY" != kamailio ]; then
    D="$W/homeline-data"
    "$PROV_BIN" "$D" "$W/users.csv" >/dev/null || die "provisioning failed"
    # Flood guard raised (everything comes from 127.0.0.1), TLS off (its
    # default listen address is 0.0.0.0:5061).
    HOMELINE_SIP_GUARD_MAX_REQUESTS=1000000 HOMELINE_SIP_GUARD_MAX_AUTH_FAILURES=1000000 \
    HOMELINE_SIP_TLS_LISTEN="" \
        timeout "$TOTAL_TIMEOUT" "$HL_BIN" run --data-dir "$D" --http-listen 127.0.0.1:0 \
        --sip-listen "127.0.0.1:$HL_PORT" --log-target stderr 2>"$W/homeline.log" &
    HL_TIMEOUT_PID=$!
    PIDS+=("$HL_TIMEOUT_PID")
    wait_for_file "$D/run/ports.json" || { tail -20 "$W/homeline.log" >&2; die "Homeline did not start"; }
    HL_PID=$(ps -o pid= --ppid "$HL_TIMEOUT_PID" | tr -d ' ')
    [ -n "$HL_PID" ] || die "cannot find the Homeline process"
    measure homeline "$HL_PORT" "$HL_PID" || echo "homeline: measurement aborted" >&2
    kill "$HL_TIMEOUT_PID" 2>/dev/null; wait "$HL_TIMEOUT_PID" 2>/dev/null
    # (the log has ANSI colours even when not a terminal: strip them first)
    echo "homeline log: $(sed 's/\x1b\[[0-9;]*m//g' "$W/homeline.log" | grep -cE ' (WARN|ERROR) ') WARN/ERROR lines; most frequent:" >&2
    sed 's/\x1b\[[0-9;]*m//g' "$W/homeline.log" | grep -E ' (WARN|ERROR) ' | cut -d' ' -f2- | sort | uniq -c | sort -rn | head -3 >&2
fi

# ---- kamailio ----------------------------------------------------------------
if [ "$ONLY" != homeline ]; then
    # A copy of the reference cfg: our users in its htable (instead of the five
    # demo users), realm "homeline", log level NOTICE (the reference logs
    # every request at INFO, which Homeline does not).
    python3 - "$REF_CFG" "$W/kamailio.cfg" "$W/users.csv" <<'EOF'
import re, sys
src, dst, users = sys.argv[1:4]
cfg = open(src).read()
rows = [l.strip().split(";")[:2] for l in open(users) if ";" in l]
body = "".join(f'\t$sht(users=>{u}) = "{p}";\n' for u, p in rows)
cfg, n = re.subn(r"(event_route\[htable:mod-init\]\s*\{\n)(.*?)(\n\})", lambda m: m.group(1) + body.rstrip("\n") + m.group(3), cfg, flags=re.S)
assert n == 1, "htable init block not found"
cfg = cfg.replace('"users=>size=4;"', '"users=>size=8;"')
cfg = re.sub(r"(?m)^debug=\d+", "debug=1", cfg)
open(dst, "w").write(cfg)
EOF
    for kc in $KAM_CHILDREN; do
        KR="$W/kamrun-$kc"; mkdir -p "$KR"
        kamailio -c -f "$W/kamailio.cfg" >"$KR/check.log" 2>&1 || { tail "$KR/check.log" >&2; die "kamailio cfg check failed"; }
        timeout -s TERM "$TOTAL_TIMEOUT" kamailio -f "$W/kamailio.cfg" -DD -E -n "$kc" -Y "$KR" -P "$KR/kamailio.pid" -m 64 -M 8 \
            -A "LISTEN_UDP=udp:127.0.0.1:$KAM_PORT" -A "LISTEN_TCP=tcp:127.0.0.1:$KAM_PORT" \
            -A "CTL_SOCK=\"unix:$KR/kamailio_ctl\"" -A "RPC_FIFO=\"$KR/kamailio_rpc.fifo\"" \
            -A 'REALM="homeline"' >"$KR/kamailio.log" 2>&1 &
        KAM_TIMEOUT_PID=$!
        PIDS+=("$KAM_TIMEOUT_PID")
        wait_for_file "$KR/kamailio.pid" || { tail -20 "$KR/kamailio.log" >&2; die "kamailio did not start"; }
        sleep 1
        measure "kamailio-n$kc" "$KAM_PORT" "$(cat "$KR/kamailio.pid")" || echo "kamailio: measurement aborted" >&2
        kill "$KAM_TIMEOUT_PID" 2>/dev/null; wait "$KAM_TIMEOUT_PID" 2>/dev/null
        sleep 1
    done
fi

echo
python3 "$BENCH/register_load_report.py" --summary "$W"
echo "(machine: $(nproc) CPUs, load average now $(cut -d' ' -f1-3 /proc/loadavg); KEEP=1 keeps the sipp/server logs)"
