#!/usr/bin/env bash
# PostgreSQL's own latency for parley's append, as the reference of
# `loadtest/run.sh ack`: pgbench runs loadtest/pgbench/append.sql (one
# batch of 10 messages in 10 rooms per transaction) at RATE/10
# transactions a second from 4 clients (parley's writers on one engine
# thread), on the database the parley run left, and prints the
# transactions' latency (schedule lag excluded) as p50 / p99 / mean.
#
# usage: loadtest/pgbench/append.sh DATABASE_URL RATE SECONDS OUT_PREFIX
set -euo pipefail
url=$1 rate=$2 seconds=$3 out=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
psql -q "$url" -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS pgbench_append_rooms;
CREATE TABLE pgbench_append_rooms AS
SELECT row_number() OVER (ORDER BY id) AS n, id, created_by AS author FROM rooms;
CREATE UNIQUE INDEX ON pgbench_append_rooms (n);
ANALYZE pgbench_append_rooms;
SQL
rooms=$(psql -At "$url" -c "SELECT count(*) FROM pgbench_append_rooms")
if ((rooms < 10)); then
    echo "append.sh: the database has $rooms rooms; at least 10 are needed" >&2
    exit 1
fi
tps=$(((rate + 9) / 10))
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
(cd "$log_dir" && pgbench -n -M prepared -f "$here/append.sql" -D rooms="$rooms" \
    -c 4 -j 1 -R "$tps" -T "$seconds" -l --log-prefix=append "$url") >"$out.txt" 2>&1
# Each log line: client, transaction, latency µs, script, epoch s, µs, lag µs.
cat "$log_dir"/append* | python3 -c '
import sys
xs = sorted(int(l.split()[2]) - int(l.split()[6]) for l in sys.stdin if len(l.split()) >= 7)
if not xs:
    sys.exit("append.sh: pgbench logged no transaction")
pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] / 1000
print(f"  pgbench append  {len(xs)} batches of 10  p50 {pick(0.5):.3f} ms  p99 {pick(0.99):.3f} ms  mean {sum(xs) / len(xs) / 1000:.3f} ms")
'
