//! Messages a [`super::Writer`] handles.

use crate::model::{Appended, NewEvent, Refusal};
use actix::Message;

/// Persist one event. Answered once the batch that holds it committed:
/// `Appended::New` (fresh `seq`) or `Appended::Duplicate` (the original),
/// or refused by the rules of the stream.
#[derive(Message)]
#[rtype(result = "Result<Appended, PublishError>")]
pub struct Publish {
    pub message: NewEvent,
    /// The publisher's span: the commit that persists this publish is
    /// linked to it, so a trace leads from a publish to its batch.
    pub span: tracing::Span,
}

impl Publish {
    /// A publish made within the current span.
    pub fn new(message: NewEvent) -> Self {
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
    /// The room's state forbids the event (its target is gone, deleted, or
    /// not the author's); the same event is refused again.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// Answered once the writer has nothing queued or committing: every publish
/// it received is acked or refused (drain).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WhenIdle;
