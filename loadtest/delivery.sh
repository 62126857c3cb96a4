#!/usr/bin/env bash
# Web Push and webhook delivery at a fixed rate (issue 19; docs/benchmarks.md).
#
#   loadtest/delivery.sh [--bin PATH] [--rate R] [--duration S] [--users N]
#                        [--rooms N] [--delay-ms MS] [--only push|webhooks]
#                        [--out DIR] [--no-build] [--env VAR=VALUE ...]
#
# --env (repeatable) adds a setting to parley's environment, to compare
# settings in one script: --env PARLEY_WEBHOOK_CONCURRENCY=64.
#
# One release parley on PostgreSQL (a fresh database) pinned to CPU 0;
# the sink and the load on CPU 1. Everything on 127.0.0.0/8.
#
# push:     N users (inserted with SQL: registering measures argon2), one
#           push subscription each at the sink (its endpoints are admitted
#           with PARLEY_PUSH_ALLOW_HOSTS); R notifications a second for S
#           seconds through the server API (POST /api/v1/server/notifications
#           with an API key). The sink decrypts each push with its
#           browser's key and times it from due (stored + the delay).
# webhooks: R messages a second for S seconds through the server API
#           (POST /api/v1/server/rooms/{id}/messages) with no webhook
#           endpoint, then an endpoint at the sink subscribed to
#           message.created and the same again: publish -> ack with and
#           without, and each delivery's lag from its event's timestamp.
#
# Bounded: every wait has a limit, every process started here is stopped
# (and the database dropped) on exit. Reports go to OUT (default
# target/loadtest/delivery-TIME/): offer-*.json, sink-*.json, metrics-*.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET/release/parley"
RATE=1000
DURATION=15
USERS=1000
ROOMS=20
DELAY_MS=200
ONLY=all
OUT=""
BUILD=1
PG=${PG_URL:-postgres://postgres@127.0.0.1:5432}
DB=parley_bench_delivery_$$
HTTP=127.0.0.1:18280
ADMIN=127.0.0.1:18290
SINK=127.0.0.3:19300
SERVER_CPU=0
LOAD_CPU=1
# How long deliveries may trail the offered load before the run gives up.
DRAIN_S=180

EXTRA_ENV=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) BIN=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --users) USERS=$2; shift ;;
        --rooms) ROOMS=$2; shift ;;
        --delay-ms) DELAY_MS=$2; shift ;;
        --only) ONLY=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --env) EXTRA_ENV+=("$2"); shift ;;
        -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "delivery.sh: unknown argument: $1" >&2; exit 64 ;;
    esac
    shift
done
case "$ONLY" in all | push | webhooks) ;; *) echo "delivery.sh: --only push|webhooks" >&2; exit 64 ;; esac

if [[ $BUILD == 1 ]]; then
    cargo build --release -p parley-loadtest --bin delivery-sink --bin delivery-offer
    [[ "$BIN" != "$TARGET/release/parley" ]] || cargo build --release -p parley --bin parley
fi
OUT=${OUT:-"$ROOT/target/loadtest/delivery-$(date -u +%Y%m%d-%H%M%S)"}
mkdir -p "$OUT"
log() { echo "delivery.sh: $*" | tee -a "$OUT/run.txt"; }
log "$(date -u +%FT%TZ) bin=$BIN rate=$RATE duration=${DURATION}s users=$USERS rooms=$ROOMS delay=${DELAY_MS}ms"
log "load average before the start: $(cut -d' ' -f1-3 /proc/loadavg)"

psql_do() { psql "$1" -X -q -v ON_ERROR_STOP=1 "${@:2}" >/dev/null; }
SINK_PID=""
PARLEY_PID=""
cleanup() {
    [[ -z "$PARLEY_PID" ]] || stop_pid "$PARLEY_PID"
    [[ -z "$SINK_PID" ]] || stop_pid "$SINK_PID"
    psql_do "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
}
on_exit cleanup
trap 'exit 130' INT TERM

# until_ok SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds.
until_ok() {
    local limit=$1
    shift
    for _ in $(seq $((limit * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
sink_report() { curl -fsS "http://$SINK/report"; }
# wait_delivered KIND N: until the sink has N distinct ids of KIND, at most
# DRAIN_S seconds; prints how long it waited.
wait_delivered() {
    local kind=$1 want=$2 have=0 waited=0
    while ((waited < DRAIN_S)); do
        have=$(sink_report | json "d['$kind']['distinct']")
        ((have >= want)) && break
        sleep 1
        waited=$((waited + 1))
    done
    log "$kind: $have of $want distinct after waiting ${waited}s past the offer"
}

psql_do "$PG/postgres" -c "CREATE DATABASE $DB"

taskset -c "$LOAD_CPU" "$TARGET/release/delivery-sink" --addr "$SINK" --subscriptions "$USERS" \
    --subscriptions-csv "$OUT/subscriptions.csv" --push-delay-ms "$DELAY_MS" \
    --report "$OUT/sink-final.json" >"$OUT/sink.log" 2>&1 &
SINK_PID=$!
until_ok 30 sink_report || { log "the sink did not start; see $OUT/sink.log"; exit 1; }

env -i PATH="$PATH" DATABASE_URL="$PG/$DB" PARLEY_HTTP_ADDR=$HTTP PARLEY_ADMIN_ADDR=$ADMIN \
    PARLEY_LOG=warn PARLEY_DRAIN_TIMEOUT_S=5 \
    PARLEY_RATE_AUTH_PER_MIN=1000 PARLEY_RATE_API_PER_MIN=100000000 \
    PARLEY_WS_USER_MSGS_PER_S=1000000 \
    PARLEY_PUSH_ALLOW_HOSTS=$SINK PARLEY_PUSH_DELAY_MS="$DELAY_MS" PARLEY_PUSH_POLL_MS=50 \
    "${EXTRA_ENV[@]}" \
    taskset -c "$SERVER_CPU" "$BIN" >"$OUT/parley.log" 2>&1 &
PARLEY_PID=$!
until_ok 60 curl -fsS "http://$HTTP/readyz" || { log "parley is not ready; see $OUT/parley.log"; exit 1; }

KEY=$(curl -fsS "http://$ADMIN/admin/api-keys" -H 'content-type: application/json' \
    -d '{"name": "delivery bench", "scopes": ["rooms:write", "notifications:write"]}' | json "d['key']")

# offer NAME ARGS...: one fixed-rate run of the server API from CPU 1.
offer() {
    local name=$1
    shift
    log "$name: load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%T)"
    taskset -c "$LOAD_CPU" "$TARGET/release/delivery-offer" --url "http://$HTTP" --key "$KEY" \
        --rate "$RATE" --duration-s "$DURATION" --out "$OUT/offer-$name.json" "$@" >/dev/null
}
created() { json "d['statuses'].get('201', 0)" <"$OUT/offer-$1.json"; }

if [[ $ONLY != webhooks ]]; then
    psql_do "$PG/$DB" -c "
        INSERT INTO users (id, username, email, password_hash)
        SELECT gen_random_uuid(), 'bench' || n, 'bench' || n || '@example.com', 'x'
        FROM generate_series(0, $USERS - 1) AS n;
        CREATE TEMP TABLE browsers (n int, endpoint text, p256dh bytea, auth bytea);" \
        -c "\\copy browsers FROM '$OUT/subscriptions.csv' WITH (FORMAT csv)" \
        -c "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth)
            SELECT gen_random_uuid(), u.id, b.endpoint, b.p256dh, b.auth
            FROM browsers b JOIN users u ON u.username = 'bench' || b.n;"
    psql "$PG/$DB" -X -A -t -c "SELECT id FROM users WHERE username LIKE 'bench%' ORDER BY username" \
        >"$OUT/users.txt"
    offer notifications --what notifications --ids "$OUT/users.txt"
    wait_delivered push "$(created notifications)"
    sink_report >"$OUT/sink-push.json"
    curl -fsS "http://$ADMIN/metrics" >"$OUT/metrics-push.txt"
fi

if [[ $ONLY != push ]]; then
    AUTHOR=$(curl -fsS "http://$HTTP/api/v1/auth/register" -H 'content-type: application/json' \
        -d '{"username": "author", "email": "author@example.com", "password": "correct horse battery"}')
    TOKEN=$(json "d['access_token']" <<<"$AUTHOR")
    AUTHOR_ID=$(curl -fsS "http://$HTTP/api/v1/users/me" -H "authorization: Bearer $TOKEN" | json "d['id']")
    : >"$OUT/rooms.txt"
    for n in $(seq "$ROOMS"); do
        curl -fsS "http://$HTTP/api/v1/rooms" -H "authorization: Bearer $TOKEN" \
            -H 'content-type: application/json' -d "{\"name\": \"bench $n\", \"kind\": \"public\"}" |
            json "d['id']" >>"$OUT/rooms.txt"
    done
    offer messages-no-endpoint --what messages --ids "$OUT/rooms.txt" --author "$AUTHOR_ID" --label none
    curl -fsS "http://$ADMIN/admin/webhooks" -H 'content-type: application/json' \
        -d "{\"url\": \"http://$SINK/webhook\", \"events\": [\"message.created\"]}" >/dev/null
    # The endpoint is live once a message reaches it (awaited, bounded).
    probe() {
        local room
        room=$(head -1 "$OUT/rooms.txt")
        curl -fsS -o /dev/null "http://$HTTP/api/v1/server/rooms/$room/messages" \
            -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
            -d "{\"body\": \"probe\", \"client_id\": \"probe\", \"author\": \"$AUTHOR_ID\"}"
        until_ok 30 webhook_arrived || { log "no webhook arrived within 30 s; see $OUT/parley.log"; exit 1; }
    }
    webhook_arrived() { (($(sink_report | json "d['webhook']['received']") > 0)); }
    probe
    offer messages-webhook --what messages --ids "$OUT/rooms.txt" --author "$AUTHOR_ID" --label hook
    # One more than the run's messages: the probe.
    wait_delivered webhook "$(($(created messages-webhook) + 1))"
    sink_report >"$OUT/sink-webhooks.json"
    curl -fsS "http://$ADMIN/metrics" >"$OUT/metrics-webhooks.txt"
fi

python3 "$ROOT/loadtest/delivery-summary.py" "$OUT" | tee "$OUT/summary.txt"
