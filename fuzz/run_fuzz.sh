#!/bin/bash
# Runs the parser fuzz targets one after another (one libFuzzer process at a
# time: the build machine has 2 cores shared with other work), then minimises
# the corpora into fuzz/corpus/<target>/.
#
#   fuzz/run_fuzz.sh [SECONDS_PER_TARGET=120] [target...]
#
# Environment:
#   FUZZ_SANITIZER   address (default) or none (faster, catches panics only)
#   FUZZ_TOOLCHAIN   empty (default: stable + RUSTC_BOOTSTRAP=1) or e.g. "+nightly"
#   FUZZ_NO_CMIN=1   keep the grown corpus as it is
# Crashes land in fuzz/artifacts/<target>/ (git-ignored); copy the ones worth
# keeping to fuzz/regressions/<target>/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
SECS=${1:-120}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(parse_datagram parse_stream digest_credentials)
SAN=${FUZZ_SANITIZER:-address}
TC=${FUZZ_TOOLCHAIN:-}
if [ -z "$TC" ]; then export RUSTC_BOOTSTRAP=1; fi
# shellcheck disable=SC2086
FUZZ="cargo $TC fuzz"
TORTURE="$HERE/../tests/data/rfc4475"

$FUZZ build -s "$SAN"
mkdir -p artifacts

SCRATCH=$(mktemp -d /tmp/homeline-fuzz.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT

for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "$SCRATCH/$t-seeds" "$SCRATCH/$t-grown"
    cp seeds/"$t"/* "$SCRATCH/$t-seeds/" 2>/dev/null || true
    case "$t" in
        parse_datagram) cp "$TORTURE"/*.dat "$SCRATCH/$t-seeds/" ;;
        parse_stream)
            # first byte = chunking selector, then the stream
            for f in "$TORTURE"/*.dat; do
                { printf '\x05'; cat "$f"; } >"$SCRATCH/$t-seeds/$(basename "$f")"
            done ;;
        digest_credentials) ;;
    esac
    [ -d "regressions/$t" ] && cp "regressions/$t"/* "$SCRATCH/$t-seeds/" 2>/dev/null || true
    cp "corpus/$t"/* "$SCRATCH/$t-grown/" 2>/dev/null || true
    echo "== $t: ${SECS}s (sanitizer $SAN)"
    # -max_len: a datagram is at most 64 KiB, but long inputs mostly slow the
    # search down; 8 KiB covers every seed (longreq.dat is ~4.6 KiB).
    $FUZZ run -s "$SAN" "$t" "$SCRATCH/$t-grown" "$SCRATCH/$t-seeds" -- \
        -max_total_time="$SECS" -max_len=8192 -timeout=10 -dict="$HERE/sip.dict" -rss_limit_mb=2048 \
        -print_final_stats=1 2>&1 | tee "$SCRATCH/$t.log" | grep -E '^(#[0-9]+[[:space:]]+(DONE|INITED)|stat::|==|SUMMARY|Test unit|artifact_prefix|thread .* panicked)' || true
    cp "$SCRATCH/$t.log" "artifacts/$t.log"   # full libFuzzer log (git-ignored)
    # The grown corpus plus the seeds, minimised by cmin (libFuzzer -merge=1)
    # to the smallest set with the same edge coverage, becomes corpus/<target>.
    # Edge coverage only (no hit-count buckets, no comparison features): the
    # same edges with ~4x fewer files, which keeps the committed corpus small.
    cp "$SCRATCH/$t-seeds"/* "$SCRATCH/$t-grown/"
    if [ -z "${FUZZ_NO_CMIN:-}" ]; then
        $FUZZ cmin -s "$SAN" "$t" "$SCRATCH/$t-grown" -- -use_counters=0 -use_cmp=0 -use_value_profile=0 \
            >"artifacts/$t-cmin.log" 2>&1 \
            || echo "   cmin failed, keeping the unminimised corpus (see artifacts/$t-cmin.log)"
    fi
    rm -rf "corpus/$t"; mkdir -p "corpus/$t"
    cp "$SCRATCH/$t-grown"/* "corpus/$t/"
    echo "   corpus/$t: $(ls "corpus/$t" | wc -l) files, $(du -sh "corpus/$t" | cut -f1)"
done
