#!/usr/bin/env bash
# Runs one load-test scenario against parley and against the reference
# server, one after the other on the same machine, and prints the two
# reports side by side with parley/reference ratios.
#
# The server runs pinned to CPU 0 and the harness to CPU 1 (taskset), with
# `ulimit -n` raised to 65536. Every server this script starts is stopped
# when it exits, however it exits. See loadtest/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: loadtest/run.sh [options] SCENARIO

SCENARIO is idle, fanout, rooms, ack or users (see loadtest/README.md).
users runs against parley only: the reference server has no REST.

options:
  --quick              small smoke run (200 connections, 10 s), strict checks
  --connections N      subscriber connections
  --rooms R            rooms
  --publishers P       publisher connections
  --users U            parley users whose tokens the connections share
  --rates "A B ..."    total publish rates to step through, msg/s
  --duration S         seconds per step (warm-up included)
  --warmup S           warm-up seconds per step
  --database-url URL   run parley on PostgreSQL (default: embedded store)
  --only WHICH         parley or reference: run against one server only
  --out DIR            where reports and server logs go
                       (default target/loadtest/SCENARIO-TIMESTAMP)
  --no-build           use the binaries already in target/release
  --parley PATH        run this parley binary instead of target/release/parley
                       (an older build, for a before/after comparison)
  -h, --help           this text
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/target/release"
PARLEY_BIN="$BIN/parley"
PARLEY_HTTP=127.0.0.1:18080
PARLEY_ADMIN=127.0.0.1:19090
REFERENCE_ADDR=127.0.0.1:19100
SERVER_CPU=0
LOAD_CPU=1

QUICK=0
BUILD=1
ONLY=both
SCENARIO=""
CONNECTIONS=""
ROOMS=""
PUBLISHERS=""
USERS=""
RATES=""
DURATION=""
WARMUP=""
DB_URL=""
OUT=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --connections) CONNECTIONS=$2; shift ;;
        --rooms) ROOMS=$2; shift ;;
        --publishers) PUBLISHERS=$2; shift ;;
        --users) USERS=$2; shift ;;
        --rates) RATES=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --database-url) DB_URL=$2; shift ;;
        --only) ONLY=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --parley) PARLEY_BIN=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        idle | fanout | rooms | ack | users) SCENARIO=$1 ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 64 ;;
    esac
    shift
done
[[ -n "$SCENARIO" ]] || { usage >&2; exit 64; }
case "$ONLY" in both | parley | reference) ;; *) echo "run.sh: --only takes parley or reference" >&2; exit 64 ;; esac

# Scenario presets: full size, or --quick for a smoke check.
full_n=10000 quick_n=200 full_rooms="" quick_rooms="" full_pubs="" quick_pubs=""
full_rates=0 quick_rates=0 full_duration=30 quick_duration=10 full_warmup=5 quick_warmup=2
case "$SCENARIO" in
    idle) ;;
    fanout)
        full_n=2000 full_rooms=1 quick_rooms=1 full_pubs=1 quick_pubs=1
        full_rates="100 500 1000 2000 5000" quick_rates="20 100"
        ;;
    rooms | ack)
        full_rooms=1000 quick_rooms=20 full_pubs=100 quick_pubs=4
        full_rates=1000 quick_rates=40 full_duration=60 full_warmup=10
        ;;
    users)
        # 10,000 users for 5 minutes (registering them takes minutes too:
        # a password hash each). The reference server has no REST.
        full_duration=300 full_warmup=10 quick_duration=20 quick_warmup=2
        ONLY=parley
        ;;
esac
USERS_ARGS=()
if [[ "$SCENARIO" == users ]]; then
    USERS_ARGS=(--setup-timeout-s 1800 --drain-s 15)
    [[ $QUICK -eq 0 ]] || USERS_ARGS+=(--publish-every-s 2 --read-every-s 1 --interval-s 5)
fi
if [[ $QUICK -eq 1 ]]; then
    CONNECTIONS=${CONNECTIONS:-$quick_n} ROOMS=${ROOMS:-$quick_rooms} PUBLISHERS=${PUBLISHERS:-$quick_pubs}
    RATES=${RATES:-$quick_rates} DURATION=${DURATION:-$quick_duration} WARMUP=${WARMUP:-$quick_warmup}
else
    CONNECTIONS=${CONNECTIONS:-$full_n} ROOMS=${ROOMS:-$full_rooms} PUBLISHERS=${PUBLISHERS:-$full_pubs}
    RATES=${RATES:-$full_rates} DURATION=${DURATION:-$full_duration} WARMUP=${WARMUP:-$full_warmup}
fi
read -r -a RATE_LIST <<<"$RATES"
if [[ "$SCENARIO" == ack && -z "$DB_URL" ]]; then
    echo "run.sh: warning: ack without --database-url measures the embedded store, not PostgreSQL" >&2
fi

OUT=${OUT:-"$ROOT/target/loadtest/$SCENARIO-$(date +%Y%m%d-%H%M%S)"}
mkdir -p "$OUT"
# Benchmarks want a quiet machine: keep the load average beside the reports.
echo "run.sh: load average before the start: $(cut -d" " -f1-3 /proc/loadavg)" | tee "$OUT/loadavg-start.txt"

if ! ulimit -n 65536 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)"
    echo "run.sh: warning: could not raise ulimit -n to 65536; it is $(ulimit -n)" >&2
fi

SERVER_PID=""
stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# Waits (at most 60 s) until something listens on host:port.
wait_for_port() {
    local host=${1%:*} port=${1##*:}
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "run.sh: the server exited; see its log in $OUT" >&2; return 1; }
        sleep 0.1
    done
    echo "run.sh: nothing listens on $1 after 60 s" >&2
    return 1
}

start_parley() {
    local env_args=(
        -u REDIS_URL -u DATABASE_URL -u PARLEY_CONFIG
        PARLEY_HTTP_ADDR="$PARLEY_HTTP"
        PARLEY_ADMIN_ADDR="$PARLEY_ADMIN"
        PARLEY_RATE_AUTH_PER_MIN=1000000
        PARLEY_RATE_API_PER_MIN=1000000
        PARLEY_WS_MSGS_PER_S=100000
        PARLEY_WS_USER_MSGS_PER_S=1000000
        PARLEY_WS_CONNS_PER_USER=1000000
        PARLEY_WS_CONNS_PER_IP=1000000
        PARLEY_ACCESS_TTL_S=3600
        PARLEY_DRAIN_TIMEOUT_S=5
        PARLEY_LOG=warn
        PARLEY_LOG_FORMAT=json
    )
    [[ -z "$DB_URL" ]] || env_args+=(DATABASE_URL="$DB_URL")
    env "${env_args[@]}" taskset -c "$SERVER_CPU" "$PARLEY_BIN" >"$OUT/parley.log" 2>&1 &
    SERVER_PID=$!
    wait_for_port "$PARLEY_HTTP"
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null "http://$PARLEY_HTTP/readyz" && return 0
        sleep 0.1
    done
    echo "run.sh: parley is not ready after 60 s; see $OUT/parley.log" >&2
    return 1
}

start_reference() {
    taskset -c "$SERVER_CPU" "$BIN/reference-server" --addr "$REFERENCE_ADDR" >"$OUT/reference.log" 2>&1 &
    SERVER_PID=$!
    wait_for_port "$REFERENCE_ADDR"
}

FAILED=0
# run_load TARGET RATE: one harness run against the server now running.
run_load() {
    local target=$1 rate=$2 args
    args=(
        --target "$target" --scenario "$SCENARIO" --connections "$CONNECTIONS"
        --duration-s "$DURATION" --warmup-s "$WARMUP" --server-pid "$SERVER_PID"
        --label "$target" --out "$OUT/$target-$rate.json"
    )
    [[ -z "$ROOMS" ]] || args+=(--rooms "$ROOMS")
    [[ -z "$PUBLISHERS" ]] || args+=(--publishers "$PUBLISHERS")
    [[ -z "$USERS" || "$target" != parley ]] || args+=(--users "$USERS")
    [[ "$SCENARIO" == idle || "$SCENARIO" == users ]] || args+=(--rate "$rate")
    args+=("${USERS_ARGS[@]}")
    [[ $QUICK -eq 0 ]] || args+=(--strict)
    if [[ "$target" == parley ]]; then
        args+=(--http "http://$PARLEY_HTTP" --ws "ws://$PARLEY_HTTP/ws")
    else
        args+=(--ws "ws://$REFERENCE_ADDR/ws")
    fi
    echo "== $target, $SCENARIO, rate $rate"
    if ! taskset -c "$LOAD_CPU" "$BIN/parley-load" "${args[@]}"; then
        FAILED=1
    fi
}

if [[ $BUILD -eq 1 ]]; then
    (cd "$ROOT" && cargo build --release -p parley -p parley-loadtest)
fi

for target in parley reference; do
    [[ "$ONLY" == both || "$ONLY" == "$target" ]] || continue
    case "$target" in
        parley) start_parley ;;
        reference) start_reference ;;
    esac
    for rate in "${RATE_LIST[@]}"; do
        run_load "$target" "$rate"
    done
    stop_server
done

# PostgreSQL's own cost of the append, on the database parley just used,
# with nothing else running: the reference for the durable path.
if [[ "$SCENARIO" == ack && -n "$DB_URL" && "$ONLY" != reference ]]; then
    for rate in "${RATE_LIST[@]}"; do
        echo "== pgbench, the append's transaction alone, rate $rate msg/s"
        taskset -c "$LOAD_CPU" "$ROOT/loadtest/pgbench/append.sh" "$DB_URL" "$rate" \
            "$DURATION" "$OUT/pgbench-$rate" || FAILED=1
    done
fi

if [[ "$ONLY" == both ]]; then
    for rate in "${RATE_LIST[@]}"; do
        if [[ -f "$OUT/parley-$rate.json" && -f "$OUT/reference-$rate.json" ]]; then
            echo
            echo "== $SCENARIO, rate $rate: parley vs reference (A/B = parley/reference)"
            "$BIN/parley-load" --compare "$OUT/parley-$rate.json" "$OUT/reference-$rate.json"
        fi
    done
fi
echo
echo "reports and server logs: $OUT"
exit "$FAILED"
