#!/usr/bin/env bash
# Where parley's memory per idle connection goes: a heap profile taken with
# valgrind's DHAT while N subscribed connections sit idle.
#
#   loadtest/heap-profile.sh [--connections N] [--bin PATH] [--out DIR]
#   loadtest/heap-profile.sh --report DHAT_JSON N   # print a profile again
#
# DHAT sees only the system allocator, so this profiles a build without the
# `jemalloc` feature (built into target/heap-profile with line tables, so the
# allocation sites have names; a first build takes a few minutes). parley
# runs on the embedded store; the harness registers one user (one argon2
# hash: the transient peak stays below the connections' heap), opens N
# idle subscribed connections, holds them 10 s and closes them.
#
# Prints the heap at DHAT's global peak (t-gmax), per connection, grouped by
# the first frame of each allocation stack that is neither the allocator
# nor a standard-library container. Bytes are requested bytes: RSS adds the
# allocator's size classes and page rounding on top. Under valgrind parley
# runs ~50x slower, so timing figures from this run mean nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONNECTIONS=4000
BIN=""
OUT=""
ADDR=127.0.0.1:18280

# report DHAT_JSON CONNECTIONS: the heap at the peak, per connection, by the
# code that asked for it: the first frame of each stack that names a
# function outside the standard library, the allocator and tokio's
# channel/task internals (those say how, not who).
report() {
    python3 - "$1" "$2" <<'PY'
import json, sys
from collections import defaultdict

profile, connections = json.load(open(sys.argv[1])), int(sys.argv[2])
frames = profile["ftbl"]
HOW = ("alloc::", "core::", "std::", "__rustc", "hashbrown::", "bytes::",
       "tokio::sync::", "tokio::runtime::", "lock_api::")

def who(stack):
    names = [frames[i].split(": ", 1)[-1] for i in stack]
    for name in names:
        function = name.split(" (")[0]
        if "::" in function and not any(k in function for k in HOW):
            return name
    return names[-1] if names else "?"

sites = defaultdict(lambda: [0, 0])
for pp in profile["pps"]:
    if pp.get("gb", 0):
        site = sites[who(pp["fs"])]
        site[0] += pp["gb"]
        site[1] += pp["gbk"]
total = sum(b for b, _ in sites.values())
print(f"heap at the global peak: {total / 1024:.0f} KiB in all, "
      f"{total / connections / 1024:.2f} KiB per connection ({connections} connections)")
print(f"{'B/conn':>8} {'blocks/conn':>11}  allocated under")
for name, (size, blocks) in sorted(sites.items(), key=lambda kv: -kv[1][0])[:25]:
    print(f"{size / connections:8.0f} {blocks / connections:11.2f}  {name[:160]}")
PY
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --connections) CONNECTIONS=$2; shift ;;
        --bin) BIN=$2; shift ;;
        --out) OUT=$2; shift ;;
        --report) report "$2" "$3"; exit 0 ;;
        -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "heap-profile.sh: unknown argument: $1" >&2; exit 64 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "heap-profile.sh: needs valgrind (apt-get install valgrind)" >&2; exit 69; }
OUT=${OUT:-"$ROOT/target/loadtest/heap-profile-$(date +%Y%m%d-%H%M%S)"}
mkdir -p "$OUT"
if [[ -z "$BIN" ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target/heap-profile" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
        cargo build --release -p parley --no-default-features -p parley-loadtest)
    BIN="$ROOT/target/heap-profile/release/parley"
fi
LOAD="$(dirname "$BIN")/parley-load"
[[ -x "$LOAD" ]] || LOAD="$ROOT/target/release/parley-load"
ulimit -n "$(ulimit -Hn)"

env -u REDIS_URL -u DATABASE_URL -u PARLEY_CONFIG \
    PARLEY_HTTP_ADDR=$ADDR PARLEY_ADMIN_ADDR=127.0.0.1:18290 PARLEY_LOG=warn \
    PARLEY_RATE_AUTH_PER_MIN=1000000 PARLEY_RATE_API_PER_MIN=1000000 \
    PARLEY_WS_USER_MSGS_PER_S=1000000 PARLEY_WS_CONNS_PER_USER=1000000 PARLEY_WS_CONNS_PER_IP=1000000 \
    PARLEY_ACCESS_TTL_S=3600 PARLEY_DRAIN_TIMEOUT_S=1 \
    valgrind --tool=dhat --dhat-out-file="$OUT/dhat.json" "$BIN" >"$OUT/parley.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 600); do
    curl -fs -o /dev/null "http://$ADDR/readyz" && break
    kill -0 "$PID" 2>/dev/null || { echo "heap-profile.sh: parley exited; see $OUT/parley.log" >&2; exit 1; }
    sleep 0.5
done

"$LOAD" --target parley --scenario idle --connections "$CONNECTIONS" --users 1 \
    --rooms $((CONNECTIONS / 10)) --duration-s 10 --warmup-s 1 --connect-timeout-s 600 \
    --http "http://$ADDR" --ws "ws://$ADDR/ws" --out "$OUT/load.json" >"$OUT/load.txt"
kill -TERM "$PID"
wait "$PID" || true
trap - EXIT

report "$OUT/dhat.json" "$CONNECTIONS"
echo "DHAT output (open with valgrind's dh_view.html): $OUT/dhat.json"
