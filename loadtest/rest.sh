#!/usr/bin/env bash
# Authenticated REST throughput: wrk against parley's `GET /api/v1/users/me`
# (bearer token: verification, a store read, JSON) and its own `GET
# /healthz` (the same stack with no auth and no store), then against the
# reference: a bare actix-web handler answering the same route with the same
# JSON shape (`rest-reference`). One server at a time, pinned to CPU 0, on
# the embedded store with the API rate limit raised out of the way; wrk
# pinned to CPU 1. Loopback only, bounded in time.
#
# With --database-url, parley runs on that PostgreSQL instead, and a third
# wrk run reads a room's history (`GET /rooms/{id}/messages?limit=50`, 50
# messages stored first).
#
# usage: loadtest/rest.sh [--parley PATH] [--duration S] [--connections N] [--database-url URL]
#   PARLEY_BIN (or --parley): the parley binary (default: target/release/parley);
#   the reference is target/release/rest-reference (cargo build --release -p parley-loadtest)
set -euo pipefail

SCRIPT_NAME=rest.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

DURATION=10
CONNECTIONS=64
DATABASE=
PARLEY_BIN=${PARLEY_BIN:-$ROOT/target/release/parley}
while [[ $# -gt 0 ]]; do
    case $1 in
    --parley) PARLEY_BIN=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --database-url) DATABASE=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
((DURATION > 0 && DURATION <= 120)) || die "--duration must be 1 to 120 s"
have wrk || die "wrk is not installed (apt-get install wrk)"
have taskset || die "taskset is not installed"
[[ -x "$PARLEY_BIN" ]] || die "no parley binary at $PARLEY_BIN (cargo build --release)"
REFERENCE=$ROOT/target/release/rest-reference
[[ -x "$REFERENCE" ]] || die "no $REFERENCE (cargo build --release -p parley-loadtest)"
export PARLEY_BIN

# start_parley runs "$@" "$PARLEY_EXE": taskset pins it to CPU 0.
PARLEY_EXE=$PARLEY_BIN
start_parley ${DATABASE:+DATABASE_URL=$DATABASE} PARLEY_RATE_API_PER_MIN=100000000 \
    PARLEY_RATE_AUTH_PER_MIN=1000 PARLEY_LOG_SAMPLE_SUCCESS=1000000 taskset -c 0
log "$PARLEY_BIN on $PARLEY_ADDR (CPU 0)"

user="rest$RANDOM"
token=$(curl -sf -X POST "http://$PARLEY_ADDR/api/v1/auth/register" \
    -H 'content-type: application/json' \
    -d "{\"username\":\"$user\",\"email\":\"$user@example.com\",\"password\":\"correct horse battery staple\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') ||
    die "could not register a user"

bench() {
    local label=$1 url=$2
    shift 2
    log "$label: wrk -t1 -c$CONNECTIONS -d${DURATION}s $url"
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url" |
        sed "s|^|  $label: |"
}

bench "parley healthz" "http://$PARLEY_ADDR/healthz"
bench "parley users/me (bearer)" "http://$PARLEY_ADDR/api/v1/users/me" -H "Authorization: Bearer $token"
if [[ -n "$DATABASE" ]]; then
    api="http://$PARLEY_ADDR/api/v1"
    auth=(-H "Authorization: Bearer $token" -H 'content-type: application/json')
    room=$(curl -sf -X POST "$api/rooms" "${auth[@]}" -d "{\"name\":\"$user\",\"kind\":\"public\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') || die "could not create a room"
    for i in $(seq 50); do
        curl -sf -o /dev/null -X POST "$api/rooms/$room/messages" "${auth[@]}" \
            -d "{\"body\":\"message $i of the history benchmark\",\"client_id\":\"h$i\"}" ||
            die "could not post message $i"
    done
    bench "parley history, 50 messages (PostgreSQL)" "$api/rooms/$room/messages?limit=50" \
        -H "Authorization: Bearer $token"
fi
stop_parley

ref_addr="127.0.0.1:$((20000 + RANDOM % 20000))"
taskset -c 0 "$REFERENCE" "$ref_addr" &
ref_pid=$!
on_exit "kill $ref_pid 2>/dev/null || true"
for _ in $(seq 100); do
    curl -sf "http://$ref_addr/api/v1/users/me" >/dev/null && break
    kill -0 "$ref_pid" 2>/dev/null || die "the reference server exited"
    sleep 0.1
done
bench "reference users/me (bare actix-web)" "http://$ref_addr/api/v1/users/me"
