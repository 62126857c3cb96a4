//! Messages the [`super::Hub`] handles.

use crate::ids::{SessionId, UserId};
use crate::outbox::Outbox;
use actix::Message;
use std::sync::Arc;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session: SessionId,
    pub user: UserId,
    pub outbox: Outbox,
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
