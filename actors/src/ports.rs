//! The storage port the actors depend on. `src/store` implements it for
//! PostgreSQL and for the embedded in-process store.

use crate::ids::{RoomId, Seq};
use crate::model::{Appended, NewMessage, StoredMessage};
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
}

/// The durable, ordered, per-room message log.
#[async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// Appends a batch in one transaction. Results are in input order. A
    /// publish whose (room, author, client_id) already exists, in the store or
    /// earlier in the same batch, is answered with the original message and
    /// takes no `seq`. Seqs are allocated in the same transaction as the
    /// inserts, so they are gapless and strictly increasing per room.
    async fn append(&self, batch: Vec<NewMessage>) -> Result<Vec<Appended>, LogError>;

    /// Messages with `after < seq < before` (before: unbounded when `None`),
    /// in ascending `seq`, at most `limit`.
    async fn range(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, LogError>;

    /// The newest messages before `before` (or the newest overall), at most
    /// `limit`, returned in ascending `seq`: what a history page scrolling
    /// backwards shows.
    async fn tail(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, LogError>;

    /// The latest committed `seq` of a room (0 when empty).
    async fn last_seq(&self, room: RoomId) -> Result<Seq, LogError>;
}

/// Serialises server frames. The engine calls it once per event and shares
/// the text with every recipient; the wire format itself lives in the
/// application (`src/ws/protocol.rs`).
pub trait FrameEncoder: Send + Sync + 'static {
    fn message(&self, message: &StoredMessage) -> std::sync::Arc<str>;
    fn subscribed(&self, room: RoomId, seq: Seq, reference: Option<&str>) -> std::sync::Arc<str>;
    fn unsubscribed(&self, room: RoomId, reference: Option<&str>) -> std::sync::Arc<str>;
    fn typing(&self, room: RoomId, user: crate::ids::UserId) -> std::sync::Arc<str>;
    fn presence(&self, room: RoomId, user: crate::ids::UserId, online: bool)
    -> std::sync::Arc<str>;
    /// An `error` frame with `code` (`unavailable`, `too_large`, ...).
    fn error(&self, code: &str, message: &str, reference: Option<&str>) -> std::sync::Arc<str>;
}
