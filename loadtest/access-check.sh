#!/usr/bin/env bash
# What the access check costs PostgreSQL before and after bans, mutes and
# blocks joined it (docs/benchmarks.md): the old statement (room and role)
# and the new one (room, role, ban, mute and a direct-room peer's block;
# src/store/postgres/rooms.rs ACCESS, keep the two in step) run side by
# side by one pgbench, in one run, against a seeded database with the
# migrations of migrations/ applied.
#
# usage: loadtest/access-check.sh [--duration S]
#   --duration S   seconds of pgbench (default 10, at most 120)
# Needs psql and pgbench, and PostgreSQL at PARLEY_BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres; a database is
# created next to it and dropped afterwards).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

DURATION=10
while [[ $# -gt 0 ]]; do
    case $1 in
    --duration) DURATION=$2; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 1 || DURATION > 120)); then
    die "--duration must be 1 to 120"
fi
for tool in psql pgbench; do have "$tool" || die "$tool is not installed"; done

base=${PARLEY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db="access_bench_$$"
url="${base%/*}/$db"
work=$(mktemp -d)
cleanup() {
    psql -q "$base" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql -q "$base" -c "CREATE DATABASE $db" >/dev/null
for migration in "$ROOT"/migrations/V*.sql; do
    psql -q -v ON_ERROR_STOP=1 "$url" -f "$migration" >/dev/null
done

log "seeding 100,000 users, 10,000 rooms (a third direct), 300,000 members, 5,000 bans and mutes, 50,000 blocks"
psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null <<'SQL'
INSERT INTO users (id, username, email, password_hash)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'u' || i, i || '@x', 'h'
FROM generate_series(1, 100000) AS i;
INSERT INTO rooms (id, name, kind, created_by)
SELECT ('00000000-0000-7000-9000-' || lpad(to_hex(r), 12, '0'))::uuid, 'r' || r,
       CASE WHEN r % 3 = 0 THEN 'direct' WHEN r % 3 = 1 THEN 'public' ELSE 'private' END,
       ('00000000-0000-7000-8000-' || lpad(to_hex(1 + r * 7 % 100000), 12, '0'))::uuid
FROM generate_series(1, 10000) AS r;
-- Direct rooms hold two members; the others thirty-odd.
INSERT INTO room_members (room_id, user_id, role)
SELECT DISTINCT ON (room_id, user_id) room_id, user_id, 'member' FROM (
  SELECT ('00000000-0000-7000-9000-' || lpad(to_hex(r), 12, '0'))::uuid AS room_id,
         ('00000000-0000-7000-8000-' || lpad(to_hex(1 + (r * 7919 + m * 104729) % 100000), 12, '0'))::uuid AS user_id
  FROM generate_series(1, 10000) AS r, generate_series(1, 30) AS m
  WHERE r % 3 <> 0 OR m <= 2) x;
INSERT INTO room_restrictions (room_id, user_id, kind, reason, created_by)
SELECT ('00000000-0000-7000-9000-' || lpad(to_hex(1 + i % 10000), 12, '0'))::uuid,
       ('00000000-0000-7000-8000-' || lpad(to_hex(1 + (i * 31) % 100000), 12, '0'))::uuid,
       CASE WHEN i % 2 = 0 THEN 'ban' ELSE 'mute' END, 'spam',
       ('00000000-0000-7000-8000-' || lpad(to_hex(1), 12, '0'))::uuid
FROM generate_series(1, 5000) AS i ON CONFLICT DO NOTHING;
INSERT INTO user_blocks (blocker, blocked)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(1 + i % 100000), 12, '0'))::uuid,
       ('00000000-0000-7000-8000-' || lpad(to_hex(1 + (i * 13 + 1) % 100000), 12, '0'))::uuid
FROM generate_series(1, 50000) AS i ON CONFLICT DO NOTHING;
VACUUM ANALYZE;
SQL

# A random room and a random user (a member of it about one time in 300).
pick='\set r random(1, 10000)
\set u random(1, 100000)'
cat >"$work/before.sql" <<EOF2
$pick
SELECT r.id, r.name, r.kind, r.created_by, r.created_at, m.role
FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id
  AND m.user_id = ('00000000-0000-7000-8000-' || lpad(to_hex(:u::int), 12, '0'))::uuid
WHERE r.id = ('00000000-0000-7000-9000-' || lpad(to_hex(:r::int), 12, '0'))::uuid;
EOF2
cat >"$work/after.sql" <<EOF2
$pick
SELECT r.id, r.name, r.kind, r.created_by, r.created_at, m.role,
  (SELECT to_jsonb(x) FROM (SELECT reason, until, created_by, created_at
     FROM room_restrictions WHERE room_id = r.id AND user_id = ('00000000-0000-7000-8000-' || lpad(to_hex(:u::int), 12, '0'))::uuid AND kind = 'ban'
     AND (until IS NULL OR until > now())) x) AS ban,
  (SELECT to_jsonb(x) FROM (SELECT reason, until, created_by, created_at
     FROM room_restrictions WHERE room_id = r.id AND user_id = ('00000000-0000-7000-8000-' || lpad(to_hex(:u::int), 12, '0'))::uuid AND kind = 'mute'
     AND (until IS NULL OR until > now())) x) AS mute,
  (r.kind = 'direct' AND EXISTS (SELECT 1 FROM room_members p
     JOIN user_blocks b ON b.blocker = p.user_id AND b.blocked = ('00000000-0000-7000-8000-' || lpad(to_hex(:u::int), 12, '0'))::uuid
     WHERE p.room_id = r.id AND p.user_id <> ('00000000-0000-7000-8000-' || lpad(to_hex(:u::int), 12, '0'))::uuid)) AS blocked_by_peer
FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id
  AND m.user_id = ('00000000-0000-7000-8000-' || lpad(to_hex(:u::int), 12, '0'))::uuid
WHERE r.id = ('00000000-0000-7000-9000-' || lpad(to_hex(:r::int), 12, '0'))::uuid;
EOF2

log "pgbench: both statements, interleaved, 4 clients, ${DURATION} s"
pgbench -n -M prepared -c 4 -j 2 -T "$DURATION" -r \
    -f "$work/before.sql@1" -f "$work/after.sql@1" "$url" |
    grep -E 'SQL script|tps|latency average|weight|^ +[0-9.]+ +[0-9]+ +SELECT' || true
