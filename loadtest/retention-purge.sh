#!/usr/bin/env bash
# Publishes under a retention purge, at the database: the append transaction
# parley runs (lock the room row, insert, advance last_seq) driven by
# pgbench at a fixed rate into a room of OLD expired events, alone and then
# while a purge deletes them with the statements of
# src/store/postgres/retention.rs (horizon first, then batches of BATCH,
# each its own transaction). Prints append latency percentiles both ways
# and the purge rate. See docs/benchmarks.md.
#
# usage: loadtest/retention-purge.sh [SERVER_URL] [OLD] [BATCH] [RATE] [SECONDS] [PAUSE_MS]
set -euo pipefail

SERVER=${1:-postgres://postgres@127.0.0.1:5432/postgres}
OLD=${2:-1000000}
BATCH=${3:-1000}
RATE=${4:-100}
SECONDS_PER_RUN=${5:-20}
PAUSE_MS=${6:-50}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DB="retention_bench_$$"
URL="${SERVER%/*}/$DB"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; psql -q "$SERVER" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true' EXIT

psql -q "$SERVER" -c "CREATE DATABASE $DB"
for migration in "$ROOT"/migrations/V*.sql; do
    psql -q -v ON_ERROR_STOP=1 "$URL" -f "$migration" >/dev/null
done
ROOM=00000000-0000-7000-8000-000000000001
USER_ID=00000000-0000-7000-8000-000000000002
psql -q -v ON_ERROR_STOP=1 "$URL" <<SQL
INSERT INTO users (id, username, email, password_hash) VALUES ('$USER_ID', 'bench', 'bench@example.com', 'x');
INSERT INTO rooms (id, name, kind, created_by, retention_days) VALUES ('$ROOM', 'big', 'public', '$USER_ID', 1);
INSERT INTO room_messages (room_id, seq, id, author, body, client_id, created_at)
SELECT '$ROOM', g, gen_random_uuid(), '$USER_ID', 'an old message of some sixty characters, as chats have them', 'old-' || g,
       now() - interval '10 days' FROM generate_series(1, $OLD) AS g;
UPDATE rooms SET last_seq = $OLD WHERE id = '$ROOM';
VACUUM ANALYZE;
SQL

# parley's append, one message per transaction (the writer batches more).
cat >"$WORK/append.sql" <<SQL
BEGIN;
SELECT last_seq FROM rooms WHERE id = '$ROOM' FOR UPDATE;
INSERT INTO room_messages (room_id, seq, id, author, body, client_id)
SELECT '$ROOM', last_seq + 1, gen_random_uuid(), '$USER_ID', 'new', 'new-' || (last_seq + 1)
FROM rooms WHERE id = '$ROOM';
UPDATE rooms SET last_seq = last_seq + 1 WHERE id = '$ROOM';
COMMIT;
SQL

# Latency percentiles (ms) from a pgbench log (column 3: microseconds).
percentiles() {
    cat "$@" | awk '{print $3/1000}' | sort -n | awk '
        {v[NR]=$1} END {printf "n=%d p50=%.2f p99=%.2f max=%.2f ms\n", NR, v[int(NR*0.5)], v[int(NR*0.99)], v[NR]}'
}

run_appends() {
    local name=$1
    (cd "$WORK" && pgbench -n -c 2 -j 2 -R "$RATE" -T "$SECONDS_PER_RUN" -f append.sql \
        --log --log-prefix="$name" "$URL" >"$WORK/$name.out" 2>&1) || { cat "$WORK/$name.out"; exit 1; }
    echo "$name: $(percentiles "$WORK/$name".*)"
}

# One session; each batch commits on its own (COMMIT inside a top-level DO).
purge() {
    local started ended
    started=$(date +%s.%N)
    psql -qAt -v ON_ERROR_STOP=1 "$URL" >/dev/null <<SQL
UPDATE rooms SET first_seq = GREATEST(first_seq, (SELECT COALESCE(
    (SELECT seq FROM room_messages WHERE room_id = r.id AND seq >= r.first_seq
     AND created_at >= now() - interval '1 day' ORDER BY seq LIMIT 1),
    (SELECT max(seq) + 1 FROM room_messages WHERE room_id = r.id), r.first_seq)
    FROM rooms r WHERE r.id = '$ROOM')) WHERE id = '$ROOM';
CREATE TABLE purge_total (n bigint);
DO \$\$
DECLARE deleted bigint; total bigint := 0;
BEGIN
  LOOP
    WITH doomed AS (
        SELECT seq FROM room_messages WHERE room_id = '$ROOM'
        AND seq < (SELECT first_seq FROM rooms WHERE id = '$ROOM') ORDER BY seq LIMIT $BATCH),
      reactions AS (DELETE FROM message_reactions x USING doomed d WHERE x.room_id = '$ROOM' AND x.seq = d.seq),
      gone AS (DELETE FROM room_messages m USING doomed d WHERE m.room_id = '$ROOM' AND m.seq = d.seq RETURNING 1)
    SELECT count(*) INTO deleted FROM gone;
    COMMIT;
    total := total + deleted;
    EXIT WHEN deleted < $BATCH;
    PERFORM pg_sleep($PAUSE_MS / 1000.0);
  END LOOP;
  INSERT INTO purge_total VALUES (total);
END
\$\$;
SQL
    ended=$(date +%s.%N)
    awk -v n="$(psql -qAt "$URL" -c 'SELECT n FROM purge_total')" -v s="$started" -v e="$ended" \
        'BEGIN {printf "purge: %d events in %.1f s, %.0f events/s\n", n, e - s, n / (e - s)}'
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $OLD old events, batch $BATCH, pause $PAUSE_MS ms, $RATE appends/s, ${SECONDS_PER_RUN} s per run"
run_appends alone
purge >"$WORK/purge.out" &
PURGE=$!
run_appends during-purge
wait "$PURGE"
cat "$WORK/purge.out"
run_appends after
