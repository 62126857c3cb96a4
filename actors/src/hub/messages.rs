//! Messages the [`super::Hub`] handles.

use crate::ids::{RoomId, SessionId, UserId};
use crate::outbox::Outbox;
use actix::{Message, Recipient};
use std::sync::Arc;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session: SessionId,
    pub user: UserId,
    pub outbox: Outbox,
    /// Where the session hears that it lost access to a room.
    pub control: Recipient<Revoked>,
}

/// `user` lost access to `room` (removed from it): every session of the
/// user forgets its cached access and its subscription.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RevokeAccess {
    pub user: UserId,
    pub room: RoomId,
}

/// Sent to a session: it no longer has access to `room`.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Revoked {
    pub room: RoomId,
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

/// Sends `frame` to every session, then closes each with `close`, spread
/// evenly over `spread` so clients do not reconnect all at once. Answers
/// how many sessions were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Broadcast {
    pub frame: Arc<str>,
    pub close: Option<crate::outbox::CloseCode>,
    pub spread: std::time::Duration,
}
