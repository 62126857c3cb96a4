//! How a room event (a message, an edit, a delete, a reaction) is stored
//! and answered, for REST and WebSocket alike: through the room's writer
//! (group commit, then delivery to live subscribers in `seq` order),
//! counted once, answered with one error mapping, and followed by its
//! notifications.
//!
//! Callers check access first ([`super::rooms::readable`]) and say whether
//! the author moderates the room; the writer applies the rules of the
//! stream ([`parley_actors::model::check`]) under the room's lock.

use super::{Services, notify};
use crate::domain::{ClientId, Code, RoomId, RoomRole, UserId};
use crate::observability::metrics::Metrics;
use crate::store::Room;
use parley_actors::model::{Action, Appended, EventData, NewEvent, Refusal};
use parley_actors::writer::{Publish, PublishError};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// A parsed event from `author` to `room`.
pub struct Draft {
    pub room: RoomId,
    pub author: UserId,
    pub client_id: ClientId,
    pub action: Action,
    /// The author's role in the room (none in a public room not joined).
    pub role: Option<RoomRole>,
}

/// Sends the event to its room's writer at once, so one connection's
/// events reach the writer in the order they were sent, and returns the
/// durable answer to await. `span` is the event's own span: the writer's
/// commit links to it (one commit serves many events) and it records the
/// outcome.
pub fn submit(
    services: &Services,
    draft: Draft,
    span: tracing::Span,
) -> impl Future<Output = Result<Appended, PublishError>> + 'static {
    let kind = EventData::from_action(&draft.action).kind();
    let event = NewEvent {
        room: draft.room,
        author: draft.author,
        client_id: draft.client_id,
        action: draft.action,
        moderator: super::rooms::moderates(draft.role),
    };
    let received = Instant::now();
    let pending = services.engine.writers.for_room(draft.room).send(Publish {
        message: event,
        span: span.clone(),
    });
    let metrics = services.metrics.clone();
    let webhooks = services.webhooks.clone();
    async move {
        let outcome = pending.await.unwrap_or(Err(PublishError::Unavailable));
        if matches!(outcome, Ok(Appended::New(_))) {
            webhooks.nudge();
        }
        let label = record(&metrics, kind, &outcome, received);
        span.record("outcome", label);
        if matches!(outcome, Err(ref e) if !matches!(e, PublishError::Refused(_))) {
            span.record("otel.status_code", "ERROR");
        }
        outcome
    }
}

/// Notifies whom a new event concerns, if anyone: a message's direct-room
/// peer and `@mentions`, an edit's newly mentioned users (once per message),
/// a delete withdraws what its message notified. Most events concern
/// nobody, and finding that out costs nothing here. `room` is the room when
/// the caller already loaded it. The event is committed: a failure is
/// logged, not returned.
pub async fn notify_new(
    services: &Services,
    appended: &Appended,
    room: Option<&Room>,
    author_name: &str,
) {
    let Appended::New(event) = appended else {
        return;
    };
    match &event.data {
        EventData::Message { body, .. } if notify::may_notify(room, body) => match room {
            Some(room) => notify::message_posted(services, room, author_name, event).await,
            None => notify::message_posted_in(services, author_name, event).await,
        },
        EventData::Edit { target, body } if !notify::mentions(body).is_empty() => {
            notify::message_edited(services, event.room, *target, author_name, body).await
        }
        EventData::Delete { target } => {
            notify::message_deleted(services, event.room, *target).await
        }
        _ => {}
    }
}

/// Whether [`notify_new`] has anything to do for this event.
fn may_notify(appended: &Appended, room: Option<&Room>) -> bool {
    let Appended::New(event) = appended else {
        return false;
    };
    match &event.data {
        EventData::Message { body, .. } => notify::may_notify(room, body),
        EventData::Edit { body, .. } => !notify::mentions(body).is_empty(),
        EventData::Delete { .. } => true,
        EventData::Reaction { .. } => false,
    }
}

/// [`notify_new`] without waiting for it (a WebSocket ack goes out first).
pub fn spawn_notify(
    services: &Services,
    appended: &Appended,
    room: Option<Arc<Room>>,
    author_name: &str,
) {
    if !may_notify(appended, room.as_deref()) {
        return;
    }
    let (services, appended, author) = (services.clone(), appended.clone(), author_name.to_owned());
    actix_web::rt::spawn(async move {
        notify_new(&services, &appended, room.as_deref(), &author).await;
    });
}

/// Counts one event by kind and outcome and, when it was stored, its time
/// to the durable answer. `parley_messages_total` keeps counting publishes
/// alone, as before events had kinds. Returns the outcome's label.
fn record(
    metrics: &Metrics,
    kind: &str,
    outcome: &Result<Appended, PublishError>,
    received: Instant,
) -> &'static str {
    let label = match outcome {
        Ok(Appended::New(_)) => "new",
        Ok(Appended::Duplicate(_)) => "duplicate",
        Err(PublishError::Refused(_)) => "refused",
        Err(_) => "error",
    };
    metrics.room_events.with_label_values(&[kind, label]).inc();
    if kind == "message" {
        metrics.messages.with_label_values(&[label]).inc();
    }
    if outcome.is_ok() {
        metrics
            .publish_ack
            .observe(received.elapsed().as_secs_f64());
    }
    label
}

/// How an event that was not stored is answered, on REST and WebSocket
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
        PublishError::Refused(Refusal::NoSuchMessage) => {
            (Code::NotFound, "no message with that seq in this room")
        }
        PublishError::Refused(Refusal::Deleted) => (Code::Conflict, "that message was deleted"),
        PublishError::Refused(Refusal::NotAuthor) => (
            Code::Forbidden,
            "only the author may edit a message; only the author, the room owner or an admin may delete it",
        ),
    }
}
