//! Messages a [`super::Writer`] handles.

use crate::model::{Appended, NewMessage};
use actix::Message;

/// Persist one publish. Answered once the batch that holds it committed:
/// `Appended::New` (fresh `seq`) or `Appended::Duplicate` (the original).
#[derive(Message)]
#[rtype(result = "Result<Appended, PublishError>")]
pub struct Publish {
    pub message: NewMessage,
    /// The publisher's span: the commit that persists this publish is
    /// linked to it, so a trace leads from a publish to its batch.
    pub span: tracing::Span,
}

impl Publish {
    /// A publish made within the current span.
    pub fn new(message: NewMessage) -> Self {
        Self {
            message,
            span: tracing::Span::current(),
        }
    }
}

/// Why a publish was not committed. Never acked; safe to retry with the
/// same `client_id`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("the room does not exist")]
    RoomNotFound,
    #[error("the database is unavailable")]
    Unavailable,
    #[error("the writer is overloaded")]
    Overloaded,
    /// The store refused this publish's data; the same publish fails again.
    #[error("the store refused the message")]
    Rejected,
}

/// Answered once the writer has nothing queued or committing: every publish
/// it received is acked or refused (drain).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WhenIdle;
