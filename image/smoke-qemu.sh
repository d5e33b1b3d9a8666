#!/bin/sh
# Smoke-test a cross-built homeline binary under qemu-user, on 127.0.0.1 only.
#
# Usage: image/smoke-qemu.sh BINARY [RUNNER] [version-only]
#   RUNNER: qemu-aarch64-static | qemu-arm-static | native | auto (default: chosen
#           from `file BINARY`: aarch64 -> qemu-aarch64-static, 32-bit ARM ->
#           qemu-arm-static, x86-64 -> run natively)
#   version-only (or SMOKE_STEPS=version): only step 1 (e.g. for armv7)
#
# Steps:
#   1. `BINARY version` exits 0 and prints a line starting with "homeline ".
#   2. `BINARY run --data-dir $TMP --http-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 --sip-tls-listen 127.0.0.1:0`
#      in the background (under `timeout 120`); wait up to 60 s for
#      $TMP/run/ports.json ({"http": "127.0.0.1:P", "sip_udp": ..., ...}).
#   3. GET http://$http/health must return JSON with "status": "ok".
#   4. If ports.json has sip_udp: send a SIP OPTIONS over UDP and print any answer
#      within 5 s (informational only; no answer is not a failure yet).
#   5. SIGTERM; the process must exit with status 0 within 20 s.
# The temp dir is removed and the process group killed on any exit (trap).
# qemu-user-static is installed with apt if missing (needs root).
set -eu

die() { echo "smoke: FAIL: $*" >&2; exit 1; }
log() { echo "smoke: $*"; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

[ $# -ge 1 ] || { echo "usage: $0 BINARY [qemu-aarch64-static|qemu-arm-static|native|auto] [version-only]" >&2; exit 2; }
BIN=$1; shift
RUNNER=auto
STEPS=${SMOKE_STEPS:-all}
for a in "$@"; do
  case "$a" in
    version-only|--version-only) STEPS=version ;;
    *) RUNNER=$a ;;
  esac
done
[ -f "$BIN" ] || die "binary $BIN not found"
case "$BIN" in /*) ;; *) BIN=$PWD/$BIN ;; esac

FILE_OUT=$(file -b "$BIN")
if [ "$RUNNER" = auto ]; then
  case "$FILE_OUT" in
    *"ARM aarch64"*) RUNNER=qemu-aarch64-static ;;
    *"32-bit"*"ARM"*) RUNNER=qemu-arm-static ;;
    *"x86-64"*) RUNNER=native ;;
    *) die "cannot pick a runner for: $FILE_OUT (pass one as 2nd argument)" ;;
  esac
fi
if [ "$RUNNER" = native ]; then
  set --
else
  if ! command -v "$RUNNER" >/dev/null 2>&1; then
    case "$RUNNER" in
      qemu-*-static)
        [ "$(id -u)" = 0 ] || die "$RUNNER missing; as root run: apt-get install -y --no-install-recommends qemu-user-static"
        log "installing qemu-user-static"
        export DEBIAN_FRONTEND=noninteractive
        apt-cache show --no-all-versions qemu-user-static >/dev/null 2>&1 \
          || apt-get update || log "warning: apt-get update reported errors; continuing"
        apt-get install -y --no-install-recommends qemu-user-static >/dev/null \
          || die "apt-get install qemu-user-static failed"
        ;;
    esac
    command -v "$RUNNER" >/dev/null 2>&1 || die "runner $RUNNER not found"
  fi
  set -- "$(command -v "$RUNNER")"
fi
# "$@" is now the runner prefix (empty for native)
log "binary: $BIN"
log "file: $FILE_OUT"
log "runner: ${1:-native}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/homeline-smoke.XXXXXX")
DATA=$WORK/data
LOG=$WORK/homeline.log
mkdir -p "$DATA"
PID=""
cleanup() {
  rc=$?
  trap - EXIT INT TERM
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    # `timeout` runs in its own process group: kill the group (timeout + qemu + binary)
    kill -TERM -- "-$PID" 2>/dev/null || kill -TERM "$PID" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$PID" 2>/dev/null || kill -KILL "$PID" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ] && [ -s "$LOG" ]; then
    echo "smoke: ---- last lines of homeline output ----" >&2
    tail -n 40 "$LOG" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
t0=$(date +%s)

# ---------------------------------------------------------------- 1. version
set +e
VOUT=$(timeout 60 "$@" "$BIN" version 2>&1)
VRC=$?
set -e
printf '%s\n' "$VOUT" | sed 's/^/  | /'
[ "$VRC" = 0 ] || die "'homeline version' exited with status $VRC"
printf '%s\n' "$VOUT" | grep -q '^homeline ' || die "'homeline version' printed no line starting with 'homeline '"
log "version: OK ($(printf '%s\n' "$VOUT" | grep -m1 '^homeline '))"
if [ "$STEPS" = version ]; then
  log "PASS (version only) in $(( $(date +%s) - t0 ))s"
  exit 0
fi

# ---------------------------------------------------------------- 2. run + ports.json
timeout 120 "$@" "$BIN" run --data-dir "$DATA" --http-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 --sip-tls-listen 127.0.0.1:0 >"$LOG" 2>&1 &
PID=$!
PORTS=$DATA/run/ports.json
read_ports() {
  "$PY" - "$PORTS" <<'EOF' 2>/dev/null
import json, sys
p = json.load(open(sys.argv[1]))
http = p["http"]
assert isinstance(http, str) and http.startswith("127.0.0.1:"), http
sip = p.get("sip_udp") or ""
print(http, sip)
EOF
}
t=$(date +%s); PORTS_LINE=""
while :; do
  if [ -f "$PORTS" ] && PORTS_LINE=$(read_ports) && [ -n "$PORTS_LINE" ]; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then
    set +e; wait "$PID"; rc=$?; set -e; PID=""
    die "homeline run exited (status $rc) before writing $PORTS"
  fi
  [ $(( $(date +%s) - t )) -lt 60 ] || {
    [ -f "$PORTS" ] && die "$PORTS is not valid (need JSON with \"http\": \"127.0.0.1:PORT\"): $(head -c 300 "$PORTS")"
    die "no $PORTS after 60 s"
  }
  sleep 0.5
done
HTTP=${PORTS_LINE%% *}
SIP_UDP=${PORTS_LINE#* }
log "started in $(( $(date +%s) - t ))s; ports.json: $(tr -d '\n' < "$PORTS")"

# ---------------------------------------------------------------- 3. /health
set +e
HEALTH=$(curl -fsS --noproxy '*' --max-time 15 "http://$HTTP/health" 2>&1)
HRC=$?
set -e
[ "$HRC" = 0 ] || die "GET http://$HTTP/health failed: $HEALTH"
printf '%s' "$HEALTH" | "$PY" -c 'import json, sys; d = json.load(sys.stdin); sys.exit(0 if isinstance(d, dict) and d.get("status") == "ok" else 1)' \
  || die "/health did not return JSON with \"status\":\"ok\": $HEALTH"
log "health: OK $HEALTH"

# ---------------------------------------------------------------- 4. SIP OPTIONS over UDP (informational)
if [ -n "$SIP_UDP" ]; then
  "$PY" - "$SIP_UDP" <<'EOF' || true
import socket, sys, time, uuid
host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
lport = s.getsockname()[1]
branch = "z9hG4bK" + uuid.uuid4().hex[:16]
tag = uuid.uuid4().hex[:8]
call_id = uuid.uuid4().hex + "@127.0.0.1"
msg = (
    f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
    f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
    "Max-Forwards: 70\r\n"
    f"From: <sip:smoke@127.0.0.1>;tag={tag}\r\n"
    f"To: <sip:{host}:{port}>\r\n"
    f"Call-ID: {call_id}\r\n"
    "CSeq: 1 OPTIONS\r\n"
    f"Contact: <sip:smoke@127.0.0.1:{lport}>\r\n"
    "Accept: application/sdp\r\n"
    "User-Agent: homeline-smoke\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)
s.sendto(msg.encode(), (host, port))
deadline = time.monotonic() + 5
answered = False
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data, _ = s.recvfrom(65535)
    except (socket.timeout, OSError):
        break
    text = data.decode("utf-8", "replace")
    if not text.startswith("SIP/2.0 "):
        print("smoke: sip: ignoring a non-response datagram: " + text.splitlines()[0][:80] if text else "(empty)")
        continue
    answered = True
    status = text.split("\r\n", 1)[0]
    same = f"Call-ID: {call_id}" in text or f"i: {call_id}" in text
    print(f"smoke: sip: answered: {status} (Call-ID {'matches' if same else 'DOES NOT match'})")
    for line in text.rstrip("\r\n").split("\r\n"):
        print("  | " + line)
    code = status.split(" ")[1] if len(status.split(" ")) > 1 else ""
    if not code.startswith("1"):
        break
if not answered:
    print("smoke: sip: no answer (SIP core not present)")
EOF
else
  log "sip: ports.json has no sip_udp; OPTIONS check skipped"
fi

# ---------------------------------------------------------------- 5. SIGTERM -> clean exit
kill -0 "$PID" 2>/dev/null || { set +e; wait "$PID"; rc=$?; set -e; PID=""; die "homeline exited on its own (status $rc) before SIGTERM"; }
# SIGTERM to `timeout`, which forwards it to qemu, which forwards it to the binary
kill -TERM "$PID"
t=$(date +%s)
while kill -0 "$PID" 2>/dev/null; do
  [ $(( $(date +%s) - t )) -lt 20 ] || die "still running 20 s after SIGTERM"
  sleep 0.2
done
set +e; wait "$PID"; rc=$?; set -e; PID=""
case "$rc" in
  0) ;;
  124) die "timeout 120 expired (the whole run took too long)" ;;
  143) die "killed by SIGTERM (exit status 143): no graceful shutdown handler?" ;;
  *) die "exit status $rc after SIGTERM (want 0)" ;;
esac
log "sigterm: clean exit (status 0) after $(( $(date +%s) - t ))s"
log "PASS in $(( $(date +%s) - t0 ))s"
