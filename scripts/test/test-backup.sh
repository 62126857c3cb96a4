#!/usr/bin/env bash
# Backup round trip against real PostgreSQL: creates a private database
# parley_test_backup_<random>, starts a debug parley on it, creates a user,
# a room and messages through REST, backs the database up encrypted with
# scripts/ops/backup.sh, drops it, restores it with scripts/ops/restore.sh --create,
# starts parley again and checks through REST that the room history is
# identical and that a repeated client_id still gets its original ack. Also
# checks that the backup is really encrypted, that --keep prunes, and that
# the three scripts are shellcheck clean. The database is dropped at the end
# whatever happens. Takes about 3 s once parley is built.
#
#   scripts/test/test-backup.sh
#
# PARLEY_TEST_DATABASE_URL names the server (default
# postgres://postgres@127.0.0.1:5432/postgres; its user must be allowed to
# create databases); builds target/debug/parley when it is out of date
# (PARLEY_BIN=path runs another binary instead).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$PARLEY_ROOT"

# The scripts under test are also held to the linter their users' CI runs.
shellcheck scripts/lib.sh scripts/ops/backup.sh scripts/ops/restore.sh scripts/test/test-backup.sh

base_url=${PARLEY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
[[ "$base_url" != *\?* ]] || die "PARLEY_TEST_DATABASE_URL must not carry query parameters"
db="parley_test_backup_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
db_url="${base_url%/*}/$db"
psql_base=(psql "$base_url" -w -X -q -A -t -v ON_ERROR_STOP=1)

work=$(mktemp -d)
cleanup() {
    stop_parley
    "${psql_base[@]}" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
on_exit cleanup

# Starts parley on $db_url (lib.sh's start_parley) and sets $api.
start_parley_on_db() {
    start_parley DATABASE_URL="$db_url"
    api="http://$PARLEY_ADDR/api/v1"
}

# call METHOD PATH [JSON]: prints the body; fails unless the status is 2xx.
call() {
    local out status
    out=$(curl -sS -o "$work/body" -w '%{http_code}' -X "$1" "$api$2" \
        -H 'Content-Type: application/json' ${token:+-H "Authorization: Bearer $token"} \
        ${3:+--data "$3"}) || die "$1 $2: curl failed"
    status=$out
    [[ "$status" == 2* ]] || die "$1 $2 answered $status: $(cat "$work/body")"
    cat "$work/body"
}
json() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[int(k) if isinstance(v,list) else k]
print(v)' "$@"; }

"${psql_base[@]}" -c "CREATE DATABASE \"$db\"" >/dev/null
log "database $db"

start_parley_on_db
token=
token=$(call POST /auth/register '{"username":"backup_ada","email":"backup_ada@example.com","password":"correct horse battery"}' | json access_token)
room=$(call POST /rooms '{"name":"backups","kind":"private"}' | json id)
for i in 1 2 3 4 5; do
    call POST "/rooms/$room/messages" "{\"body\":\"message $i: h\u00e9llo \\\"quoted\\\" \ud83d\ude00\",\"client_id\":\"c-$i\"}" >/dev/null
done
call GET "/rooms/$room/messages?limit=200" >"$work/before.json"
[[ "$(json items 4 seq <"$work/before.json")" == 5 ]] || die "expected 5 messages before the backup: $(cat "$work/before.json")"
stop_parley

openssl rand -hex 32 >"$work/key"
backups="$work/backups"
for _ in 1 2 3; do
    backup=$(scripts/ops/backup.sh --dir "$backups" --keep 2 --key-file "$work/key" "$db_url")
done
count=$(find "$backups" -name '*.dump.enc' | wc -l)
((count == 2)) || die "--keep 2 left $count backups"
# A custom-format dump starts with PGDMP; an encrypted one must not.
[[ "$(head -c 5 "$backup")" != PGDMP ]] || die "$backup is not encrypted"
log "backed up to $(basename "$backup") (encrypted, 2 of 3 kept)"

"${psql_base[@]}" -c "DROP DATABASE \"$db\" WITH (FORCE)" >/dev/null
[[ -z "$("${psql_base[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]] ||
    die "database $db still exists after DROP"
log "dropped $db"

scripts/ops/restore.sh --create --key-file "$work/key" "$backup" "$base_url"
log "restored"

start_parley_on_db
token=$(call POST /auth/login '{"username":"backup_ada","password":"correct horse battery"}' | json access_token)
call GET "/rooms/$room/messages?limit=200" >"$work/after.json"
python3 - "$work/before.json" "$work/after.json" <<'PY' || die "room history differs after the restore"
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:])
if before != after:
    print("before:", json.dumps(before, indent=1), "\nafter:", json.dumps(after, indent=1), file=sys.stderr)
    sys.exit(1)
PY
ack=$(call POST "/rooms/$room/messages" '{"body":"again","client_id":"c-3"}')
[[ "$(json seq <<<"$ack")" == 3 && "$(json created <<<"$ack")" == False ]] ||
    die "a repeated client_id after the restore did not get its original ack: $ack"
log "room history identical after backup, drop and restore (5 messages); idempotency records restored"
