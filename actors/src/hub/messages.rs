//! Messages the [`super::Hub`] handles, and the [`Control`] it forwards to
//! sessions.

use crate::ids::{RoomId, SessionId, UserId};
use crate::outbox::Outbox;
use actix::{Message, Recipient};
use std::time::Duration;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session: SessionId,
    pub user: UserId,
    pub outbox: Outbox,
    /// Where the session hears [`Control`] messages.
    pub control: Recipient<Control>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub session: SessionId,
}

/// Local sessions now.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SessionCount;

/// `user` lost access to `room` (removed from it): every session of the
/// user forgets its cached access and its subscription.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RevokeAccess {
    pub user: UserId,
    pub room: RoomId,
}

/// `user`'s standing in `room` (or in every room, `None`) changed without
/// their losing access (muted, unmuted, blocked by a peer): their sessions
/// forget the cached access and check it again at the next publish.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecheckAccess {
    pub user: UserId,
    pub room: Option<RoomId>,
}

/// Tells every session to drain ([`Control::Drain`]), spread evenly over
/// `spread` so clients do not reconnect all at once. Answers how many
/// sessions were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DrainAll {
    pub spread: Duration,
}

/// What the hub tells a session.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub enum Control {
    /// The session no longer has access to `room`.
    Revoked { room: RoomId },
    /// Check access to `room` (every room: `None`) again before the next
    /// publish; the subscription stays.
    Recheck { room: Option<RoomId> },
    /// The instance is draining: finish in-flight publishes, send
    /// `reconnect`, close ([`crate::outbox::CloseReason::Restart`]).
    Drain,
}
