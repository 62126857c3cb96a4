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

use super::pipelined::PipelinedTx;
use super::sql::{self, LogContext};
use crate::domain::webhook::{EventTypes, OutboxEvent};
use crate::domain::{MessageId, RoomId, Seq, UserId};
use chrono::{DateTime, Utc};
use deadpool_postgres::{ClientWrapper, Pool};
use parley_actors::model::{
    Action, Appended, EventData, NewEvent, Refusal, StoredEvent, TargetState,
};
use parley_actors::ports::{LogError, ReplayPage};
use std::collections::{BTreeMap, HashMap, HashSet};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

/// Columns read by [`event_from_row`] (the room is known to the caller).
macro_rules! event_columns {
    () => {
        "seq, id, author, body, client_id, created_at, kind, target, reply_to, emoji, reaction_on, \
         reaction_count"
    };
}

/// Locks every room of a batch in one statement. `ORDER BY` sits below the
/// row locking, so rows are locked in ascending id order.
const LOCK_ROOMS: &str = "SELECT id, last_seq FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// The batch's timestamp, read after the locks are granted (it is sent
/// after [`LOCK_ROOMS`]), so timestamps never run backwards against seqs.
/// One per batch: the events of a batch commit together.
const NOW: &str = "SELECT clock_timestamp() AS now";

/// The batch's keys joined against the unique `(room_id, author, client_id)`
/// index: one probe per key, every room at once.
const EXISTING: &str = concat!(
    "SELECT m.room_id, ",
    event_columns!(),
    " FROM room_messages m \
     JOIN UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS k(room_id, author, client_id) \
     USING (room_id, author, client_id)"
);

/// The messages the batch's edits, deletes, reactions and replies refer to.
/// One below the room's retention horizon is purged (or about to be): it is
/// not found, as it will be once deleted.
const TARGETS: &str = "\
    SELECT m.room_id, m.seq, m.author, m.body, m.edited_at, m.deleted, m.reactions \
    FROM room_messages m JOIN UNNEST($1::uuid[], $2::bigint[]) AS t(room_id, seq) \
    USING (room_id, seq) JOIN rooms r ON r.id = m.room_id \
    WHERE m.kind = 'message' AND m.seq >= r.first_seq";

/// Which of the batch's (message, user, emoji) reactions are already held.
const HELD: &str = "\
    SELECT r.room_id, r.seq, r.user_id, r.emoji FROM message_reactions r \
    JOIN UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[]) AS k(room_id, seq, user_id, emoji) \
    USING (room_id, seq, user_id, emoji)";

/// All new events of every room in one statement, with each room's
/// `last_seq` advanced and each message author's read cursor moved to
/// their message in the same one. New messages carry their folded state
/// (a message edited or deleted in its own batch).
const INSERT: &str = "\
    WITH inserted AS ( \
        INSERT INTO room_messages (room_id, seq, id, author, body, client_id, created_at, kind, \
                                   target, reply_to, emoji, reaction_on, reaction_count, \
                                   edited_at, deleted, reactions) \
        SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], \
             $6::text[], $7::timestamptz[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], \
             $12::bool[], $13::bigint[], $14::timestamptz[], $15::bool[], $16::jsonb[]) \
        RETURNING 1), \
    advanced AS ( \
        UPDATE rooms r SET last_seq = a.last_seq \
        FROM UNNEST($17::uuid[], $18::bigint[]) AS a(id, last_seq) WHERE r.id = a.id), \
    cursors AS ( \
        INSERT INTO read_cursors (room_id, user_id, seq) \
        SELECT * FROM UNNEST($19::uuid[], $20::uuid[], $21::bigint[]) \
        ON CONFLICT (room_id, user_id) DO UPDATE SET seq = GREATEST(read_cursors.seq, EXCLUDED.seq)) \
    SELECT count(*) AS written FROM inserted";

/// Folds edits, deletes and reactions into messages stored before this
/// batch: their final state, computed under the lock.
const UPDATE_TARGETS: &str = "\
    UPDATE room_messages m SET body = t.body, edited_at = t.edited_at, deleted = t.deleted, \
        reactions = t.reactions \
    FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[], $5::bool[], $6::jsonb[]) \
         AS t(room_id, seq, body, edited_at, deleted, reactions) \
    WHERE m.room_id = t.room_id AND m.seq = t.seq";

/// A delete erases its message's edits and reactions too.
const ERASE: &str = "\
    WITH edits AS ( \
        UPDATE room_messages m SET body = '' \
        FROM UNNEST($1::uuid[], $2::bigint[]) AS d(room_id, seq) \
        WHERE m.kind = 'edit' AND m.room_id = d.room_id AND m.target = d.seq) \
    DELETE FROM message_reactions r USING UNNEST($1::uuid[], $2::bigint[]) AS d(room_id, seq) \
    WHERE r.room_id = d.room_id AND r.seq = d.seq";

const REACT_ON: &str = "\
    INSERT INTO message_reactions (room_id, seq, user_id, emoji) \
    SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[]) ON CONFLICT DO NOTHING";

const REACT_OFF: &str = "\
    DELETE FROM message_reactions r \
    USING UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[]) AS k(room_id, seq, user_id, emoji) \
    WHERE r.room_id = k.room_id AND r.seq = k.seq AND r.user_id = k.user_id AND r.emoji = k.emoji";

const RANGE: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM room_messages WHERE room_id = $1 AND seq > $2 AND seq < $3 \
     AND seq >= (SELECT first_seq FROM rooms WHERE id = $1) ORDER BY seq LIMIT $4"
);

/// [`RANGE`] and the room's horizon in one statement, hence one snapshot:
/// it sees the old horizon with its rows or the new one (a purge commits
/// the horizon before it deletes), never rows missing below an old one.
/// No event row (an empty page) still yields the horizon, with null columns.
const REPLAY_PAGE: &str = concat!(
    "SELECT r.first_seq, m.* FROM rooms r LEFT JOIN LATERAL (SELECT ",
    event_columns!(),
    " FROM room_messages WHERE room_id = r.id AND seq > GREATEST($2, r.first_seq - 1) \
     AND seq < $3 ORDER BY seq LIMIT $4) AS m ON true WHERE r.id = $1 ORDER BY m.seq"
);

/// The newest page, read backwards off the primary key, then put in order.
const TAIL: &str = concat!(
    "SELECT * FROM (SELECT ",
    event_columns!(),
    " FROM room_messages WHERE room_id = $1 AND seq < $2 \
     AND seq >= (SELECT first_seq FROM rooms WHERE id = $1) ORDER BY seq DESC LIMIT $3) AS page \
     ORDER BY seq"
);

/// An event's idempotency key: (room, author, client_id).
type Key = (RoomId, UserId, String);
/// A message of a room, by seq.
type MessageKey = (RoomId, Seq);
/// One user's emoji on one message.
type ReactionKey = (RoomId, Seq, UserId, String);

/// A message an event of the batch refers to, as the batch leaves it.
#[derive(Clone)]
struct Target {
    author: UserId,
    body: String,
    edited_at: Option<DateTime<Utc>>,
    deleted: bool,
    /// Emoji → how many hold it (none at zero).
    reactions: BTreeMap<String, i64>,
    /// Stored before this batch (else: new in it, written by the insert).
    stored: bool,
    /// Changed by this batch.
    changed: bool,
}

impl Target {
    fn state(&self) -> TargetState {
        TargetState {
            author: self.author,
            deleted: self.deleted,
        }
    }
}

/// What a batch reads before deciding: the rooms' last seqs, events stored
/// under its keys, the messages it refers to, the reactions it toggles.
struct Before {
    last: BTreeMap<RoomId, i64>,
    now: DateTime<Utc>,
    stored: HashMap<Key, StoredEvent>,
    targets: HashMap<MessageKey, Target>,
    held: HashSet<ReactionKey>,
}

/// What one item of a batch turned out to be, before its row is written.
enum Outcome {
    /// Already in the log before this batch.
    Stored(StoredEvent),
    /// The `n`th new event of this batch.
    New(usize),
    /// A repeat of the `n`th new event of this batch.
    Repeat(usize),
    Refused(Refusal),
}

/// The batch, decided: new events and what they change.
#[derive(Default)]
struct Plan {
    fresh: Vec<StoredEvent>,
    outcomes: Vec<Outcome>,
    /// Final reaction state of every (message, user, emoji) the batch touched.
    reactions: HashMap<ReactionKey, bool>,
}

/// Appends a batch in one transaction and two round trips however many
/// rooms and kinds it spans, commit included: `BEGIN` and the reads under
/// the lock go out pipelined, then the writes and `COMMIT` (see
/// [`PipelinedTx`]). Group commit only pays off if a batch's cost does not
/// grow per room, and every round trip is time each publisher waits for
/// its ack.
#[tracing::instrument(skip_all, fields(batch = batch.len()))]
pub(super) async fn append(
    pool: &Pool,
    batch: &[NewEvent],
    webhooks: EventTypes,
) -> Result<Vec<Result<Appended, Refusal>>, LogError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let tx = PipelinedTx::take(pool)
        .await
        .log_context("taking a pooled connection")?;
    let reads = ReadStatements::prepare(&tx, batch).await?;
    let writes = WriteStatements::prepare(&tx).await?;
    let mut before = match read_before(&tx, &reads, batch).await {
        Ok(before) => before,
        Err(error) => {
            tx.rollback().await;
            return Err(error);
        }
    };
    let plan = decide(batch, &mut before);
    write_and_commit(&tx, &writes, &plan, &before, webhooks).await?;
    let Plan {
        fresh, outcomes, ..
    } = plan;
    Ok(outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Stored(event) => Ok(Appended::Duplicate(event)),
            Outcome::New(n) => Ok(Appended::New(fresh[n].clone())),
            Outcome::Repeat(n) => Ok(Appended::Duplicate(fresh[n].clone())),
            Outcome::Refused(refusal) => Err(refusal),
        })
        .collect())
}

/// The reads of an append, prepared before anything is sent (cached per
/// connection, so only a connection's first append pays for preparing).
struct ReadStatements {
    lock: Statement,
    now: Statement,
    look_up: Statement,
    /// Only for batches with edits, deletes, reactions or replies.
    targets: Option<Statement>,
    held: Option<Statement>,
}

impl ReadStatements {
    async fn prepare(conn: &ClientWrapper, batch: &[NewEvent]) -> Result<Self, LogError> {
        let targeted = batch.iter().any(|e| e.action.target().is_some());
        let (lock, now, look_up) = futures_util::try_join!(
            conn.prepare_cached(LOCK_ROOMS),
            conn.prepare_cached(NOW),
            conn.prepare_cached(EXISTING),
        )
        .log_context("preparing an append's reads")?;
        let (targets, held) = if targeted {
            let (targets, held) =
                futures_util::try_join!(conn.prepare_cached(TARGETS), conn.prepare_cached(HELD))
                    .log_context("preparing an append's reads")?;
            (Some(targets), Some(held))
        } else {
            (None, None)
        };
        Ok(Self {
            lock,
            now,
            look_up,
            targets,
            held,
        })
    }
}

/// The writes of an append, prepared before the pipeline that ends in
/// `COMMIT` is sent.
struct WriteStatements {
    insert: Statement,
    update_targets: Statement,
    erase: Statement,
    react_on: Statement,
    react_off: Statement,
    enqueue: Statement,
}

impl WriteStatements {
    async fn prepare(conn: &ClientWrapper) -> Result<Self, LogError> {
        let (insert, update_targets, erase, react_on, react_off, enqueue) =
            futures_util::try_join!(
                conn.prepare_cached(INSERT),
                conn.prepare_cached(UPDATE_TARGETS),
                conn.prepare_cached(ERASE),
                conn.prepare_cached(REACT_ON),
                conn.prepare_cached(REACT_OFF),
                conn.prepare_cached(super::webhooks::ENQUEUE),
            )
            .log_context("preparing an append's writes")?;
        Ok(Self {
            insert,
            update_targets,
            erase,
            react_on,
            react_off,
            enqueue,
        })
    }
}

/// `BEGIN`, then the room locks and what the batch depends on, pipelined:
/// every statement goes out before the first answer comes back. `join!`
/// polls in order, so `BEGIN` is sent first and the lock second; the
/// server runs them in order, and under READ COMMITTED each later
/// statement's snapshot is taken after the lock is granted, so it sees
/// everything committed by whoever held the lock before us. (Were it not
/// so, the unique index would still refuse a second copy: the batch would
/// fail, not duplicate.)
async fn read_before(
    tx: &PipelinedTx,
    statements: &ReadStatements,
    batch: &[NewEvent],
) -> Result<Before, LogError> {
    let (begun, last, now, stored, targets, held) = futures_util::join!(
        tx.begin(),
        lock_rooms(tx, &statements.lock, batch),
        read_now(tx, &statements.now),
        existing(tx, &statements.look_up, batch),
        read_targets(tx, statements.targets.as_ref(), batch),
        read_held(tx, statements.held.as_ref(), batch),
    );
    begun.log_context("starting an append transaction")?;
    Ok(Before {
        last: last?,
        now: now?,
        stored: stored?,
        targets: targets?,
        held: held?,
    })
}

/// Walks the batch in order: repeats answered with their originals, each
/// new event checked against its target as the batch has left it so far
/// (an edit may follow its message in the same batch), numbered, and its
/// effect on the target folded in.
fn decide(batch: &[NewEvent], before: &mut Before) -> Plan {
    let mut plan = Plan::default();
    let mut fresh_keys: HashMap<Key, usize> = HashMap::new();
    for event in batch {
        let key = (
            event.room,
            event.author,
            event.client_id.as_str().to_owned(),
        );
        let outcome = if let Some(original) = before.stored.get(&key) {
            Outcome::Stored(original.clone())
        } else if let Some(&n) = fresh_keys.get(&key) {
            Outcome::Repeat(n)
        } else {
            let target = event
                .action
                .target()
                .and_then(|seq| before.targets.get(&(event.room, seq)))
                .map(Target::state);
            match parley_actors::model::check(event, target) {
                Err(refusal) => Outcome::Refused(refusal),
                Ok(()) => {
                    let seq = before.last.entry(event.room).or_default();
                    *seq += 1;
                    let mut stored = StoredEvent {
                        room: event.room,
                        seq: Seq(*seq),
                        id: MessageId::new(),
                        author: event.author,
                        ts: before.now,
                        client_id: key.2.clone(),
                        data: EventData::from_action(&event.action),
                    };
                    fold(&mut stored, before, &mut plan.reactions);
                    fresh_keys.insert(key, plan.fresh.len());
                    plan.fresh.push(stored);
                    Outcome::New(plan.fresh.len() - 1)
                }
            }
        };
        plan.outcomes.push(outcome);
    }
    plan
}

/// Applies one new event to the state of the message it concerns (a
/// reaction learns its count here).
fn fold(event: &mut StoredEvent, before: &mut Before, reactions: &mut HashMap<ReactionKey, bool>) {
    let room = event.room;
    let target = match &event.data {
        EventData::Message { body, .. } => {
            before.targets.insert(
                (room, event.seq),
                Target {
                    author: event.author,
                    body: body.clone(),
                    edited_at: None,
                    deleted: false,
                    reactions: BTreeMap::new(),
                    stored: false,
                    changed: false,
                },
            );
            return;
        }
        EventData::Edit { target, .. }
        | EventData::Delete { target }
        | EventData::Reaction { target, .. } => *target,
    };
    let Some(message) = before.targets.get_mut(&(room, target)) else {
        return; // checked before: cannot happen
    };
    message.changed = true;
    match &mut event.data {
        EventData::Edit { body, .. } => {
            message.body.clone_from(body);
            message.edited_at = Some(event.ts);
        }
        EventData::Delete { .. } => {
            message.body.clear();
            message.deleted = true;
            message.reactions.clear();
            reactions.retain(|(r, s, _, _), _| (*r, *s) != (room, target));
        }
        EventData::Reaction {
            emoji, on, count, ..
        } => {
            let key = (room, target, event.author, emoji.clone());
            let holds = reactions
                .get(&key)
                .copied()
                .unwrap_or_else(|| before.held.contains(&key));
            if holds != *on {
                let count = message.reactions.entry(emoji.clone()).or_default();
                *count += if *on { 1 } else { -1 };
                if *count <= 0 {
                    message.reactions.remove(emoji);
                }
            }
            reactions.insert(key, *on);
            *count = message.reactions.get(emoji.as_str()).copied().unwrap_or(0);
        }
        EventData::Message { .. } => {}
    }
}

/// Writes a decided batch and commits it, pipelined: the new events (with
/// the rooms' seqs and the authors' cursors), then what they change in
/// messages stored before, the webhook outbox rows of the event types
/// `webhooks` holds (in this transaction: an event is in the outbox if and
/// only if it committed), then `COMMIT`. Statements that have nothing to
/// do are not sent. If any statement fails, the `COMMIT` behind it rolls
/// the transaction back and the first failure is returned.
async fn write_and_commit(
    tx: &PipelinedTx,
    statements: &WriteStatements,
    plan: &Plan,
    before: &Before,
    webhooks: EventTypes,
) -> Result<(), LogError> {
    let deleted: Vec<(uuid::Uuid, i64)> = before
        .targets
        .iter()
        .filter(|(_, t)| t.stored && t.changed && t.deleted)
        .map(|((room, seq), _)| (room.0, seq.0))
        .collect();
    let (on, off): (Vec<_>, Vec<_>) = plan
        .reactions
        .iter()
        .filter(|((room, seq, _, _), _)| {
            before
                .targets
                .get(&(*room, *seq))
                .is_some_and(|t| !t.deleted)
        })
        .partition(|(_, on)| **on);
    let on: Vec<&ReactionKey> = on.into_iter().map(|(k, _)| k).collect();
    let off: Vec<&ReactionKey> = off
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| before.held.contains(*k))
        .collect();
    let (inserted, updated, erased, reacted, unreacted, enqueued, committed) = futures_util::join!(
        insert(tx, &statements.insert, &plan.fresh, before),
        update_targets(tx, &statements.update_targets, before),
        erase(tx, &statements.erase, &deleted),
        react(tx, &statements.react_on, &on),
        react(tx, &statements.react_off, &off),
        outbox(tx, &statements.enqueue, &plan.fresh, webhooks),
        tx.commit(),
    );
    inserted?;
    updated?;
    erased?;
    reacted?;
    unreacted?;
    enqueued?;
    committed.log_context("committing appended messages")
}

/// The batch's webhook events, if any endpoint wants their types: with no
/// endpoint (`webhooks` empty) nothing is built and nothing is sent.
async fn outbox(
    tx: &ClientWrapper,
    statement: &Statement,
    fresh: &[StoredEvent],
    webhooks: EventTypes,
) -> Result<(), LogError> {
    if webhooks == EventTypes::default() {
        return Ok(());
    }
    let events: Vec<OutboxEvent> = fresh
        .iter()
        .filter_map(|event| OutboxEvent::of_room_event(event, webhooks))
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let rows = super::webhooks::OutboxRows::of(&events);
    tx.execute(statement, &rows.params())
        .await
        .log_context("writing webhook outbox rows")?;
    Ok(())
}

/// Locks the batch's rooms; returns each one's `last_seq`.
async fn lock_rooms(
    tx: &ClientWrapper,
    statement: &Statement,
    batch: &[NewEvent],
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

async fn read_now(tx: &ClientWrapper, statement: &Statement) -> Result<DateTime<Utc>, LogError> {
    let row = tx
        .query_one(statement, &[])
        .await
        .log_context("reading the clock")?;
    sql::get(&row, "now").log_context("reading the clock")
}

/// The events already stored under any of the batch's keys.
async fn existing(
    tx: &ClientWrapper,
    statement: &Statement,
    batch: &[NewEvent],
) -> Result<HashMap<Key, StoredEvent>, LogError> {
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
        let event = event_from_row(room, row).log_context("reading a stored message")?;
        found.insert((room, event.author, event.client_id.clone()), event);
    }
    Ok(found)
}

/// The messages the batch refers to, as stored before it.
async fn read_targets(
    tx: &ClientWrapper,
    statement: Option<&Statement>,
    batch: &[NewEvent],
) -> Result<HashMap<MessageKey, Target>, LogError> {
    let Some(statement) = statement else {
        return Ok(HashMap::new());
    };
    let (rooms, seqs): (Vec<uuid::Uuid>, Vec<i64>) = batch
        .iter()
        .filter_map(|e| Some((e.room.0, e.action.target()?.0)))
        .unzip();
    let rows = tx
        .query(statement, &[&rooms, &seqs])
        .await
        .log_context("reading targeted messages")?;
    let read = |row: &Row| -> anyhow::Result<(MessageKey, Target)> {
        let reactions: serde_json::Value = sql::get(row, "reactions")?;
        let target = Target {
            author: UserId(sql::get(row, "author")?),
            body: sql::get(row, "body")?,
            edited_at: sql::get(row, "edited_at")?,
            deleted: sql::get(row, "deleted")?,
            reactions: serde_json::from_value(reactions)?,
            stored: true,
            changed: false,
        };
        Ok((
            (
                RoomId(sql::get(row, "room_id")?),
                Seq(sql::get(row, "seq")?),
            ),
            target,
        ))
    };
    rows.iter()
        .map(read)
        .collect::<anyhow::Result<_>>()
        .log_context("reading targeted messages")
}

/// Which of the batch's reactions are already held.
async fn read_held(
    tx: &ClientWrapper,
    statement: Option<&Statement>,
    batch: &[NewEvent],
) -> Result<HashSet<ReactionKey>, LogError> {
    let Some(statement) = statement else {
        return Ok(HashSet::new());
    };
    let keys: Vec<ReactionKey> = batch
        .iter()
        .filter_map(|e| match &e.action {
            Action::React { target, emoji, .. } => {
                Some((e.room, *target, e.author, emoji.as_str().to_owned()))
            }
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = tx
        .query(
            statement,
            &reaction_params(&keys.iter().collect::<Vec<_>>()).refs(),
        )
        .await
        .log_context("reading reactions")?;
    let read = |row: &Row| -> anyhow::Result<ReactionKey> {
        Ok((
            RoomId(sql::get(row, "room_id")?),
            Seq(sql::get(row, "seq")?),
            UserId(sql::get(row, "user_id")?),
            sql::get(row, "emoji")?,
        ))
    };
    rows.iter()
        .map(read)
        .collect::<anyhow::Result<_>>()
        .log_context("reading reactions")
}

/// Reaction keys as four parallel arrays, the shape `UNNEST` takes.
struct ReactionParams {
    rooms: Vec<uuid::Uuid>,
    seqs: Vec<i64>,
    users: Vec<uuid::Uuid>,
    emoji: Vec<String>,
}

impl ReactionParams {
    fn refs(&self) -> [&(dyn ToSql + Sync); 4] {
        [&self.rooms, &self.seqs, &self.users, &self.emoji]
    }
}

fn reaction_params(keys: &[&ReactionKey]) -> ReactionParams {
    ReactionParams {
        rooms: keys.iter().map(|k| k.0.0).collect(),
        seqs: keys.iter().map(|k| k.1.0).collect(),
        users: keys.iter().map(|k| k.2.0).collect(),
        emoji: keys.iter().map(|k| k.3.clone()).collect(),
    }
}

/// Writes the new events, advances each room's `last_seq` and moves each
/// message author's read cursor. A new message goes in as the batch left
/// it; an edit of a message deleted in the same batch is stored erased.
async fn insert(
    tx: &ClientWrapper,
    statement: &Statement,
    fresh: &[StoredEvent],
    before: &Before,
) -> Result<(), LogError> {
    if fresh.is_empty() {
        return Ok(());
    }
    let target = |room: RoomId, seq: Seq| before.targets.get(&(room, seq));
    let mut rows = InsertColumns::default();
    for event in fresh {
        rows.push(event, target);
    }
    let (advanced_rooms, advanced_to): (Vec<uuid::Uuid>, Vec<i64>) =
        before.last.iter().map(|(r, s)| (r.0, *s)).unzip();
    let (cursor_rooms, cursor_users, cursor_seqs) = own_cursors(fresh);
    let params: sql::Params = &[
        &rows.rooms,
        &rows.seqs,
        &rows.ids,
        &rows.authors,
        &rows.bodies,
        &rows.client_ids,
        &rows.created_at,
        &rows.kinds,
        &rows.targets,
        &rows.reply_to,
        &rows.emoji,
        &rows.reaction_on,
        &rows.reaction_count,
        &rows.edited_at,
        &rows.deleted,
        &rows.reactions,
        &advanced_rooms,
        &advanced_to,
        &cursor_rooms,
        &cursor_users,
        &cursor_seqs,
    ];
    let row = tx
        .query_one(statement, params)
        .await
        .log_context("inserting messages")?;
    let written: i64 = sql::get(&row, "written").log_context("inserting messages")?;
    if written != fresh.len() as i64 {
        return Err(LogError::Unavailable(format!(
            "inserting messages: {written} of {} rows written",
            fresh.len()
        )));
    }
    Ok(())
}

/// Each author's newest new message per room: their cursor moves there.
fn own_cursors(fresh: &[StoredEvent]) -> (Vec<uuid::Uuid>, Vec<uuid::Uuid>, Vec<i64>) {
    let mut newest: BTreeMap<(RoomId, UserId), Seq> = BTreeMap::new();
    for event in fresh {
        if let EventData::Message { .. } = event.data {
            let seq = newest.entry((event.room, event.author)).or_default();
            *seq = (*seq).max(event.seq);
        }
    }
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for ((room, user), seq) in newest {
        columns.0.push(room.0);
        columns.1.push(user.0);
        columns.2.push(seq.0);
    }
    columns
}

/// The columns of [`INSERT`], one entry per new event.
#[derive(Default)]
struct InsertColumns {
    rooms: Vec<uuid::Uuid>,
    seqs: Vec<i64>,
    ids: Vec<uuid::Uuid>,
    authors: Vec<uuid::Uuid>,
    bodies: Vec<String>,
    client_ids: Vec<String>,
    created_at: Vec<DateTime<Utc>>,
    kinds: Vec<&'static str>,
    targets: Vec<Option<i64>>,
    reply_to: Vec<Option<i64>>,
    emoji: Vec<Option<String>>,
    reaction_on: Vec<Option<bool>>,
    reaction_count: Vec<Option<i64>>,
    edited_at: Vec<Option<DateTime<Utc>>>,
    deleted: Vec<bool>,
    reactions: Vec<serde_json::Value>,
}

impl InsertColumns {
    fn push<'a>(
        &mut self,
        event: &StoredEvent,
        target: impl Fn(RoomId, Seq) -> Option<&'a Target>,
    ) {
        let (mut body, mut edited_at, mut deleted, mut reactions) =
            (event.body().to_owned(), None, false, BTreeMap::new());
        let (mut target_seq, mut reply_to, mut emoji, mut reaction_on) = (None, None, None, None);
        let mut reaction_count = None;
        match &event.data {
            EventData::Message { reply_to: to, .. } => {
                reply_to = to.map(|s| s.0);
                // New in this batch: it goes in as the batch left it.
                if let Some(state) = target(event.room, event.seq) {
                    body.clone_from(&state.body);
                    edited_at = state.edited_at;
                    deleted = state.deleted;
                    reactions.clone_from(&state.reactions);
                }
            }
            EventData::Edit { target: t, .. } => {
                target_seq = Some(t.0);
                if target(event.room, *t).is_some_and(|m| m.deleted) {
                    body.clear();
                }
            }
            EventData::Delete { target: t } => target_seq = Some(t.0),
            EventData::Reaction {
                target: t,
                emoji: e,
                on,
                count,
            } => {
                target_seq = Some(t.0);
                emoji = Some(e.clone());
                reaction_on = Some(*on);
                reaction_count = Some(*count);
            }
        }
        self.rooms.push(event.room.0);
        self.seqs.push(event.seq.0);
        self.ids.push(event.id.0);
        self.authors.push(event.author.0);
        self.bodies.push(body);
        self.client_ids.push(event.client_id.clone());
        self.created_at.push(event.ts);
        self.kinds.push(event.data.kind());
        self.targets.push(target_seq);
        self.reply_to.push(reply_to);
        self.emoji.push(emoji);
        self.reaction_on.push(reaction_on);
        self.reaction_count.push(reaction_count);
        self.edited_at.push(edited_at);
        self.deleted.push(deleted);
        self.reactions.push(serde_json::json!(reactions));
    }
}

/// Stores the final state of every message stored before this batch that
/// the batch changed.
async fn update_targets(
    tx: &ClientWrapper,
    statement: &Statement,
    before: &Before,
) -> Result<(), LogError> {
    let changed: Vec<(&MessageKey, &Target)> = before
        .targets
        .iter()
        .filter(|(_, t)| t.stored && t.changed)
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let rooms: Vec<uuid::Uuid> = changed.iter().map(|((r, _), _)| r.0).collect();
    let seqs: Vec<i64> = changed.iter().map(|((_, s), _)| s.0).collect();
    let bodies: Vec<&str> = changed.iter().map(|(_, t)| t.body.as_str()).collect();
    let edited: Vec<Option<DateTime<Utc>>> = changed.iter().map(|(_, t)| t.edited_at).collect();
    let deleted: Vec<bool> = changed.iter().map(|(_, t)| t.deleted).collect();
    let reactions: Vec<serde_json::Value> = changed
        .iter()
        .map(|(_, t)| serde_json::json!(t.reactions))
        .collect();
    tx.execute(
        statement,
        &[&rooms, &seqs, &bodies, &edited, &deleted, &reactions],
    )
    .await
    .log_context("folding events into messages")?;
    Ok(())
}

/// Erases the edits and reactions of messages deleted by this batch.
async fn erase(
    tx: &ClientWrapper,
    statement: &Statement,
    deleted: &[(uuid::Uuid, i64)],
) -> Result<(), LogError> {
    if deleted.is_empty() {
        return Ok(());
    }
    let (rooms, seqs): (Vec<uuid::Uuid>, Vec<i64>) = deleted.iter().copied().unzip();
    tx.execute(statement, &[&rooms, &seqs])
        .await
        .log_context("erasing a deleted message")?;
    Ok(())
}

/// Sets or clears reactions (`statement` is [`REACT_ON`] or [`REACT_OFF`]).
async fn react(
    tx: &ClientWrapper,
    statement: &Statement,
    keys: &[&ReactionKey],
) -> Result<(), LogError> {
    if keys.is_empty() {
        return Ok(());
    }
    tx.execute(statement, &reaction_params(keys).refs())
        .await
        .log_context("storing reactions")?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(%room, %after, limit))]
pub(super) async fn range(
    pool: &Pool,
    room: RoomId,
    after: Seq,
    before: Option<Seq>,
    limit: u32,
) -> Result<Vec<StoredEvent>, LogError> {
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
) -> Result<Vec<StoredEvent>, LogError> {
    let before = before.map_or(i64::MAX, |seq| seq.0);
    let rows = sql::query(pool, TAIL, &[&room.0, &before, &i64::from(limit)])
        .await
        .log_context("reading recent room history")?;
    messages_from_rows(room, &rows)
}

#[tracing::instrument(skip_all, fields(%room, %after, limit))]
pub(super) async fn replay_page(
    pool: &Pool,
    room: RoomId,
    after: Seq,
    before: Option<Seq>,
    limit: u32,
) -> Result<ReplayPage, LogError> {
    let before = before.map_or(i64::MAX, |seq| seq.0);
    let params: sql::Params = &[&room.0, &after.0, &before, &i64::from(limit)];
    let rows = sql::query(pool, REPLAY_PAGE, params)
        .await
        .log_context("reading a replay page")?;
    let first = rows.first().ok_or(LogError::RoomNotFound)?;
    let first_seq = Seq(sql::get(first, "first_seq").log_context("reading a replay page")?);
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: Option<i64> = sql::get(row, "seq").log_context("reading a replay page")?;
        if seq.is_some() {
            events.push(event_from_row(room, row).log_context("reading a replay page")?);
        }
    }
    Ok(ReplayPage { first_seq, events })
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

fn messages_from_rows(room: RoomId, rows: &[Row]) -> Result<Vec<StoredEvent>, LogError> {
    rows.iter()
        .map(|row| event_from_row(room, row))
        .collect::<anyhow::Result<_>>()
        .log_context("reading room history")
}

fn event_from_row(room: RoomId, row: &Row) -> anyhow::Result<StoredEvent> {
    let kind: String = sql::get(row, "kind")?;
    let target = || -> anyhow::Result<Seq> {
        let seq: Option<i64> = sql::get(row, "target")?;
        Ok(Seq(seq.ok_or_else(|| {
            anyhow::anyhow!("a {kind} without a target")
        })?))
    };
    let data = match kind.as_str() {
        "message" => EventData::Message {
            body: sql::get(row, "body")?,
            reply_to: sql::get::<Option<i64>>(row, "reply_to")?.map(Seq),
        },
        "edit" => EventData::Edit {
            target: target()?,
            body: sql::get(row, "body")?,
        },
        "delete" => EventData::Delete { target: target()? },
        "reaction" => EventData::Reaction {
            target: target()?,
            emoji: sql::get::<Option<String>>(row, "emoji")?.unwrap_or_default(),
            on: sql::get::<Option<bool>>(row, "reaction_on")?.unwrap_or_default(),
            count: sql::get::<Option<i64>>(row, "reaction_count")?.unwrap_or_default(),
        },
        other => anyhow::bail!("unknown event kind {other:?}"),
    };
    Ok(StoredEvent {
        room,
        seq: Seq(sql::get(row, "seq")?),
        id: MessageId(sql::get(row, "id")?),
        author: UserId(sql::get(row, "author")?),
        ts: sql::get(row, "created_at")?,
        client_id: sql::get(row, "client_id")?,
        data,
    })
}
