//! How a publish is stored and answered, for REST (`POST
//! /rooms/{id}/messages`) and WebSocket (`publish`) alike: through the
//! room's writer (group commit, then delivery to live subscribers in `seq`
//! order), counted once, answered with one error mapping, and notified.
//!
//! Callers check access first ([`super::rooms::readable`]); the writer
//! checks nothing but the room's existence.

use super::{Services, notify};
use crate::domain::{ClientId, Code, MessageBody, RoomId, UserId};
use crate::observability::metrics::Metrics;
use crate::store::Room;
use parley_actors::model::{Appended, NewMessage};
use parley_actors::writer::{Publish, PublishError};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// A parsed publish from `author` to `room`.
pub struct Draft {
    pub room: RoomId,
    pub author: UserId,
    pub body: MessageBody,
    pub client_id: ClientId,
}

/// Sends the publish to its room's writer at once, so one connection's
/// publishes reach the writer in the order they were sent, and returns the
/// durable answer to await. `span` is the publish's own span: the writer's
/// commit links to it (one commit serves many publishes) and it records
/// the outcome.
pub fn submit(
    services: &Services,
    draft: Draft,
    span: tracing::Span,
) -> impl Future<Output = Result<Appended, PublishError>> + 'static {
    let message = NewMessage {
        room: draft.room,
        author: draft.author,
        client_id: draft.client_id,
        body: draft.body,
    };
    let received = Instant::now();
    let pending = services.engine.writers.for_room(draft.room).send(Publish {
        message,
        span: span.clone(),
    });
    let metrics = services.metrics.clone();
    async move {
        let outcome = pending.await.unwrap_or(Err(PublishError::Unavailable));
        record(&metrics, &outcome, received);
        match &outcome {
            Ok(Appended::New(_)) => span.record("outcome", "new"),
            Ok(Appended::Duplicate(_)) => span.record("outcome", "duplicate"),
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("outcome", e.to_string())
            }
        };
        outcome
    }
}

/// Notifies whom a new message concerns (a direct room's other member,
/// `@mentions`), if anyone: most messages concern nobody, and finding that
/// out costs nothing here. `room` is the room when the caller already
/// loaded it. The message is committed: a failure is logged, not returned.
pub async fn notify_new(
    services: &Services,
    appended: &Appended,
    room: Option<&Room>,
    author_name: &str,
) {
    let Appended::New(message) = appended else {
        return;
    };
    if !notify::may_notify(room, &message.body) {
        return;
    }
    match room {
        Some(room) => notify::message_posted(services, room, author_name, message).await,
        None => notify::message_posted_in(services, author_name, message).await,
    }
}

/// [`notify_new`] without waiting for it (a WebSocket ack goes out first).
pub fn spawn_notify(
    services: &Services,
    appended: &Appended,
    room: Option<Arc<Room>>,
    author_name: &str,
) {
    let Appended::New(message) = appended else {
        return;
    };
    if !notify::may_notify(room.as_deref(), &message.body) {
        return;
    }
    let (services, appended, author) = (services.clone(), appended.clone(), author_name.to_owned());
    actix_web::rt::spawn(async move {
        notify_new(&services, &appended, room.as_deref(), &author).await;
    });
}

/// Counts one publish by outcome and, when it was answered, its time to the
/// durable answer, so `parley_messages_total` counts both edges alike.
fn record(metrics: &Metrics, outcome: &Result<Appended, PublishError>, received: Instant) {
    let label = match outcome {
        Ok(Appended::New(_)) => "new",
        Ok(Appended::Duplicate(_)) => "duplicate",
        Err(_) => "error",
    };
    metrics.messages.with_label_values(&[label]).inc();
    if outcome.is_ok() {
        metrics
            .publish_ack
            .observe(received.elapsed().as_secs_f64());
    }
}

/// How a publish that was not stored is answered, on REST and WebSocket
/// alike: the code and the words that tell the client what to do.
pub fn failure(e: &PublishError) -> (Code, &'static str) {
    match e {
        PublishError::RoomNotFound => (Code::NotFound, "room not found"),
        PublishError::Unavailable => (
            Code::Unavailable,
            "the message was not stored; retry with the same client_id",
        ),
        PublishError::Overloaded => (
            Code::Unavailable,
            "the server is overloaded; retry with the same client_id",
        ),
        PublishError::Rejected => (
            Code::Internal,
            "the message could not be stored; quote the request id when reporting it",
        ),
    }
}
