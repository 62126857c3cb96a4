//! Messages the [`super::Notifier`] handles.

use crate::ids::{SessionId, UserId};
use crate::outbox::Outbox;
use actix::Message;
use std::sync::Arc;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    pub user: UserId,
    pub session: SessionId,
    pub outbox: Outbox,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    pub user: UserId,
    pub session: SessionId,
}

/// A serialised `notification` frame for every session of `user`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Push {
    pub user: UserId,
    pub frame: Arc<str>,
}

/// Several [`Push`]es in one message: a post's notifications to its
/// followers cost the notifier's mailbox one slot, not one per follower.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PushMany {
    pub pushes: Vec<Push>,
}
