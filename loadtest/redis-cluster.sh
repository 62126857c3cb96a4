#!/usr/bin/env bash
# Cross-instance fan-out over three kinds of Redis (issue 20): the same load
# through 3 parley instances behind haproxy, each setup on a Redis of its own
# that this script starts on 127.0.0.1 and stops:
#
#   single   one redis-server                         (redis://)
#   classic  a 3-master Redis Cluster, no replicas,   PARLEY_REDIS_CLUSTER_PUBSUB=classic
#   sharded  the same cluster, started afresh,        PARLEY_REDIS_CLUSTER_PUBSUB=sharded
#
# The load is parley-load's `rooms` scenario through haproxy (round-robin),
# so each room has subscribers on every instance and every message crosses
# Redis; many rooms spread the channels over the slots. Around the
# publishing phase of each run the script reads `INFO cpu` (used_cpu_sys +
# used_cpu_user) of every Redis node and the instances'
# parley_bridge_messages_total{direction="out"} (the PUBLISHes), and prints
# per setup and rate: deliveries/s, end-to-end p50/p99, lost/duplicated/out
# of order, Redis CPU seconds per node and per 1,000 acked messages, with
# ratios to `single` at the same rate.
#
#   loadtest/redis-cluster.sh [--rates "1000 3000"] [--connections 1000]
#       [--rooms 100] [--publishers 100] [--duration 30]
#       [--setups "single classic sharded"] [--database-url URL] [--no-build]
#       [--bin-dir DIR]
#
# --bin-dir takes parley and parley-load from DIR instead of building the
# release binaries (a debug build checks the script, not the figures).
#
# Pinning as in loadtest/cluster.sh: instances and haproxy on CPU 0, the
# harness on CPU 1; Redis and PostgreSQL are not pinned. Needs haproxy,
# redis-server and redis-cli 7, jq, PostgreSQL on 127.0.0.1:5432. Every run
# is bounded by parley-load's own limits (--duration, set-up, connect and
# drain timeouts); every wait here by a count. Reports, logs and
# results.tsv go to target/loadtest/redis-cluster-TIMESTAMP.
set -euo pipefail

SCRIPT_NAME=redis-cluster.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
INSTANCES=3
CONNECTIONS=1000
ROOMS=100
PUBLISHERS=100
RATES="1000 3000"
DURATION=30
WARMUP=5
SETUPS="single classic sharded"
DB_URL="postgres://postgres@127.0.0.1:5432/parley_bench_redis"
BUILD=1
SERVER_CPU=0
LOAD_CPU=1
# Addresses of their own, so this can run beside loadtest/cluster.sh.
LB_ADDR=127.0.0.3:18100
REDIS_BASE_PORT=17100
CLUSTER_MASTERS=3
IDLE_S=10

while [[ $# -gt 0 ]]; do
    case "$1" in
    --rates) RATES=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --rooms) ROOMS=$2; shift ;;
    --publishers) PUBLISHERS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --setups) SETUPS=$2; shift ;;
    --database-url) DB_URL=$2; shift ;;
    --no-build) BUILD=0 ;;
    --bin-dir) BIN=$2; BUILD=0; shift ;;
    -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
    esac
    shift
done
read -r -a RATE_LIST <<<"$RATES"
read -r -a SETUP_LIST <<<"$SETUPS"
for setup in "${SETUP_LIST[@]}"; do
    [[ $setup =~ ^(single|classic|sharded)$ ]] || die "unknown setup: $setup"
done
((DURATION >= 10 && DURATION <= 300)) || die "--duration: 10 to 300 seconds"
for tool in haproxy redis-server redis-cli jq psql openssl taskset curl; do
    have "$tool" || die "$tool is not installed"
done

OUT="$ROOT/target/loadtest/redis-cluster-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# Processes of the current setup; all of them are stopped at exit too.
PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
on_exit stop_all
trap 'exit 130' INT TERM

# shellcheck source=loadtest/instances.sh
source "$ROOT/loadtest/instances.sh"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- Redis ------------------------------------------------------------------

# redis_node PORT DIR [ARGS...]: one redis-server in the background.
redis_node() {
    local port=$1 dir=$2
    shift 2
    port_free "$port" || die "port $port is in use"
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$dir" "$@" >"$dir/redis.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    die "redis-server on $port did not answer within 10 s"
}

# start_redis SETUP: sets NODES (ports) and REDIS_URL.
start_redis() {
    local setup=$1 dir="$OUT/redis-$1" port addrs=() rest=()
    if [[ $setup == single ]]; then
        NODES=("$REDIS_BASE_PORT")
        redis_node "$REDIS_BASE_PORT" "$dir/$REDIS_BASE_PORT"
        REDIS_URL="redis://127.0.0.1:$REDIS_BASE_PORT"
        return
    fi
    NODES=()
    for i in $(seq 1 "$CLUSTER_MASTERS"); do
        port=$((REDIS_BASE_PORT + i))
        port_free $((port + 10000)) || die "cluster bus port $((port + 10000)) is in use"
        redis_node "$port" "$dir/$port" --cluster-enabled yes \
            --cluster-config-file nodes.conf --cluster-node-timeout 5000
        NODES+=("$port")
        addrs+=("127.0.0.1:$port")
        ((i > 1)) && rest+=("node=127.0.0.1:$port")
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
        >"$dir/create.log" 2>&1 || die "redis-cli --cluster create failed; see $dir/create.log"
    for _ in $(seq 1 300); do
        cluster_ok && break
        sleep 0.1
    done
    cluster_ok || die "the cluster did not reach cluster_state:ok within 30 s"
    local IFS='&'
    REDIS_URL="redis-cluster://127.0.0.1:${NODES[0]}?${rest[*]}"
}

cluster_ok() {
    local port
    for port in "${NODES[@]}"; do
        redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' || return 1
    done
}

# redis_cpu: "port=seconds ..." of every node (user + system since start).
redis_cpu() {
    local port
    for port in "${NODES[@]}"; do
        redis-cli -p "$port" info cpu |
            awk -F: -v p="$port" '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%s=%.3f ", p, s }'
    done
}

# idle_cpu SETUP: every node's CPU over IDLE_S seconds with parley connected
# and no load (cron, cluster bus pings, the instances' slot map reads):
# what the figures of a run include besides the traffic.
idle_cpu() {
    local before line
    before=$(redis_cpu)
    sleep "$IDLE_S"
    line=$(cpu_delta "$before" "$(redis_cpu)")
    log "$1: Redis CPU s per node at idle over $IDLE_S s: $line"
    printf '| %s | %s |\n' "$1" "${line//,/ / }" >>"$OUT/idle.md"
}

# cpu_delta BEFORE AFTER: two redis_cpu readings as "s1,s2,..." in NODES order.
cpu_delta() {
    local port b a out=""
    for port in "${NODES[@]}"; do
        b=$(tr ' ' '\n' <<<"$1" | awk -F= -v p="$port" '$1 == p { print $2 }')
        a=$(tr ' ' '\n' <<<"$2" | awk -F= -v p="$port" '$1 == p { print $2 }')
        out+="$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a - b }'),"
    done
    echo "${out%,}"
}

# --- parley -------------------------------------------------------------------

# start_parley_instances SETUP: INSTANCES parley processes on REDIS_URL, and
# haproxy in front.
start_parley_instances() {
    local setup=$1 pubsub=sharded servers="" addr i
    [[ $setup == classic ]] && pubsub=classic
    local prefix
    prefix="bench-$setup-$(date +%s):"
    for i in $(seq 1 "$INSTANCES"); do
        addr="127.0.0.$((20 + i)):18180"
        start_bench_parley "$addr" "127.0.0.$((20 + i)):19190" "bench-$setup-$i" "$prefix" \
            "$OUT/parley-$setup-$i.log" PARLEY_REDIS_CLUSTER_PUBSUB="$pubsub"
        servers+="    server n$i $addr"$'\n'
    done
    for i in $(seq 1 "$INSTANCES"); do wait_ready "127.0.0.$((20 + i)):18180"; done
    start_haproxy "$OUT/haproxy-$setup.cfg" "$LB_ADDR" "$servers" "$OUT/haproxy-$setup.log"
}

# bridge_out: PUBLISHes the instances sent to Redis so far, summed.
bridge_out() {
    local i total=0 n
    for i in $(seq 1 "$INSTANCES"); do
        n=$(curl -fsS "http://127.0.0.$((20 + i)):19190/metrics" |
            awk '/^parley_bridge_messages_total\{.*direction="out"/ { s += $2 } END { printf "%d", s }')
        total=$((total + n))
    done
    echo "$total"
}

# --- one run --------------------------------------------------------------------

# run_load SETUP RATE: one parley-load run; appends a line to results.tsv.
# Redis CPU and PUBLISHes are read when the harness reports its
# connections open and again when publishing is over and drained, so they
# cover the publishing phase only (not the set-up's registrations and room
# creations).
run_load() {
    local setup=$1 rate=$2 report="$OUT/$1-$2.json" progress="$OUT/$1-$2.progress"
    local cpu_before cpu_after out_before out_after load start pid
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    start=$(date -u +%H:%M:%S)
    log "== $setup, rate $rate msg/s, load average $load at $start UTC"
    taskset -c "$LOAD_CPU" "$BIN/parley-load" --target parley --scenario rooms \
        --connections "$CONNECTIONS" --rooms "$ROOMS" --publishers "$PUBLISHERS" \
        --rate "$rate" --duration-s "$DURATION" --warmup-s "$WARMUP" \
        --http "http://$LB_ADDR" --ws "ws://$LB_ADDR/ws" \
        --label "redis-$setup" --out "$report" >"$OUT/$setup-$rate.txt" 2>"$progress" &
    pid=$!
    wait_for_line "$progress" "$pid" '] connected '
    reset_commandstats
    cpu_before=$(redis_cpu)
    out_before=$(bridge_out)
    wait_for_line "$progress" "$pid" 'publishing over'
    cpu_after=$(redis_cpu)
    out_after=$(bridge_out)
    save_commandstats "$setup-$rate"
    wait "$pid" || true
    cat "$progress" "$OUT/$setup-$rate.txt"
    [[ -s $report ]] || { log "no report for $setup at $rate"; return 0; }
    local per_node acked
    acked=$(jq '.publishes.acked' "$report")
    per_node=$(cpu_delta "$cpu_before" "$cpu_after")
    jq -r --arg setup "$setup" --arg load "$load" --arg time "${start%:*}" \
        --arg cpu "$per_node" --argjson publishes $((out_after - out_before)) \
        '[$setup, .shape.rate_target, $time, $load, .publishes.acked, $publishes,
          .deliveries.per_s, .deliveries.total, .deliveries.expected,
          .end_to_end.p50_ms, .end_to_end.p99_ms,
          .correctness.lost, .correctness.duplicated, .correctness.out_of_order,
          $cpu] | @tsv' "$report" >>"$RESULTS"
    log "acked $acked; Redis CPU s per node (${NODES[*]}): $per_node"
}

# Which commands each node ran in the publishing phase (calls and
# microseconds; a classic PUBLISH that reaches a node over the cluster bus
# costs CPU there but is no command), saved beside the reports.
reset_commandstats() {
    local port
    for port in "${NODES[@]}"; do redis-cli -p "$port" config resetstat >/dev/null; done
}

save_commandstats() {
    local port
    for port in "${NODES[@]}"; do
        redis-cli -p "$port" info commandstats | tr -d '\r' | grep '^cmdstat_' |
            sort -t= -k3 -rn >"$OUT/$1-commandstats-$port.txt"
    done
}

# wait_for_line FILE PID TEXT: until FILE holds TEXT, PID exits, or 10
# minutes (more than parley-load's own set-up, connect and run bounds).
wait_for_line() {
    for _ in $(seq 1 6000); do
        grep -qF "$3" "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 0
        sleep 0.1
    done
}

# --- the table ------------------------------------------------------------------

print_table() {
    printf '\n| setup | rate | time (UTC), load avg | acked | PUBLISHes | deliveries/s | e2e p50 / p99 ms | lost / dup / ooo | Redis CPU s per node | CPU ms per 1,000 msgs per node | ratio to single: deliveries/s, p99, Redis CPU total, busiest node |\n'
    printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
    awk -F'\t' '
        function total(list,   parts, n, i, s) { n = split(list, parts, ","); s = 0; for (i = 1; i <= n; i++) s += parts[i]; return s }
        function busiest(list,   parts, n, i, m) { n = split(list, parts, ","); m = 0; for (i = 1; i <= n; i++) if (parts[i] > m) m = parts[i]; return m }
        function per1k(list, acked,   parts, n, i, out) {
            n = split(list, parts, ","); out = ""
            for (i = 1; i <= n; i++) out = out (i > 1 ? " / " : "") sprintf("%.1f", acked > 0 ? parts[i] * 1e6 / acked : 0)
            return out
        }
        function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
        { rows[NR] = $0; if ($1 == "single") { base_d[$2] = $7; base_p99[$2] = $11; base_cpu[$2] = total($15); base_max[$2] = busiest($15) } }
        END {
            for (r = 1; r <= NR; r++) {
                split(rows[r], f, "\t")
                cpu = f[15]; gsub(",", " / ", cpu)
                printf "| %s | %s | %s, %s | %s | %s | %.0f (%s of %s) | %.1f / %.1f | %s / %s / %s | %s | %s | %s, %s, %s, %s |\n",
                    f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13], f[14],
                    cpu, per1k(f[15], f[5]),
                    ratio(f[7], base_d[f[2]]), ratio(f[11], base_p99[f[2]]),
                    ratio(total(f[15]), base_cpu[f[2]]), ratio(busiest(f[15]), base_max[f[2]])
            }
        }' "$RESULTS"
}

# --- main -------------------------------------------------------------------------

if [[ $BUILD -eq 1 ]]; then
    (cd "$ROOT" && cargo build --release -p parley --bin parley -p parley-loadtest --bin parley-load)
fi
[[ -x $BIN/parley && -x $BIN/parley-load ]] || die "no release binaries in $BIN"

db_name=${DB_URL##*/}
db_name=${db_name%%\?*}
server_url=${DB_URL%/*}/postgres
if ! psql "$server_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db_name'" | grep -q 1; then
    psql "$server_url" -c "CREATE DATABASE \"$db_name\"" >/dev/null
fi
KEYS="$OUT/keys"
mkdir -p "$KEYS"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/key.pem" 2>/dev/null

log "reports and logs: $OUT"
: >"$RESULTS"
for setup in "${SETUP_LIST[@]}"; do
    start_redis "$setup"
    log "$setup: Redis at $REDIS_URL"
    start_parley_instances "$setup"
    idle_cpu "$setup"
    for rate in "${RATE_LIST[@]}"; do run_load "$setup" "$rate"; done
    stop_all
done
print_table | tee "$OUT/table.md"
printf '\n| setup | Redis CPU s per node at idle over %s s |\n|---|---|\n' "$IDLE_S"
cat "$OUT/idle.md"
log "reports and logs: $OUT"
