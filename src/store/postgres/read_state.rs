//! What the log looks like to a reader: history pages of messages in their
//! current state, read cursors, and exact unread counts.
//!
//! # Why unread counts are counted, not kept
//!
//! `unread` is the number of live messages by others after the reader's
//! cursor. A counter per (user, room) would have to change on every
//! message for every member, and on every delete; counting instead reads
//! `room_messages_history_idx` (messages only, with their author and
//! whether deleted in the index) from the cursor onwards, an index-only
//! range that is empty for a room the user is caught up in. It is exact by construction, and its cost
//! is the number of unread messages, not the size of the room.

use super::sql;
use crate::domain::{MessageId, RoomId, Seq, UserId};
use crate::store::{
    CursorMove, HistoryItem, HistoryQuery, ReactionCount, ReadCursor, RoomUnread, StoreError,
};
use anyhow::Context;
use deadpool_postgres::Pool;
use std::collections::BTreeMap;
use tokio_postgres::Row;

/// A message's columns for a history item; `mine` is the viewer's emoji,
/// looked up only on messages someone reacted to (most have no reactions,
/// and the look-up is an index probe per row).
macro_rules! history_select {
    ($filter:literal, $order:literal) => {
        concat!(
            "SELECT seq, id, author, body, client_id, created_at, reply_to, edited_at, deleted, \
             reactions, CASE WHEN m.reactions = '{}' THEN '{}'::text[] ELSE \
             ARRAY(SELECT r.emoji FROM message_reactions r WHERE r.room_id = m.room_id \
             AND r.seq = m.seq AND r.user_id = $2) END AS mine \
             FROM room_messages m WHERE m.room_id = $1 AND m.kind = 'message' \
             AND m.seq > $3 AND m.seq < $4 ",
            $filter,
            " ORDER BY m.seq ",
            $order,
            " LIMIT $5"
        )
    };
}

const OLDEST: &str = history_select!("AND $6::bigint IS NULL", "ASC");
const NEWEST: &str = history_select!("AND $6::bigint IS NULL", "DESC");
/// A thread: the replies to `$6`, off `room_messages_reply_idx`.
const THREAD_OLDEST: &str = history_select!("AND m.reply_to = $6", "ASC");
const THREAD_NEWEST: &str = history_select!("AND m.reply_to = $6", "DESC");

/// How many live messages by `$1` others lie after the cursor, per room.
macro_rules! unread_of {
    ($rooms:literal) => {
        concat!(
            "SELECT r.id, r.last_seq, COALESCE(c.seq, 0) AS read_seq, \
             CASE WHEN r.last_seq <= COALESCE(c.seq, 0) THEN 0 ELSE \
               (SELECT count(*) FROM room_messages m WHERE m.room_id = r.id \
                AND m.kind = 'message' AND NOT m.deleted AND m.seq > COALESCE(c.seq, 0) \
                AND m.author <> $1) END AS unread \
             FROM ",
            $rooms,
            " LEFT JOIN read_cursors c ON c.room_id = r.id AND c.user_id = $1"
        )
    };
}

/// The given rooms, in the order given.
const ROOM_UNREAD: &str = concat!(
    unread_of!("UNNEST($2::uuid[]) WITH ORDINALITY AS q(id, n) JOIN rooms r USING (id)"),
    " ORDER BY q.n"
);

/// Every room the user is in, and every public room they have read in
/// (a cursor left in a private room they were removed from is not theirs:
/// they may no longer read it).
const UNREAD_ROOMS: &str = concat!(
    "SELECT * FROM (",
    unread_of!(
        "(SELECT room_id FROM room_members WHERE user_id = $1 \
          UNION SELECT c.room_id FROM read_cursors c JOIN rooms p ON p.id = c.room_id \
          WHERE c.user_id = $1 AND p.kind = 'public') AS q(id) \
          JOIN rooms r USING (id)"
    ),
    ") AS positions WHERE unread > 0 ORDER BY id"
);

#[tracing::instrument(skip_all, fields(%room, limit = query.limit))]
pub(super) async fn history(
    pool: &Pool,
    room: RoomId,
    viewer: UserId,
    query: HistoryQuery,
) -> Result<Vec<HistoryItem>, StoreError> {
    let statement = match (query.after.is_some(), query.reply_to.is_some()) {
        (true, false) => OLDEST,
        (false, false) => NEWEST,
        (true, true) => THREAD_OLDEST,
        (false, true) => THREAD_NEWEST,
    };
    let after = query.after.unwrap_or_default().0;
    let before = query.before.map_or(i64::MAX, |s| s.0);
    let reply_to = query.reply_to.map(|s| s.0);
    let params: sql::Params = &[
        &room.0,
        &viewer.0,
        &after,
        &before,
        &i64::from(query.limit),
        &reply_to,
    ];
    let rows = sql::query(pool, statement, params)
        .await
        .context("reading room history")?;
    let mut items = rows
        .iter()
        .map(history_item)
        .collect::<anyhow::Result<Vec<_>>>()
        .context("reading room history")?;
    items.sort_by_key(|item| item.seq);
    Ok(items)
}

fn history_item(row: &Row) -> anyhow::Result<HistoryItem> {
    let counts: BTreeMap<String, i64> = serde_json::from_value(sql::get(row, "reactions")?)?;
    let mine: Vec<String> = sql::get(row, "mine")?;
    Ok(HistoryItem {
        seq: Seq(sql::get(row, "seq")?),
        id: MessageId(sql::get(row, "id")?),
        author: UserId(sql::get(row, "author")?),
        body: sql::get(row, "body")?,
        ts: sql::get(row, "created_at")?,
        client_id: sql::get(row, "client_id")?,
        reply_to: sql::get::<Option<i64>>(row, "reply_to")?.map(Seq),
        edited_at: sql::get(row, "edited_at")?,
        deleted: sql::get(row, "deleted")?,
        reactions: counts
            .into_iter()
            .map(|(emoji, count)| ReactionCount {
                me: mine.contains(&emoji),
                emoji,
                count,
            })
            .collect(),
    })
}

#[tracing::instrument(skip_all, fields(%room, %user, %seq))]
pub(super) async fn mark_read(
    pool: &Pool,
    room: RoomId,
    user: UserId,
    seq: Seq,
) -> Result<CursorMove, StoreError> {
    // Clamped to what exists, and never backwards, in one statement; `old`
    // reads the cursor as it was before (the statement's snapshot).
    const MARK: &str = "\
        WITH old AS (SELECT seq FROM read_cursors WHERE room_id = $1 AND user_id = $2), \
        new AS ( \
            INSERT INTO read_cursors (room_id, user_id, seq) \
            SELECT id, $2, LEAST($3, last_seq) FROM rooms WHERE id = $1 \
            ON CONFLICT (room_id, user_id) \
            DO UPDATE SET seq = GREATEST(read_cursors.seq, EXCLUDED.seq) \
            RETURNING seq) \
        SELECT new.seq, (SELECT seq FROM old) AS before FROM new";
    let row = sql::query_opt(pool, MARK, &[&room.0, &user.0, &seq.0])
        .await
        .context("moving a read cursor")?
        .ok_or(StoreError::NotFound)?;
    let seq: i64 = sql::get(&row, "seq").context("moving a read cursor")?;
    let before: Option<i64> = sql::get(&row, "before").context("moving a read cursor")?;
    Ok(CursorMove {
        seq: Seq(seq),
        moved: before.is_none_or(|before| seq > before),
    })
}

#[tracing::instrument(skip_all, fields(%room))]
pub(super) async fn read_cursors(pool: &Pool, room: RoomId) -> Result<Vec<ReadCursor>, StoreError> {
    const CURSORS: &str =
        "SELECT user_id, seq FROM read_cursors WHERE room_id = $1 ORDER BY user_id";
    let rows = sql::query(pool, CURSORS, &[&room.0])
        .await
        .context("reading read cursors")?;
    let read = |row: &Row| -> anyhow::Result<ReadCursor> {
        Ok(ReadCursor {
            user: UserId(sql::get(row, "user_id")?),
            seq: Seq(sql::get(row, "seq")?),
        })
    };
    Ok(rows
        .iter()
        .map(read)
        .collect::<anyhow::Result<_>>()
        .context("reading read cursors")?)
}

#[tracing::instrument(skip_all, fields(%user, rooms = rooms.len()))]
pub(super) async fn room_unread(
    pool: &Pool,
    user: UserId,
    rooms: &[RoomId],
) -> Result<Vec<RoomUnread>, StoreError> {
    let ids: Vec<uuid::Uuid> = rooms.iter().map(|r| r.0).collect();
    let rows = sql::query(pool, ROOM_UNREAD, &[&user.0, &ids])
        .await
        .context("counting unread messages")?;
    positions(&rows)
}

#[tracing::instrument(skip_all, fields(%user))]
pub(super) async fn unread_rooms(pool: &Pool, user: UserId) -> Result<Vec<RoomUnread>, StoreError> {
    let rows = sql::query(pool, UNREAD_ROOMS, &[&user.0])
        .await
        .context("counting unread messages")?;
    positions(&rows)
}

fn positions(rows: &[Row]) -> Result<Vec<RoomUnread>, StoreError> {
    let read = |row: &Row| -> anyhow::Result<RoomUnread> {
        Ok(RoomUnread {
            room: RoomId(sql::get(row, "id")?),
            last_seq: Seq(sql::get(row, "last_seq")?),
            read_seq: Seq(sql::get(row, "read_seq")?),
            unread: sql::get(row, "unread")?,
        })
    };
    Ok(rows
        .iter()
        .map(read)
        .collect::<anyhow::Result<_>>()
        .context("counting unread messages")?)
}
