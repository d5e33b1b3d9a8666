#!/bin/sh
# Guard the dependency tree of the static cross build (image/cross.sh).
#
# Usage: image/check-deps.sh [path/to/Cargo.lock]     (default: <repo>/Cargo.lock)
#
# Fails (exit 1, naming the package and who pulls it in) if Cargo.lock contains a
# crate that needs a host/system C library or a C build tool that the zig-based
# cross build does not have: OpenSSL, native-tls, aws-lc, libsrtp, bindgen
# (needs libclang), cmake.
#
# Also lists every crate whose build script compiles C through the `cc` crate.
# Only those known to cross-build with `zig cc` are accepted (CC_ALLOWED below);
# a new one fails until someone has verified it with image/cross.sh for both
# targets and added it here.
#
# Cargo.lock lists the dependencies of every platform and of optional features
# that are resolved, so this is deliberately conservative. Parsed with python3's
# tomllib (Python >= 3.11; Debian 12's /usr/bin/python3 is 3.11).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOCK=${1:-$ROOT/Cargo.lock}
[ -f "$LOCK" ] || { echo "check-deps: error: $LOCK not found" >&2; exit 1; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# The C-compiling crates are taken from what is really built for the two Pi
# targets (`cargo metadata --filter-platform`, fast, no build): Cargo.lock alone also
# lists e.g. rusqlite's wasm32-only sqlite-wasm-rs. Without a working cargo the
# script falls back to Cargo.lock.
META=$(mktemp)
trap 'rm -f "$META"' EXIT
if ! (cd "$(dirname "$LOCK")" && ${CARGO:-cargo} metadata --locked --format-version 1 \
      --filter-platform aarch64-unknown-linux-musl --filter-platform armv7-unknown-linux-musleabihf) >"$META" 2>"$META.err"; then
  echo "check-deps: note: cargo metadata failed, using Cargo.lock only: $(tail -n 1 "$META.err")" >&2
  : >"$META"
fi
rm -f "$META.err"

"$PY" - "$LOCK" "$META" <<'EOF'
import json, sys, tomllib

DENY = {
    "openssl-sys": "links the system OpenSSL (use rustls + ring)",
    "openssl": "wraps the system OpenSSL (use rustls + ring)",
    "openssl-src": "builds OpenSSL from source with perl/make (use rustls + ring)",
    "native-tls": "uses the system TLS library (OpenSSL on Linux)",
    "aws-lc-sys": "aws-lc: big C/asm build, cmake/bindgen on some targets (use ring)",
    "aws-lc-fips-sys": "aws-lc FIPS: needs cmake + Go",
    "aws-lc-rs": "pulls aws-lc-sys (use rustls with the ring provider)",
    "srtp": "builds libsrtp for the host, not the target; needs libclang",
    "srtp2-sys": "builds/links libsrtp2 (C, bindgen)",
    "libsrtp2-sys": "builds/links libsrtp2 (C, bindgen)",
    "bindgen": "needs libclang on the build machine",
    "cmake": "needs cmake, which the cross build does not install",
}
# Build scripts that compile C with `cc` and are known to cross-build with zig cc
# for aarch64-unknown-linux-musl and armv7-unknown-linux-musleabihf.
CC_ALLOWED = {
    "ring": "C/asm crypto primitives",
    "libsqlite3-sys": "bundled SQLite (rusqlite feature `bundled`)",
}

# cc users that Cargo.lock lists but that are never built for a Linux target; only
# used when cargo metadata is not available to filter by platform.
NOT_FOR_PI = {
    "sqlite-wasm-rs": "wasm32-only dependency of rusqlite",
}

path = sys.argv[1]
with open(path, "rb") as f:
    lock = tomllib.load(f)
pkgs = lock.get("package", [])

def dep_name(d):
    return d.split(" ", 1)[0]

# reverse edges: who depends on whom (dependencies include build-dependencies)
rdeps = {}
for p in pkgs:
    for d in p.get("dependencies", []):
        rdeps.setdefault(dep_name(d), set()).add(p["name"])

def why(name):
    users = sorted(rdeps.get(name, ()))
    return "pulled in by " + ", ".join(users) if users else "direct dependency"

names = {p["name"] for p in pkgs}
errors = []
for name in sorted(names & DENY.keys()):
    vers = sorted(p["version"] for p in pkgs if p["name"] == name)
    errors.append(f"denied crate {name} {'/'.join(vers)} ({why(name)}): {DENY[name]}")

lock_cc_users = {p["name"] for p in pkgs if any(dep_name(d) == "cc" for d in p.get("dependencies", []))}
scope = "from Cargo.lock"
cc_users = lock_cc_users - NOT_FOR_PI.keys()
if lock_cc_users & NOT_FOR_PI.keys():
    scope += "; ignored as not built for Linux: " + ", ".join(sorted(lock_cc_users & NOT_FOR_PI.keys()))
meta_path = sys.argv[2]
with open(meta_path) as f:
    meta_text = f.read()
if meta_text.strip():
    meta = json.loads(meta_text)
    id2name = {p["id"]: p["name"] for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    # everything built for the targets: normal + build edges, no dev-dependencies
    root = meta["resolve"]["root"]
    seen, todo = set(), [root]
    while todo:
        nid = todo.pop()
        if nid in seen:
            continue
        seen.add(nid)
        for d in nodes[nid]["deps"]:
            if any(k["kind"] in (None, "build") for k in d["dep_kinds"]):
                todo.append(d["pkg"])
    built_cc = set()
    for nid in seen:
        if any(id2name[d["pkg"]] == "cc" and any(k["kind"] == "build" for k in d["dep_kinds"]) for d in nodes[nid]["deps"]):
            built_cc.add(id2name[nid])
    skipped = sorted(lock_cc_users - built_cc)
    cc_users = built_cc
    scope = "built for aarch64/armv7 musl"
    if skipped:
        scope += "; not built for these targets: " + ", ".join(skipped)
cc_users = sorted(cc_users)
print(f"check-deps: crates compiling C via cc ({scope}): {', '.join(cc_users) if cc_users else '(none)'}")
for name in cc_users:
    if name in CC_ALLOWED:
        print(f"  {name}: allowed ({CC_ALLOWED[name]})")
    else:
        errors.append(f"crate {name} compiles C via cc ({why(name)}) and is not verified for the zig cross build; "
                      "verify with image/cross.sh for both targets, then add it to CC_ALLOWED in image/check-deps.sh")

if errors:
    for e in errors:
        print(f"check-deps: FAIL: {e}", file=sys.stderr)
    sys.exit(1)
print(f"check-deps: OK: {len(pkgs)} packages in {path}, no denied crates, C only from {', '.join(cc_users) or 'nothing'}")
EOF
