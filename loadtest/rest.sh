#!/usr/bin/env bash
# Authenticated REST throughput: wrk against `GET /api/v1/users/me` (bearer
# token: verification, a store read, JSON) and, in the same run, against
# parley's own `GET /healthz` (the same stack with no auth and no store) as
# the reference. parley runs pinned to CPU 0 on the embedded store with the
# API rate limit raised out of the way; wrk runs pinned to CPU 1. Loopback
# only, bounded in time.
#
# usage: loadtest/rest.sh [--parley PATH] [--duration S] [--connections N]
#   PARLEY_BIN (or --parley): the parley binary (default: target/release/parley)
set -euo pipefail

SCRIPT_NAME=rest.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

DURATION=10
CONNECTIONS=64
PARLEY_BIN=${PARLEY_BIN:-$ROOT/target/release/parley}
while [[ $# -gt 0 ]]; do
    case $1 in
    --parley) PARLEY_BIN=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
((DURATION > 0 && DURATION <= 120)) || die "--duration must be 1 to 120 s"
have wrk || die "wrk is not installed (apt-get install wrk)"
have taskset || die "taskset is not installed"
[[ -x "$PARLEY_BIN" ]] || die "no parley binary at $PARLEY_BIN (cargo build --release)"
export PARLEY_BIN

# start_parley runs "$@" "$PARLEY_EXE": taskset pins it to CPU 0.
PARLEY_EXE=$PARLEY_BIN
start_parley PARLEY_RATE_API_PER_MIN=100000000 PARLEY_RATE_AUTH_PER_MIN=1000 \
    PARLEY_LOG_SAMPLE_SUCCESS=1000000 taskset -c 0
log "$PARLEY_BIN on $PARLEY_ADDR (CPU 0)"

user="rest$RANDOM"
token=$(curl -sf -X POST "http://$PARLEY_ADDR/api/v1/auth/register" \
    -H 'content-type: application/json' \
    -d "{\"username\":\"$user\",\"email\":\"$user@example.com\",\"password\":\"correct horse battery staple\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') ||
    die "could not register a user"

bench() {
    local label=$1 path=$2
    shift 2
    log "$label: wrk -t1 -c$CONNECTIONS -d${DURATION}s http://$PARLEY_ADDR$path"
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" \
        "http://$PARLEY_ADDR$path" | sed "s|^|  $label: |"
}

bench "healthz (reference)" /healthz
bench "users/me (bearer)" /api/v1/users/me -H "Authorization: Bearer $token"
