#!/usr/bin/env bash
# Fan-out across instances: N parley instances (default 3) sharing one
# PostgreSQL database and the local Redis, behind haproxy doing plain
# round-robin, loaded by parley-load through haproxy. Subscribers and the
# publisher land on different instances, so every message crosses Redis.
#
#   loadtest/cluster.sh [--instances N] [--connections C] [--rates "A B"]
#                       [--duration S] [--database-url URL] [--no-build]
#
# The instances and haproxy run pinned to CPU 0, the harness to CPU 1, as in
# loadtest/run.sh, so the figures compare with the single-instance ones
# (same core budget, plus the Redis hop). Needs haproxy and redis-server
# (scripts/test/ensure-tools.sh, scripts/test/ensure-services.sh). Reports go to
# target/loadtest/cluster-TIMESTAMP.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/target/release"
INSTANCES=3
CONNECTIONS=2000
RATES="100"
DURATION=30
WARMUP=5
DB_URL="postgres://postgres@127.0.0.1:5432/parley_bench"
REDIS_URL="redis://127.0.0.1:6379"
BUILD=1
SERVER_CPU=0
LOAD_CPU=1
LB_ADDR=127.0.0.2:18000

while [[ $# -gt 0 ]]; do
    case "$1" in
        --instances) INSTANCES=$2; shift ;;
        --connections) CONNECTIONS=$2; shift ;;
        --rates) RATES=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --database-url) DB_URL=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "cluster.sh: unknown argument: $1" >&2; exit 64 ;;
    esac
    shift
done
read -r -a RATE_LIST <<<"$RATES"

OUT="$ROOT/target/loadtest/cluster-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=loadtest/instances.sh
source "$ROOT/loadtest/instances.sh"

if [[ $BUILD -eq 1 ]]; then
    (cd "$ROOT" && cargo build --release -p parley -p parley-loadtest)
fi

# The database is created if missing (parley migrates it).
db_name=${DB_URL##*/}
db_name=${db_name%%\?*}
server_url=${DB_URL%/*}/postgres
if ! psql "$server_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db_name'" | grep -q 1; then
    psql "$server_url" -c "CREATE DATABASE \"$db_name\"" >/dev/null
fi

# Instances sharing a cluster share their signing keys.
KEYS="$OUT/keys"
mkdir -p "$KEYS"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/key.pem" 2>/dev/null
PREFIX="bench-$(date +%s):"

SERVERS=""
for i in $(seq 1 "$INSTANCES"); do
    addr="127.0.0.$((10 + i)):18080"
    start_bench_parley "$addr" "127.0.0.$((10 + i)):19090" "bench-$i" "$PREFIX" "$OUT/parley-$i.log"
    SERVERS+="    server n$i $addr"$'\n'
done
for i in $(seq 1 "$INSTANCES"); do wait_ready "127.0.0.$((10 + i)):18080"; done

start_haproxy "$OUT/haproxy.cfg" "$LB_ADDR" "$SERVERS" "$OUT/haproxy.log"

for rate in "${RATE_LIST[@]}"; do
    echo "== $INSTANCES instances behind haproxy, fanout, $CONNECTIONS subscribers, rate $rate"
    taskset -c "$LOAD_CPU" "$BIN/parley-load" --target parley --scenario fanout \
        --connections "$CONNECTIONS" --rooms 1 --publishers 1 --rate "$rate" \
        --duration-s "$DURATION" --warmup-s "$WARMUP" --server-pid "${PIDS[0]}" \
        --http "http://$LB_ADDR" --ws "ws://$LB_ADDR/ws" \
        --label "cluster-$INSTANCES" --out "$OUT/cluster-$rate.json" || true
done
for i in $(seq 1 "$INSTANCES"); do
    echo "instance $i: $(curl -fsS "http://127.0.0.$((10 + i)):19090/metrics" | grep -E '^parley_bridge_messages_total' | tr '\n' ' ')"
done
echo "reports and logs: $OUT"
