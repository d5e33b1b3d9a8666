#!/bin/sh
# Cross-build the static, stripped `homeline` binary for a Raspberry Pi.
#
# Usage: image/cross.sh TARGET [extra cargo args...]
#   TARGET: aarch64-unknown-linux-musl | armv7-unknown-linux-musleabihf
# Output: ${CARGO_TARGET_DIR:-target}/TARGET/release/homeline
#
# Recipe (see /work/shared/reference/cross-build.md): Debian's rustc-web + the
# matching rust-web-src library source, RUSTC_BOOTSTRAP=1 + `cargo zigbuild
# -Zbuild-std` (no `rustup target add` needed), zig and cargo-zigbuild from PyPI
# in a venv under .cross-tools/ (gitignored), `-C link-self-contained=no` so zig
# supplies musl's crt1.o/libc.a/libunwind.
#
# Idempotent: installs what is missing (apt needs root), reuses what is there.
# Builds are serialized with a lock on .cross-tools/lock (the machines have 2 cores).
#
# Environment knobs (all optional):
#   CARGO_TARGET_DIR   target dir (default: <repo>/target)
#   CROSS_TOOLS        tools dir (default: <repo>/.cross-tools)
#   CROSS_JOBS         cargo -j (default: cargo's default = number of cores)
#   EXTRA_RUSTFLAGS    appended to the target rustflags
set -eu

BIN=homeline
ZIGLANG_VERSION=0.17.0
CARGO_ZIGBUILD_VERSION=0.24.0
APT_PKGS="rustc-web cargo-web rust-web-src python3-venv"

die() { echo "cross.sh: error: $*" >&2; exit 1; }
log() { echo "cross.sh: $*" >&2; }
now() { date +%s; }
elapsed() { echo "$(( $(now) - $1 ))s"; }

[ $# -ge 1 ] || die "usage: $0 TARGET [cargo args...]  (TARGET: aarch64-unknown-linux-musl | armv7-unknown-linux-musleabihf)"
TARGET=$1; shift
case "$TARGET" in
  aarch64-unknown-linux-musl)      FILE_ARCH='ARM aarch64' ;;
  armv7-unknown-linux-musleabihf)  FILE_ARCH='ARM, EABI5' ;;
  *) die "unsupported target '$TARGET' (use aarch64-unknown-linux-musl or armv7-unknown-linux-musleabihf)" ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ -f Cargo.toml ] && [ -f Cargo.lock ] || die "$ROOT has no Cargo.toml/Cargo.lock"
TOOLS=${CROSS_TOOLS:-$ROOT/.cross-tools}
mkdir -p "$TOOLS"
TOOLS=$(cd "$TOOLS" && pwd)

# One cross build at a time (also protects the tool installation below).
exec 9>"$TOOLS/lock"
if ! flock -n 9; then
  log "another cross build holds $TOOLS/lock; waiting"
  flock 9
fi

T_ALL=$(now)

# ---------------------------------------------------------------- 1. Debian packages
is_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }
missing=""
for p in $APT_PKGS; do is_installed "$p" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages:$missing; as root run: apt-get install -y --no-install-recommends$missing"
  t=$(now)
  export DEBIAN_FRONTEND=noninteractive
  unknown=""
  for p in $missing; do apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || unknown="$unknown $p"; done
  updated=no
  if [ -n "$unknown" ]; then
    log "apt does not know$unknown yet: apt-get update"
    apt-get update || log "warning: apt-get update reported errors (third-party sources?); continuing"
    updated=yes
  fi
  log "apt-get install$missing"
  if ! apt-get install -y --no-install-recommends $missing; then
    [ $updated = no ] || die "apt-get install$missing failed"
    log "install failed (stale package lists?): apt-get update and retry once"
    apt-get update || log "warning: apt-get update reported errors; continuing"
    apt-get install -y --no-install-recommends $missing || die "apt-get install$missing failed"
  fi
  log "apt done in $(elapsed "$t")"
fi

# rustc-web and rust-web-src must be the very same version: -Zbuild-std compiles
# this library source with this compiler, and any mismatch fails deep inside core.
V_RUSTC=$(dpkg-query -W -f='${Version}' rustc-web)
V_SRC=$(dpkg-query -W -f='${Version}' rust-web-src)
[ "$V_RUSTC" = "$V_SRC" ] || die "rustc-web $V_RUSTC != rust-web-src $V_SRC; run: apt-get install -y --no-install-recommends rustc-web cargo-web rust-web-src"
[ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] || die "/usr/bin/rustc or /usr/bin/cargo missing (rustc-web/cargo-web)"
SYSROOT=$(/usr/bin/rustc --print sysroot)
[ -f "$SYSROOT/lib/rustlib/src/rust/library/Cargo.lock" ] \
  || die "$SYSROOT/lib/rustlib/src/rust/library missing (rust-web-src not installed correctly?)"

# ---------------------------------------------------------------- 2. zig + cargo-zigbuild (PyPI, pinned)
VENV=$TOOLS/venv
PINS="ziglang==$ZIGLANG_VERSION cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
if [ ! -x "$VENV/bin/python3" ] || [ "$(cat "$VENV/.pins" 2>/dev/null || true)" != "$PINS" ]; then
  t=$(now)
  [ -x "$VENV/bin/python3" ] || { rm -rf "$VENV"; /usr/bin/python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"; }
  log "pip install $PINS"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check $PINS || die "pip install $PINS failed"
  echo "$PINS" > "$VENV/.pins"
  log "venv done in $(elapsed "$t")"
fi
# Expose exactly `zig` and `cargo-zigbuild` (not the venv's python) in a bin dir
# that goes *after* /usr/bin in PATH.
ZIG_EXE=$("$VENV/bin/python3" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
[ -x "$ZIG_EXE" ] || die "zig executable not found in the ziglang wheel ($ZIG_EXE)"
mkdir -p "$TOOLS/bin"
ln -sf "$ZIG_EXE" "$TOOLS/bin/zig"
ln -sf "$VENV/bin/cargo-zigbuild" "$TOOLS/bin/cargo-zigbuild"

# ---------------------------------------------------------------- 3. environment
# rustup's ~/.cargo/bin (cargo/rustc 1.95, no musl std, ignores -Zbuild-std source)
# must not be used: Debian's toolchain only.
export PATH="/usr/bin:/bin:/usr/sbin:/sbin:$TOOLS/bin"
export RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo RUSTC_BOOTSTRAP=1
unset RUSTUP_TOOLCHAIN RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET 2>/dev/null || true
export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-$TOOLS/zig-cache}"
TV=$(echo "$TARGET" | tr 'a-z-' 'A-Z_')
# musl targets normally link rustup's self-contained crt1.o/libc.a; -Zbuild-std has
# none, so zig supplies them.
export "CARGO_TARGET_${TV}_RUSTFLAGS=-C link-self-contained=no ${EXTRA_RUSTFLAGS:-}"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
export CARGO_TARGET_DIR="$TARGET_DIR"

log "rustc: $(/usr/bin/rustc --version)  cargo: $(/usr/bin/cargo --version)"
log "zig: $(zig version)  $(cargo-zigbuild --version 2>/dev/null || echo cargo-zigbuild)"
log "target dir: $TARGET_DIR"

# ---------------------------------------------------------------- 4. build
t=$(now)
set -- --release --locked --target "$TARGET" --bin "$BIN" -Zbuild-std=std,panic_abort ${CROSS_JOBS:+-j "$CROSS_JOBS"} "$@"
log "cargo zigbuild $*"
/usr/bin/cargo zigbuild "$@" || die "cargo zigbuild failed for $TARGET"
log "build done in $(elapsed "$t")"

# ---------------------------------------------------------------- 5. checks
OUT=$TARGET_DIR/$TARGET/release/$BIN
[ -f "$OUT" ] || die "expected $OUT, not found"
FILE_OUT=$(file -b "$OUT")
echo "file: $FILE_OUT"
case "$FILE_OUT" in *"$FILE_ARCH"*) ;; *) die "$OUT is not a $TARGET binary ($FILE_OUT)" ;; esac
if readelf -lW "$OUT" | grep -q '^ *INTERP '; then
  die "$OUT has a PT_INTERP (dynamically linked): $(readelf -lW "$OUT" | grep -o 'Requesting program interpreter: [^]]*')"
fi
if readelf -dW "$OUT" 2>/dev/null | grep -q '(NEEDED)'; then
  die "$OUT has DT_NEEDED entries: $(readelf -dW "$OUT" | grep '(NEEDED)' | tr -s ' ')"
fi
case "$FILE_OUT" in
  *"statically linked"*|*"static-pie linked"*) ;;
  *) die "file(1) does not report $OUT as statically linked" ;;
esac
case "$FILE_OUT" in *", stripped"*) ;; *) log "warning: $OUT is not stripped (profile.release.strip?)" ;; esac
SIZE=$(stat -c %s "$OUT")
echo "binary: $OUT"
echo "size: $SIZE bytes ($(awk -v s="$SIZE" 'BEGIN { printf "%.2f", s / 1048576 }') MiB), static, no PT_INTERP"
log "total $(elapsed "$T_ALL")"
