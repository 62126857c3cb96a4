# shellcheck shell=bash
# Several parley instances behind haproxy, for the benchmarks that cross
# instances (cluster.sh, redis-cluster.sh): sourced, not run.
#
# The caller sets BIN (where parley is), DB_URL, REDIS_URL, KEYS (a shared
# signing-key directory), SERVER_CPU and PIDS (an array; every process
# started here is appended to it, for the caller's exit trap to stop).

# wait_ready ADDR: waits (60 s at most) until ADDR answers /readyz.
wait_ready() {
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null "http://$1/readyz" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): $1 not ready after 60 s" >&2
    return 1
}

# start_bench_parley ADDR ADMIN_ADDR INSTANCE_ID PREFIX LOG [VAR=VALUE ...]:
# one instance pinned to SERVER_CPU, its limits out of the benchmark's way
# (the harness's few users open thousands of connections and publish far
# above a person's quota); the extra VAR=VALUE pairs are added to its
# environment.
start_bench_parley() {
    local addr=$1 admin=$2 id=$3 prefix=$4 log=$5
    shift 5
    env -u PARLEY_CONFIG \
        PARLEY_HTTP_ADDR="$addr" PARLEY_ADMIN_ADDR="$admin" \
        PARLEY_INSTANCE_ID="$id" DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_URL" \
        PARLEY_REDIS_PREFIX="$prefix" PARLEY_JWT_KEYS_DIR="$KEYS" \
        PARLEY_RATE_AUTH_PER_MIN=1000000 PARLEY_RATE_API_PER_MIN=1000000 \
        PARLEY_WS_MSGS_PER_S=100000 PARLEY_ACCESS_TTL_S=3600 PARLEY_DRAIN_TIMEOUT_S=5 \
        PARLEY_WS_USER_MSGS_PER_S=1000000 PARLEY_WS_CONNS_PER_USER=1000000 \
        PARLEY_WS_CONNS_PER_IP=1000000 PARLEY_LOG=warn PARLEY_LOG_FORMAT=json \
        "$@" \
        taskset -c "$SERVER_CPU" "$BIN/parley" >"$log" 2>&1 &
    PIDS+=($!)
}

# start_haproxy CFG LB_ADDR SERVERS LOG: plain round-robin (no stickiness)
# over SERVERS ("    server NAME ADDR" lines), pinned to SERVER_CPU, and
# waits until it passes /readyz through.
start_haproxy() {
    local cfg=$1 lb=$2 servers=$3 log=$4
    cat >"$cfg" <<CFG
global
    maxconn 9000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend parley
    bind $lb
    default_backend nodes
backend nodes
    balance roundrobin
$servers
CFG
    taskset -c "$SERVER_CPU" haproxy -db -f "$cfg" >"$log" 2>&1 &
    PIDS+=($!)
    wait_ready "$lb"
}
