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
use tokio_postgres::{Row, Statement};

/// Columns read by [`message_from_row`] (the room is known to the caller).
macro_rules! message_columns {
    () => {
        "seq, id, author, body, client_id, created_at"
    };
}

/// Locks every room of a batch in one statement. `ORDER BY` sits below the
/// row locking, so rows are locked in ascending id order.
const LOCK_ROOMS: &str = "SELECT id, last_seq FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// The batch's keys joined against the unique `(room_id, author, client_id)`
/// index: one probe per key, every room at once.
const EXISTING: &str = concat!(
    "SELECT m.room_id, ",
    message_columns!(),
    " FROM room_messages m \
     JOIN UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS k(room_id, author, client_id) \
     USING (room_id, author, client_id)"
);

/// All new rows of every room in one statement, and each room's `last_seq`
/// advanced in the same one. `clock_timestamp()` (not `now()`, the
/// transaction's start) is read while the room locks are held, so
/// timestamps never run backwards against seqs.
const INSERT: &str = "\
    WITH inserted AS ( \
        INSERT INTO room_messages (room_id, seq, id, author, body, client_id, created_at) \
        SELECT m.room_id, m.seq, m.id, m.author, m.body, m.client_id, clock_timestamp() \
        FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], $6::text[]) \
             AS m(room_id, seq, id, author, body, client_id) \
        RETURNING room_id, seq, created_at), \
    advanced AS ( \
        UPDATE rooms r SET last_seq = a.last_seq \
        FROM UNNEST($7::uuid[], $8::bigint[]) AS a(id, last_seq) WHERE r.id = a.id) \
    SELECT room_id, seq, created_at FROM inserted";

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

/// A publish's idempotency key: (room, author, client_id).
type Key = (RoomId, UserId, String);

/// What one item of a batch turned out to be, before its row is written.
enum Outcome {
    /// Already in the log before this batch.
    Stored(StoredMessage),
    /// The `n`th new message of this batch.
    New(usize),
    /// A repeat of the `n`th new message of this batch.
    Repeat(usize),
}

/// Appends a batch in one transaction and a fixed number of round trips
/// (begin, lock and look up repeats, insert, commit) however many rooms it
/// spans: group commit only pays off if a batch's cost does not grow per
/// room, and every round trip is time each publisher waits for its ack.
#[tracing::instrument(skip_all, fields(batch = batch.len()))]
pub(super) async fn append(pool: &Pool, batch: &[NewMessage]) -> Result<Vec<Appended>, LogError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut client = pool.get().await.log_context("taking a pooled connection")?;
    let tx = client
        .transaction()
        .await
        .log_context("starting an append transaction")?;
    // Pipelined: both statements go out before either answer comes back.
    // `try_join!` polls the lock first, so it is sent first; the server runs
    // them in order, and under READ COMMITTED the look-up's snapshot is
    // taken after the lock is granted, so it sees every publish committed
    // by whoever held the lock before us. (Were it not so, the unique index
    // would still refuse a second copy: the batch would fail, not duplicate.)
    let lock = tx
        .prepare_cached(LOCK_ROOMS)
        .await
        .log_context("locking rooms")?;
    let look_up = tx
        .prepare_cached(EXISTING)
        .await
        .log_context("looking up repeated publishes")?;
    let (mut last, stored) = futures_util::try_join!(
        lock_rooms(&tx, &lock, batch),
        existing(&tx, &look_up, batch)
    )?;

    let mut fresh: Vec<StoredMessage> = Vec::new();
    let mut fresh_keys: HashMap<Key, usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(batch.len());
    for message in batch {
        let key = (
            message.room,
            message.author,
            message.client_id.as_str().to_owned(),
        );
        let outcome = if let Some(original) = stored.get(&key) {
            Outcome::Stored(original.clone())
        } else if let Some(&n) = fresh_keys.get(&key) {
            Outcome::Repeat(n)
        } else {
            let seq = last.entry(message.room).or_default();
            *seq += 1;
            fresh_keys.insert(key, fresh.len());
            fresh.push(StoredMessage {
                room: message.room,
                seq: Seq(*seq),
                id: MessageId::new(),
                author: message.author,
                body: message.body.as_str().to_owned(),
                // Replaced by the database's clock in `insert`.
                ts: chrono::DateTime::UNIX_EPOCH,
                client_id: message.client_id.as_str().to_owned(),
            });
            Outcome::New(fresh.len() - 1)
        };
        outcomes.push(outcome);
    }
    if !fresh.is_empty() {
        insert(&tx, &mut fresh, &last).await?;
    }
    // Dropping `tx` on an early return above rolls the whole batch back.
    tx.commit()
        .await
        .log_context("committing appended messages")?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Stored(message) => Appended::Duplicate(message),
            Outcome::New(n) => Appended::New(fresh[n].clone()),
            Outcome::Repeat(n) => Appended::Duplicate(fresh[n].clone()),
        })
        .collect())
}

/// Locks the batch's rooms; returns each one's `last_seq`.
async fn lock_rooms(
    tx: &Transaction<'_>,
    statement: &Statement,
    batch: &[NewMessage],
) -> Result<BTreeMap<RoomId, i64>, LogError> {
    let mut ids: Vec<uuid::Uuid> = batch.iter().map(|m| m.room.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = tx
        .query(statement, &[&ids])
        .await
        .log_context("locking rooms")?;
    if rows.len() != ids.len() {
        return Err(LogError::RoomNotFound);
    }
    rows.iter()
        .map(|row| {
            let id = RoomId(sql::get(row, "id")?);
            let last: i64 = sql::get(row, "last_seq")?;
            Ok((id, last))
        })
        .collect::<anyhow::Result<_>>()
        .log_context("locking rooms")
}

/// The messages already stored under any of the batch's keys.
async fn existing(
    tx: &Transaction<'_>,
    statement: &Statement,
    batch: &[NewMessage],
) -> Result<HashMap<Key, StoredMessage>, LogError> {
    let rooms: Vec<uuid::Uuid> = batch.iter().map(|m| m.room.0).collect();
    let authors: Vec<uuid::Uuid> = batch.iter().map(|m| m.author.0).collect();
    let client_ids: Vec<&str> = batch.iter().map(|m| m.client_id.as_str()).collect();
    let rows = tx
        .query(statement, &[&rooms, &authors, &client_ids])
        .await
        .log_context("looking up repeated publishes")?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let room = RoomId(sql::get(row, "room_id").log_context("reading a stored message")?);
        let message = message_from_row(room, row).log_context("reading a stored message")?;
        found.insert((room, message.author, message.client_id.clone()), message);
    }
    Ok(found)
}

/// Writes the new messages, advances each room's `last_seq` to `last` and
/// stamps each message with the time the database gave it.
async fn insert(
    tx: &Transaction<'_>,
    fresh: &mut [StoredMessage],
    last: &BTreeMap<RoomId, i64>,
) -> Result<(), LogError> {
    let rooms: Vec<uuid::Uuid> = fresh.iter().map(|m| m.room.0).collect();
    let seqs: Vec<i64> = fresh.iter().map(|m| m.seq.0).collect();
    let ids: Vec<uuid::Uuid> = fresh.iter().map(|m| m.id.0).collect();
    let authors: Vec<uuid::Uuid> = fresh.iter().map(|m| m.author.0).collect();
    let bodies: Vec<&str> = fresh.iter().map(|m| m.body.as_str()).collect();
    let client_ids: Vec<&str> = fresh.iter().map(|m| m.client_id.as_str()).collect();
    let (advanced_rooms, advanced_to): (Vec<uuid::Uuid>, Vec<i64>) =
        last.iter().map(|(r, s)| (r.0, *s)).unzip();
    let statement = tx
        .prepare_cached(INSERT)
        .await
        .log_context("inserting messages")?;
    let params: sql::Params = &[
        &rooms,
        &seqs,
        &ids,
        &authors,
        &bodies,
        &client_ids,
        &advanced_rooms,
        &advanced_to,
    ];
    let rows = tx
        .query(&statement, params)
        .await
        .log_context("inserting messages")?;
    if rows.len() != fresh.len() {
        return Err(LogError::Unavailable(format!(
            "inserting messages: {} of {} rows written",
            rows.len(),
            fresh.len()
        )));
    }
    let mut stamps = HashMap::with_capacity(rows.len());
    for row in &rows {
        let room: uuid::Uuid =
            sql::get(row, "room_id").log_context("reading an inserted message")?;
        let seq: i64 = sql::get(row, "seq").log_context("reading an inserted message")?;
        let ts: chrono::DateTime<chrono::Utc> =
            sql::get(row, "created_at").log_context("reading an inserted message")?;
        stamps.insert((room, seq), ts);
    }
    for message in fresh.iter_mut() {
        match stamps.get(&(message.room.0, message.seq.0)) {
            Some(ts) => message.ts = *ts,
            None => {
                return Err(LogError::Unavailable(format!(
                    "inserting messages: seq {} of room {} was not written",
                    message.seq, message.room
                )));
            }
        }
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
