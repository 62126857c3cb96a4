//! Messages a [`super::RoomActor`] handles.

use crate::ids::{RoomId, Seq, SessionId, UserId};
use crate::model::StoredEvent;
use crate::outbox::Outbox;
use actix::Message;
use std::sync::Arc;

/// Join the live stream. The room answers `subscribed` on the outbox, then
/// replays every message after `since` (if given), then continues live with
/// no gap and no duplicate.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub session: SessionId,
    pub user: UserId,
    pub outbox: Outbox,
    pub since: Option<Seq>,
    pub reference: Option<String>,
}

/// Leave the live stream; answered `unsubscribed` when `reply` is set.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub session: SessionId,
    pub reference: Option<String>,
    pub reply: bool,
}

/// Newly committed messages of this room, in ascending `seq`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Committed {
    pub messages: Arc<[StoredEvent]>,
}

/// Someone is typing; fanned out to the other subscribers, never stored.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Typing {
    /// The local session typing (it does not hear itself); `None` when the
    /// event came from another instance.
    pub session: Option<SessionId>,
    pub user: UserId,
}

/// A member's read cursor moved: a `receipt` frame to the room's other
/// subscribers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Receipt {
    pub user: UserId,
    pub seq: Seq,
}

/// Another instance's first session of `user` joined the room (`online`),
/// or its last one left.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemotePresenceChanged {
    pub instance: String,
    pub user: UserId,
    pub online: bool,
}

/// `user` lost access: end their subscriptions, telling them why.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Evict {
    pub user: UserId,
    pub reason: Eviction,
}

/// Why a user's subscriptions to a room were ended by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// No longer a member (left, or removed by a moderator).
    Removed,
    /// Banned from the room.
    Banned,
}

/// Events from other instances may have been lost: compare the stream
/// with the log's head and fill what is missing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resync;

/// How many sessions are subscribed (tests and metrics).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SubscriberCount;

/// The room this actor serves, for log fields.
pub type RoomKey = RoomId;
