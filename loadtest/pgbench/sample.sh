#!/usr/bin/env bash
# What PostgreSQL is doing, every INTERVAL seconds, for COUNT samples: the
# WAL written since the last sample (bytes, and how many full-page images:
# the first change to a page after a checkpoint logs the whole 8 KiB page),
# the time spent writing and syncing it, whether a checkpoint is running,
# and what the server's backends were waiting on at that instant. Beside a
# load run, it tells a latency rise caused by a checkpoint (full-page images
# and WAL syncs jump) from one caused by parley.
#
# usage: loadtest/pgbench/sample.sh DATABASE_URL INTERVAL COUNT > samples.tsv
# (the WAL timings need track_wal_io_timing = on; they print 0 otherwise)
set -euo pipefail
url=$1 interval=$2 count=$3
if ((count < 1 || count > 10000 || interval < 1)); then
    echo "sample.sh: INTERVAL ≥ 1 and 1 ≤ COUNT ≤ 10000" >&2
    exit 2
fi
printf 'utc\twal_mb\tfpi\twal_write_ms\twal_sync_ms\tcheckpoint\twaits\n'
previous=""
for ((i = 0; i < count; i++)); do
    # One row: cumulative WAL counters, the checkpointer's state, and the
    # wait events of active client backends right now.
    row=$(psql -At -F $'\t' "$url" -c "
        SELECT to_char(now() AT TIME ZONE 'utc', 'HH24:MI:SS'),
               w.wal_bytes, w.wal_fpi, w.wal_write_time, w.wal_sync_time,
               coalesce((SELECT wait_event FROM pg_stat_activity
                         WHERE backend_type = 'checkpointer'), '-'),
               coalesce((SELECT string_agg(e || '=' || n, ',' ORDER BY n DESC)
                         FROM (SELECT coalesce(wait_event, 'CPU') AS e, count(*) AS n
                               FROM pg_stat_activity
                               WHERE backend_type = 'client backend' AND state = 'active'
                                 AND pid <> pg_backend_pid()
                               GROUP BY 1) s), '-')
        FROM pg_stat_wal w")
    IFS=$'\t' read -r utc bytes fpi write_ms sync_ms checkpointer waits <<<"$row"
    if [[ -n "$previous" ]]; then
        IFS=$'\t' read -r _ p_bytes p_fpi p_write p_sync _ _ <<<"$previous"
        # CheckpointWriteDelay: a spread (timed) checkpoint is writing.
        awk -v u="$utc" -v b="$((bytes - p_bytes))" -v f="$((fpi - p_fpi))" \
            -v w="$write_ms" -v pw="$p_write" -v s="$sync_ms" -v ps="$p_sync" \
            -v c="$checkpointer" -v a="$waits" \
            'BEGIN { printf "%s\t%.1f\t%d\t%.0f\t%.0f\t%s\t%s\n", u, b / 1048576, f, w - pw, s - ps, c, a }'
    fi
    previous=$row
    sleep "$interval"
done
