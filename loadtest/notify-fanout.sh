#!/usr/bin/env bash
# How long `POST /api/v1/posts` takes for an author with many followers:
# each post stores one `new_post` notification per follower before it is
# answered (so a follower reading REST right after sees it).
#
#   loadtest/notify-fanout.sh [--bin PATH] [--followers N] [--posts P]
#
# Starts parley (default target/release/parley) on PostgreSQL in a fresh
# database, registers the author, inserts N followers with SQL (registering
# them through the API would measure argon2), then times P posts with curl
# and prints each time and the median. Everything on 127.0.0.1; parley is
# stopped when the script exits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/target/release/parley"
FOLLOWERS=10000
POSTS=9
PG=${PG_URL:-postgres://postgres@127.0.0.1:5432}
DB=parley_bench_fanout_$$
ADDR=127.0.0.1:18180

while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) BIN=$2; shift ;;
        --followers) FOLLOWERS=$2; shift ;;
        --posts) POSTS=$2; shift ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "notify-fanout.sh: unknown argument: $1" >&2; exit 64 ;;
    esac
    shift
done

psql_do() { psql "$1" -X -q -v ON_ERROR_STOP=1 -c "$2" >/dev/null; }
psql_do "$PG/postgres" "CREATE DATABASE $DB"
PID=""
cleanup() {
    [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    psql_do "$PG/postgres" "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
}
trap cleanup EXIT

env -i PATH="$PATH" DATABASE_URL="$PG/$DB" PARLEY_HTTP_ADDR=$ADDR \
    PARLEY_ADMIN_ADDR=127.0.0.1:18190 PARLEY_LOG=warn \
    PARLEY_RATE_AUTH_PER_MIN=1000 PARLEY_RATE_API_PER_MIN=100000 \
    PARLEY_WS_USER_MSGS_PER_S=1000000 PARLEY_WS_CONNS_PER_USER=1000000 PARLEY_WS_CONNS_PER_IP=1000000 \
    "$BIN" >/tmp/notify-fanout-parley.log 2>&1 &
PID=$!
for _ in $(seq 100); do
    curl -fs "http://$ADDR/readyz" >/dev/null && break
    sleep 0.1
done

token=$(curl -fs "http://$ADDR/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"username":"star","email":"star@example.com","password":"correct horse battery"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
psql_do "$PG/$DB" "
    INSERT INTO users (id, username, email, password_hash)
    SELECT gen_random_uuid(), 'fan' || i, 'fan' || i || '@example.com', 'x'
    FROM generate_series(1, $FOLLOWERS) AS i;
    INSERT INTO follows (follower, followee)
    SELECT f.id, s.id FROM users f, users s WHERE f.username LIKE 'fan%' AND s.username = 'star';"

times=()
for i in $(seq "$POSTS"); do
    t=$(curl -fs -o /dev/null -w '%{time_total}' "http://$ADDR/api/v1/posts" \
        -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"body\":\"post $i\"}")
    times+=("$t")
    echo "post $i: ${t}s"
done
stored=$(psql "$PG/$DB" -X -A -t -c "SELECT count(*) FROM notifications WHERE kind = 'new_post'")
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((POSTS + 1) / 2))p")
echo "followers=$FOLLOWERS posts=$POSTS median=${median}s notifications_stored=$stored"
