//! The room message log: the [`MessageLog`](parley_actors::ports::MessageLog)
//! port on PostgreSQL.
//!
//! # Why seqs are gapless
//!
//! A room's `last_seq` lives on its `rooms` row. An append locks that row
//! (`SELECT ... FOR UPDATE`), numbers its new messages from `last_seq + 1`,
//! inserts them and advances `last_seq`, all in one transaction. Appends to
//! one room therefore run one at a time, across every instance, and a seq is
//! only ever visible together with all the seqs below it. A sequence object
//! could not give this: it hands out numbers outside the transaction, so a
//! rollback leaves a hole.
//!
//! A batch spanning several rooms locks them in ascending id order, the same
//! order every other append uses, so two batches cannot deadlock.
//!
//! # Idempotency
//!
//! `(room_id, author, client_id)` is unique. Under the room lock the batch's
//! keys are looked up first, so a repeated publish is answered with its
//! original message and takes no seq; a repeat within the batch itself is
//! answered with the earlier item's new message.

use super::sql::{self, LogContext};
use crate::domain::{MessageId, RoomId, Seq, UserId};
use deadpool_postgres::{Pool, Transaction};
use parley_actors::model::{Appended, NewMessage, StoredMessage};
use parley_actors::ports::LogError;
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::Row;

/// Columns read by [`message_from_row`] (the room is known to the caller).
macro_rules! message_columns {
    () => {
        "seq, id, author, body, client_id, created_at"
    };
}

const LOCK_ROOM: &str = "SELECT last_seq FROM rooms WHERE id = $1 FOR UPDATE";

/// The batch's keys joined against the unique `(room_id, author, client_id)`
/// index: one probe per key.
const EXISTING: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM room_messages m \
     JOIN UNNEST($2::uuid[], $3::text[]) AS k(author, client_id) USING (author, client_id) \
     WHERE m.room_id = $1"
);

/// All new rows in one statement, and `last_seq` advanced in the same one.
/// `clock_timestamp()` (not `now()`, the transaction's start) is read while
/// the room lock is held, so timestamps never run backwards against seqs.
const INSERT: &str = "\
    WITH inserted AS ( \
        INSERT INTO room_messages (room_id, seq, id, author, body, client_id, created_at) \
        SELECT $1::uuid, m.seq, m.id, m.author, m.body, m.client_id, clock_timestamp() \
        FROM UNNEST($2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::text[]) \
             AS m(seq, id, author, body, client_id) \
        RETURNING seq, created_at), \
    advanced AS (UPDATE rooms SET last_seq = $7 WHERE id = $1::uuid) \
    SELECT seq, created_at FROM inserted";

const RANGE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM room_messages WHERE room_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4"
);

/// The newest page, read backwards off the primary key, then put in order.
const TAIL: &str = concat!(
    "SELECT * FROM (SELECT ",
    message_columns!(),
    " FROM room_messages WHERE room_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3) AS page \
     ORDER BY seq"
);

/// A publish's idempotency key within its room: (author, client_id).
type Key = (UserId, String);

/// What one item of a batch turned out to be, before its row is written.
enum Outcome {
    /// Already in the log before this batch.
    Stored(StoredMessage),
    /// The `n`th new message of its room in this batch.
    New(usize),
    /// A repeat of the `n`th new message of its room in this batch.
    Repeat(usize),
}

#[tracing::instrument(skip_all, fields(batch = batch.len()))]
pub(super) async fn append(pool: &Pool, batch: Vec<NewMessage>) -> Result<Vec<Appended>, LogError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    // Ascending room id: the one lock order every append follows.
    let mut rooms: BTreeMap<RoomId, Vec<(usize, &NewMessage)>> = BTreeMap::new();
    for (index, message) in batch.iter().enumerate() {
        rooms
            .entry(message.room)
            .or_default()
            .push((index, message));
    }
    let mut client = pool.get().await.log_context("taking a pooled connection")?;
    let tx = client
        .transaction()
        .await
        .log_context("starting an append transaction")?;
    let mut results = Vec::with_capacity(batch.len());
    for (room, items) in rooms {
        results.extend(append_to_room(&tx, room, items).await?);
    }
    // Dropping `tx` on an early return above rolls the whole batch back.
    tx.commit()
        .await
        .log_context("committing appended messages")?;
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, appended)| appended).collect())
}

/// Appends one room's share of a batch; returns `(batch index, result)`.
async fn append_to_room(
    tx: &Transaction<'_>,
    room: RoomId,
    items: Vec<(usize, &NewMessage)>,
) -> Result<Vec<(usize, Appended)>, LogError> {
    let statement = tx
        .prepare_cached(LOCK_ROOM)
        .await
        .log_context("locking a room")?;
    let last = tx
        .query_opt(&statement, &[&room.0])
        .await
        .log_context("locking a room")?
        .ok_or(LogError::RoomNotFound)?;
    let last: i64 = sql::get(&last, "last_seq").log_context("locking a room")?;

    let stored = existing(tx, room, &items).await?;
    let mut fresh: Vec<StoredMessage> = Vec::new();
    let mut fresh_keys: HashMap<Key, usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(items.len());
    for (index, message) in items {
        let key = (message.author, message.client_id.as_str().to_owned());
        let outcome = if let Some(original) = stored.get(&key) {
            Outcome::Stored(original.clone())
        } else if let Some(&n) = fresh_keys.get(&key) {
            Outcome::Repeat(n)
        } else {
            let n = fresh.len();
            fresh_keys.insert(key, n);
            fresh.push(StoredMessage {
                room,
                seq: Seq(last + 1 + n as i64),
                id: MessageId::new(),
                author: message.author,
                body: message.body.as_str().to_owned(),
                // Replaced by the database's clock in `insert`.
                ts: chrono::DateTime::UNIX_EPOCH,
                client_id: message.client_id.as_str().to_owned(),
            });
            Outcome::New(n)
        };
        outcomes.push((index, outcome));
    }
    if !fresh.is_empty() {
        insert(tx, room, last, &mut fresh).await?;
    }
    Ok(outcomes
        .into_iter()
        .map(|(index, outcome)| {
            let appended = match outcome {
                Outcome::Stored(message) => Appended::Duplicate(message),
                Outcome::New(n) => Appended::New(fresh[n].clone()),
                Outcome::Repeat(n) => Appended::Duplicate(fresh[n].clone()),
            };
            (index, appended)
        })
        .collect())
}

/// The messages already stored under any of the batch's keys.
async fn existing(
    tx: &Transaction<'_>,
    room: RoomId,
    items: &[(usize, &NewMessage)],
) -> Result<HashMap<Key, StoredMessage>, LogError> {
    let authors: Vec<uuid::Uuid> = items.iter().map(|(_, m)| m.author.0).collect();
    let client_ids: Vec<&str> = items.iter().map(|(_, m)| m.client_id.as_str()).collect();
    let statement = tx
        .prepare_cached(EXISTING)
        .await
        .log_context("looking up repeated publishes")?;
    let rows = tx
        .query(&statement, &[&room.0, &authors, &client_ids])
        .await
        .log_context("looking up repeated publishes")?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let message = message_from_row(room, row).log_context("reading a stored message")?;
        found.insert((message.author, message.client_id.clone()), message);
    }
    Ok(found)
}

/// Writes the new messages, advances `last_seq` and stamps each message
/// with the time the database gave it.
async fn insert(
    tx: &Transaction<'_>,
    room: RoomId,
    last: i64,
    fresh: &mut [StoredMessage],
) -> Result<(), LogError> {
    let seqs: Vec<i64> = fresh.iter().map(|m| m.seq.0).collect();
    let ids: Vec<uuid::Uuid> = fresh.iter().map(|m| m.id.0).collect();
    let authors: Vec<uuid::Uuid> = fresh.iter().map(|m| m.author.0).collect();
    let bodies: Vec<&str> = fresh.iter().map(|m| m.body.as_str()).collect();
    let client_ids: Vec<&str> = fresh.iter().map(|m| m.client_id.as_str()).collect();
    let new_last = last + fresh.len() as i64;
    let statement = tx
        .prepare_cached(INSERT)
        .await
        .log_context("inserting messages")?;
    let params: sql::Params = &[
        &room.0,
        &seqs,
        &ids,
        &authors,
        &bodies,
        &client_ids,
        &new_last,
    ];
    let rows = tx
        .query(&statement, params)
        .await
        .log_context("inserting messages")?;
    for row in &rows {
        let seq: i64 = sql::get(row, "seq").log_context("reading an inserted message")?;
        let ts = sql::get(row, "created_at").log_context("reading an inserted message")?;
        let slot = usize::try_from(seq - last - 1)
            .ok()
            .and_then(|n| fresh.get_mut(n));
        match slot {
            Some(message) => message.ts = ts,
            None => {
                return Err(LogError::Unavailable(format!(
                    "inserting messages: the database returned seq {seq}, not one of ours"
                )));
            }
        }
    }
    if rows.len() != fresh.len() {
        return Err(LogError::Unavailable(format!(
            "inserting messages: {} of {} rows written",
            rows.len(),
            fresh.len()
        )));
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(%room, %after, limit))]
pub(super) async fn range(
    pool: &Pool,
    room: RoomId,
    after: Seq,
    before: Option<Seq>,
    limit: u32,
) -> Result<Vec<StoredMessage>, LogError> {
    let before = before.map_or(i64::MAX, |seq| seq.0);
    let params: sql::Params = &[&room.0, &after.0, &before, &i64::from(limit)];
    let rows = sql::query(pool, RANGE, params)
        .await
        .log_context("reading room history")?;
    messages_from_rows(room, &rows)
}

#[tracing::instrument(skip_all, fields(%room, limit))]
pub(super) async fn tail(
    pool: &Pool,
    room: RoomId,
    before: Option<Seq>,
    limit: u32,
) -> Result<Vec<StoredMessage>, LogError> {
    let before = before.map_or(i64::MAX, |seq| seq.0);
    let rows = sql::query(pool, TAIL, &[&room.0, &before, &i64::from(limit)])
        .await
        .log_context("reading recent room history")?;
    messages_from_rows(room, &rows)
}

#[tracing::instrument(skip_all, fields(%room))]
pub(super) async fn last_seq(pool: &Pool, room: RoomId) -> Result<Seq, LogError> {
    const LAST_SEQ: &str = "SELECT last_seq FROM rooms WHERE id = $1";
    let row = sql::query_opt(pool, LAST_SEQ, &[&room.0])
        .await
        .log_context("reading a room's last seq")?
        .ok_or(LogError::RoomNotFound)?;
    let last: i64 = sql::get(&row, "last_seq").log_context("reading a room's last seq")?;
    Ok(Seq(last))
}

fn messages_from_rows(room: RoomId, rows: &[Row]) -> Result<Vec<StoredMessage>, LogError> {
    rows.iter()
        .map(|row| message_from_row(room, row))
        .collect::<anyhow::Result<_>>()
        .log_context("reading room history")
}

fn message_from_row(room: RoomId, row: &Row) -> anyhow::Result<StoredMessage> {
    Ok(StoredMessage {
        room,
        seq: Seq(sql::get(row, "seq")?),
        id: MessageId(sql::get(row, "id")?),
        author: UserId(sql::get(row, "author")?),
        body: sql::get(row, "body")?,
        ts: sql::get(row, "created_at")?,
        client_id: sql::get(row, "client_id")?,
    })
}
