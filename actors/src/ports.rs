//! The ports the actors depend on, implemented by the application:
//! [`MessageLog`] (`src/store`: PostgreSQL or the embedded store),
//! [`FrameEncoder`] (`src/ws/protocol.rs`), [`Bus`] (`src/bus`: Redis
//! pub/sub, or [`LocalBus`] for a single instance) and [`Dependency`] (the
//! services whose connections the [`crate::dependency`] actors look after).

use crate::ids::{RoomId, Seq, UserId};
use crate::model::{Appended, NewEvent, Refusal, StoredEvent};
use async_trait::async_trait;

/// Why the log could not serve a call.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The room does not exist (or was deleted).
    #[error("room not found")]
    RoomNotFound,
    /// The backing store cannot be reached or failed; safe to retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store is up but refused what it was given (a value it cannot
    /// hold, a constraint): sending the same again fails the same way, so
    /// this is never an outage.
    #[error("storage refused the data: {0}")]
    Rejected(String),
}

impl LogError {
    /// Whether the store itself is failing, rather than refusing one call.
    pub fn is_outage(&self) -> bool {
        matches!(self, LogError::Unavailable(_))
    }
}

/// The durable, ordered, per-room message log.
#[async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// Appends a batch in one transaction. Results are in input order. An
    /// event whose (room, author, client_id) already exists, in the store or
    /// earlier in the same batch, is answered with the original event and
    /// takes no `seq`. Each new event is checked against its target's state
    /// at that point of the batch ([`crate::model::check`]): a refused one
    /// takes no `seq` and stores nothing, and the rest commit. Seqs are
    /// allocated in the same transaction as the inserts, so they are
    /// gapless and strictly increasing per room. Edits, deletes and
    /// reactions are folded into their target's stored state in the same
    /// transaction. All or nothing: on `Err` nothing of the batch is stored.
    async fn append(&self, batch: &[NewEvent]) -> Result<Vec<Result<Appended, Refusal>>, LogError>;

    /// Events of every kind with `after < seq < before` (before: unbounded when `None`),
    /// in ascending `seq`, at most `limit`.
    async fn range(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, LogError>;

    /// The newest events before `before` (or the newest overall), at most
    /// `limit`, returned in ascending `seq`: what a history page scrolling
    /// backwards shows.
    async fn tail(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, LogError>;

    /// The latest committed `seq` of a room (0 when empty).
    async fn last_seq(&self, room: RoomId) -> Result<Seq, LogError>;

    /// What [`MessageLog::range`] returns, with the first seq the log still
    /// holds (retention purges the events below it), both read in one
    /// snapshot: a replay that finds `first_seq` above its cursor knows the
    /// events in between are gone, not late, and says so (`truncated`).
    /// The events start at `first_seq` at the earliest.
    async fn replay_page(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<ReplayPage, LogError> {
        // A log that never purges holds everything from the first seq.
        Ok(ReplayPage {
            first_seq: Seq(1),
            events: self.range(room, after, before, limit).await?,
        })
    }
}

/// Opens the log one arbiter's writers append through; called once per
/// arbiter when the engine starts, never on the arbiter's thread. A log
/// that holds connections gives each call its own, opened by their first
/// use: on the writers' thread, where their I/O then runs, instead of on
/// whichever thread (an HTTP worker's, busy with requests) first took a
/// shared pool's connection.
pub type OpenWriterLog = std::sync::Arc<dyn Fn() -> std::sync::Arc<dyn MessageLog> + Send + Sync>;

/// One page of a replay (see [`MessageLog::replay_page`]).
#[derive(Clone, Debug, Default)]
pub struct ReplayPage {
    /// The first seq the log holds; everything below was purged.
    pub first_seq: Seq,
    /// In ascending `seq`.
    pub events: Vec<StoredEvent>,
}

/// Serialises server frames. The engine calls it once per event and shares
/// the text with every recipient; the wire format itself lives in the
/// application (`src/ws/protocol.rs`).
pub trait FrameEncoder: Send + Sync + 'static {
    /// The frame of one committed event, whatever its kind.
    fn event(&self, event: &StoredEvent) -> std::sync::Arc<str>;
    fn subscribed(&self, room: RoomId, seq: Seq, reference: Option<&str>) -> std::sync::Arc<str>;
    fn unsubscribed(&self, room: RoomId, reference: Option<&str>) -> std::sync::Arc<str>;
    /// The server ended the subscription (`unsubscribed` with a reason).
    fn evicted(&self, room: RoomId, reason: crate::room::messages::Eviction)
    -> std::sync::Arc<str>;
    /// The events of `room` below `first_seq` were purged by retention: a
    /// replay continues from `first_seq`, not from the client's `since`.
    fn truncated(&self, room: RoomId, first_seq: Seq) -> std::sync::Arc<str>;
    fn typing(&self, room: RoomId, user: crate::ids::UserId) -> std::sync::Arc<str>;
    fn presence(&self, room: RoomId, user: crate::ids::UserId, online: bool)
    -> std::sync::Arc<str>;
    /// Another member's read cursor (private and direct rooms).
    fn receipt(&self, room: RoomId, user: UserId, seq: Seq) -> std::sync::Arc<str>;
    /// An error frame of `kind`; the application names the kind on the wire.
    fn error(&self, kind: ErrorKind, message: &str, reference: Option<&str>)
    -> std::sync::Arc<str>;
}

/// What went wrong, as the engine reports it to a client through
/// [`FrameEncoder::error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A dependency (the log) cannot serve the request now; retry later.
    Unavailable,
}

/// An event another instance must see. The engine publishes local events on
/// the [`Bus`] and receives the other instances' through [`crate::bus::BusInbox`].
/// How an event crosses (its wire format) is the [`Bus`] implementation's
/// business, not this type's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusEvent {
    /// Events of one room committed by this instance, in ascending `seq`.
    Committed {
        room: RoomId,
        /// Shared with the local room's delivery: publishing copies nothing.
        messages: std::sync::Arc<[StoredEvent]>,
    },
    /// A member's read cursor moved, in a room whose members see each
    /// other's (`receipt` frames to the room's subscribers).
    Receipt {
        room: RoomId,
        user: UserId,
        seq: Seq,
    },
    Typing {
        room: RoomId,
        user: UserId,
    },
    /// A user's first local session joined a room (`online`), or its last left.
    Presence {
        room: RoomId,
        user: UserId,
        online: bool,
    },
    /// A serialised frame for every session of `user` (a `notification`,
    /// or the user's own `read` cursor).
    Notification {
        user: UserId,
        frame: String,
    },
    /// `user` lost access to `room`: end their subscriptions everywhere.
    Revoke {
        room: RoomId,
        user: UserId,
        reason: crate::room::messages::Eviction,
    },
    /// `user`'s standing in `room` (every room: `None`) changed: their
    /// sessions check access again before the next publish.
    Recheck {
        user: UserId,
        room: Option<RoomId>,
    },
    /// A cached value changed: every instance drops its local copy.
    Invalidate {
        key: String,
    },
    /// Some of `user`'s credentials were revoked: every instance refuses
    /// them and ends the sessions opened with them.
    EndSessions {
        user: UserId,
        ended: crate::hub::messages::Ended,
    },
}

impl BusEvent {
    /// The channel scope an event travels on: one room, one user, or all.
    pub fn scope(&self) -> BusScope {
        match self {
            BusEvent::Committed { room, .. }
            | BusEvent::Receipt { room, .. }
            | BusEvent::Typing { room, .. }
            | BusEvent::Presence { room, .. } => BusScope::Room(*room),
            BusEvent::Notification { user, .. } => BusScope::User(*user),
            BusEvent::Revoke { .. }
            | BusEvent::Recheck { .. }
            | BusEvent::Invalidate { .. }
            | BusEvent::EndSessions { .. } => BusScope::All,
        }
    }
}

/// Who listens to an event: the instances with a room's subscribers, with a
/// user's sessions, or every instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BusScope {
    Room(RoomId),
    User(UserId),
    All,
}

/// Who else, on other instances, is in a room: `(instance, user)` pairs.
pub type RemotePresence = Vec<(String, UserId)>;

/// The bridge between instances (Redis pub/sub in production; a no-op when
/// parley runs alone). Publishing never blocks the caller and never fails it:
/// an event that cannot cross is counted and logged by the implementation,
/// and the room order guarantee survives it (gaps are filled from the log).
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Sends an event to the other instances listening on its scope.
    fn publish(&self, event: BusEvent);

    /// Starts receiving `scope`'s events; resolves once the subscription is
    /// live, or at once when the bus is down (it resubscribes on reconnect).
    /// Counted: every `watch` needs one `unwatch`.
    async fn watch(&self, scope: BusScope);

    /// Stops receiving `scope`'s events once no one watches it.
    fn unwatch(&self, scope: BusScope);

    /// Records which users this instance has in `room` (with an expiry, so a
    /// crashed instance's users go offline by themselves) and returns who is
    /// there on other instances; `None` when that is unknown (bus down).
    async fn presence(&self, room: RoomId, local: Vec<UserId>) -> Option<RemotePresence>;
}

/// The bus of a single instance: nothing crosses, nobody else is present.
pub struct LocalBus;

#[async_trait]
impl Bus for LocalBus {
    fn publish(&self, _: BusEvent) {}
    async fn watch(&self, _: BusScope) {}
    fn unwatch(&self, _: BusScope) {}
    async fn presence(&self, _: RoomId, _: Vec<UserId>) -> Option<RemotePresence> {
        Some(Vec::new())
    }
}

/// What the engine reports for metrics: the application turns these into
/// Prometheus series (this crate knows nothing of Prometheus). Every method
/// is called on a hot path, so an implementation only bumps counters.
pub trait Observer: Send + Sync + 'static {
    /// A room handed `frames` message frames to its local subscribers.
    fn delivered(&self, _frames: u64) {}
    /// How long a room took to hand one batch of committed messages to all
    /// its local subscribers.
    fn fanned_out(&self, _took: std::time::Duration) {}
    /// A writer took a batch of `size` publishes off its queue to commit.
    fn committed(&self, _size: usize) {}
    /// Publishes queued in the writers changed by `delta`.
    fn queued(&self, _delta: i64) {}
}

/// An [`Observer`] that reports nothing.
pub struct NoObserver;

impl Observer for NoObserver {}

/// An external service the instance holds connections to (the database,
/// Redis), as its [`crate::dependency::DependencyActor`] sees it.
#[async_trait]
pub trait Dependency: Send + Sync + 'static {
    /// Checks that the service answers, opening a connection when none is
    /// open; `Err` says why not, in words fit for an operator (never a
    /// password). The actor bounds how long it may take.
    async fn check(&self) -> Result<(), String>;

    /// Closes the connections (the end of the drain). Called once.
    async fn close(&self);
}
