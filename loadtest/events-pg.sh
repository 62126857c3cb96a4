#!/usr/bin/env bash
# One run of loadtest/events.sh on PostgreSQL, in the steady state: a fresh
# database, the parley binary BIN pinned to CPU 0, seeding (events.sh
# --seed-only) and wrk pinned to CPU 1, and VACUUM ANALYZE in between (right
# after a bulk seed the visibility maps are empty and index-only scans visit
# the heap; autovacuum would catch up in production). Run it alternately
# for two binaries to compare them (docs/benchmarks.md).
#
# usage: loadtest/events-pg.sh --bin target/release/parley [--plain] [--duration S]
#   --bin PATH     the parley binary to measure (build with cargo build --release -p parley)
#   --plain        seed what a server before contract 1.1 serves (see events.sh)
#   --duration S   seconds per wrk run (default 10, at most 120)
# Needs psql, wrk, taskset and PostgreSQL at PARLEY_BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres; a database is
# created next to it and dropped afterwards).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

BIN=
PLAIN=()
DURATION=10
while [[ $# -gt 0 ]]; do
    case $1 in
    --bin) BIN=$2; shift 2 ;;
    --plain) PLAIN=(--plain); shift ;;
    --duration) DURATION=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ -x "$BIN" ]] || die "--bin must name a parley binary, got '$BIN'"
if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 1 || DURATION > 120)); then
    die "--duration must be 1 to 120"
fi
for tool in psql wrk taskset curl; do have "$tool" || die "$tool is not installed"; done

base=${PARLEY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db="parley_bench_$(date +%s)_$RANDOM"
psql -q "$base" -c "CREATE DATABASE $db"
url=${base%/*}/$db
port=$((18000 + RANDOM % 1000))
log_file=$(mktemp)
DATABASE_URL=$url PARLEY_HTTP_ADDR="127.0.0.1:$port" PARLEY_ADMIN_ADDR="127.0.0.1:$((port + 1000))" \
    PARLEY_RATE_API_PER_MIN=100000000 PARLEY_RATE_AUTH_PER_MIN=100000 PARLEY_LOG=warn \
    taskset -c 0 "$BIN" >"$log_file" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    psql -q "$base" -c "DROP DATABASE IF EXISTS $db" || true
    rm -f "$log_file"
}
on_exit cleanup
for _ in $(seq 150); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
    kill -0 "$pid" 2>/dev/null || { cat "$log_file" >&2; die "parley exited at start-up"; }
    sleep 0.2
done

seeded=$(taskset -c 1 bash "$ROOT/loadtest/events.sh" --url "http://127.0.0.1:$port" --seed-only "${PLAIN[@]}" 2>&1) ||
    { printf '%s\n' "$seeded" >&2; die "seeding failed"; }
room=$(sed -n 's/.*history room: \(.*\)$/\1/p' <<<"$seeded" | tail -1)
token=$(sed -n 's/.*token (valid for the access-token lifetime): \(.*\)$/\1/p' <<<"$seeded")
psql -q "$url" -c "VACUUM ANALYZE"

printf '\n%s %s, %s (load average: %s)\n\n' "$BIN" "${PLAIN[*]:-events}" "$(date -u +%H:%M:%SZ)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-26s | %10s | %9s | %9s | %7s |\n' request req/s p50 p99 non-2xx
printf '|---|---|---|---|---|\n'
paths=("rooms/$room/messages?limit=50" "rooms?limit=100")
((${#PLAIN[@]})) || paths+=("rooms/unread")
for path in "${paths[@]}"; do
    out=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" --latency -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$port/api/v1/$path")
    printf '| %-26s | %10s | %9s | %9s | %7s |\n' "${path/$room/{id\}}" \
        "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")" "$(awk '$1 == "50%" {print $2}' <<<"$out")" \
        "$(awk '$1 == "99%" {print $2}' <<<"$out")" "$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
done
