//! Retention: each room's `retention_days` and its horizon (`first_seq`),
//! and the purge of the events below it.
//!
//! A purge never holds a room's lock while it works, so publishes into the
//! room carry on: the horizon is found by a plain read, moved by one short
//! `UPDATE` of the room row (it waits at most for one append to commit),
//! then the rows below it go in small batches, each statement its own
//! transaction, locking only the rows it deletes, which no append touches
//! (edits and reactions find a target below the horizon not found). Two
//! instances purging the same room at once is harmless: the horizon only
//! moves forward, and a row is deleted once.

use super::rooms::room_from_row;
use super::sql;
use crate::domain::{RetentionDays, RoomId, Seq};
use crate::store::{Room, StoreError};
use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

#[tracing::instrument(skip_all, fields(%room))]
pub(super) async fn set(
    pool: &Pool,
    room: RoomId,
    days: Option<RetentionDays>,
) -> Result<Room, StoreError> {
    const SET: &str = "UPDATE rooms SET retention_days = $2 WHERE id = $1 \
                       RETURNING id, name, kind, created_by, created_at, retention_days";
    let days = days.map(|d| i32::try_from(d.get())).transpose();
    let days = days.context("a retention beyond i32")?;
    let row = sql::query_opt(pool, SET, &[&room.0, &days])
        .await
        .context("setting a room's retention")?
        .ok_or(StoreError::NotFound)?;
    Ok(room_from_row(&row)?)
}

#[tracing::instrument(skip_all, fields(limit))]
pub(super) async fn rooms_with_retention(
    pool: &Pool,
    after: Option<RoomId>,
    limit: u32,
) -> Result<Vec<(RoomId, RetentionDays)>, StoreError> {
    // Off `rooms_retention_idx`.
    const WITH: &str = "SELECT id, retention_days FROM rooms \
                        WHERE retention_days IS NOT NULL AND id > $1 ORDER BY id LIMIT $2";
    let after = after.map_or(uuid::Uuid::nil(), |id| id.0);
    let rows = sql::query(pool, WITH, &[&after, &i64::from(limit)])
        .await
        .context("listing rooms with a retention")?;
    let read = |row: &tokio_postgres::Row| -> anyhow::Result<(RoomId, RetentionDays)> {
        let days: i32 = sql::get(row, "retention_days")?;
        let days = RetentionDays::parse(i64::from(days))
            .map_err(|e| anyhow!("stored retention {days} {e}"))?;
        Ok((RoomId(sql::get(row, "id")?), days))
    };
    Ok(rows
        .iter()
        .map(read)
        .collect::<anyhow::Result<_>>()
        .context("listing rooms with a retention")?)
}

/// The first event at or after `$2` from the current horizon on, walked off
/// the primary key: its cost is the expired rows still there, which the
/// purge is about to delete anyway. When every row is expired, the next
/// seq after the newest row this snapshot sees: a message appended since
/// has a higher seq and is new, so it is kept.
const HORIZON: &str = "\
    SELECT COALESCE( \
        (SELECT seq FROM room_messages WHERE room_id = $1 AND seq >= r.first_seq \
         AND created_at >= $2 ORDER BY seq LIMIT 1), \
        (SELECT max(seq) + 1 FROM room_messages WHERE room_id = $1), \
        r.first_seq) AS first_seq \
    FROM rooms r WHERE r.id = $1";

/// Only ever forward. The one statement of a purge that locks the room row,
/// for as long as an `UPDATE` of one row takes.
const ADVANCE: &str = "\
    UPDATE rooms SET first_seq = GREATEST(first_seq, $2) WHERE id = $1 RETURNING first_seq";

#[tracing::instrument(skip_all, fields(%room))]
pub(super) async fn advance_horizon(
    pool: &Pool,
    room: RoomId,
    cutoff: DateTime<Utc>,
) -> Result<Seq, StoreError> {
    // Found first, in a statement of its own, so the walk over expired rows
    // holds no lock.
    let row = sql::query_opt(pool, HORIZON, &[&room.0, &cutoff])
        .await
        .context("finding a room's retention horizon")?
        .ok_or(StoreError::NotFound)?;
    let first: i64 = sql::get(&row, "first_seq")?;
    let row = sql::query_opt(pool, ADVANCE, &[&room.0, &first])
        .await
        .context("advancing a room's retention horizon")?
        .ok_or(StoreError::NotFound)?;
    Ok(Seq(sql::get(&row, "first_seq")?))
}

/// One batch: the oldest events below the horizon, with the reactions held
/// on them (a message's reactions share its seq).
const PURGE: &str = "\
    WITH doomed AS ( \
        SELECT seq FROM room_messages WHERE room_id = $1 \
        AND seq < (SELECT first_seq FROM rooms WHERE id = $1) ORDER BY seq LIMIT $2), \
    reactions AS ( \
        DELETE FROM message_reactions x USING doomed d WHERE x.room_id = $1 AND x.seq = d.seq), \
    gone AS ( \
        DELETE FROM room_messages m USING doomed d WHERE m.room_id = $1 AND m.seq = d.seq \
        RETURNING 1) \
    SELECT count(*) AS purged FROM gone";

#[tracing::instrument(skip_all, fields(%room, batch))]
pub(super) async fn purge_below_horizon(
    pool: &Pool,
    room: RoomId,
    batch: u32,
) -> Result<u64, StoreError> {
    let row = sql::query_opt(pool, PURGE, &[&room.0, &i64::from(batch)])
        .await
        .context("purging a room's expired events")?
        .ok_or_else(|| anyhow!("a count returned no row"))?;
    let purged: i64 = sql::get(&row, "purged")?;
    Ok(u64::try_from(purged).unwrap_or(0))
}
