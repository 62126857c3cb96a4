//! Webhooks (contract 6.3, `docs/webhooks.md`): events into a durable
//! outbox, and a delivery worker per instance that posts them signed.
//!
//! - Room events (`message.*`) enter the outbox inside their append's
//!   transaction (`store::postgres::messages`, `MemoryStore::append`).
//! - Every other event type enters it through [`Webhooks::emit`], right
//!   after the change it reports committed (membership, notifications) or
//!   happened (presence): a crash between the two loses that one event,
//!   which the docs say.
//! - [`worker`] claims due rows, posts them with the Standard Webhooks
//!   headers ([`signature`]), retries with backoff, logs each attempt and
//!   disables an endpoint that keeps failing.
//!
//! What any enabled endpoint subscribes to is a filter the store keeps
//! ([`crate::store::WebhookStore::webhook_filter`]): with no endpoint, an
//! event costs one atomic load.

pub mod signature;
pub mod worker;

use crate::domain::UserId;
use crate::domain::webhook::{EventType, OutboxEvent};
use crate::store::SharedStore;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::Notify;

/// This instance's door to the outbox (cheap to share behind an `Arc`).
pub struct Webhooks {
    store: SharedStore,
    /// Wakes the worker when something entered the outbox here.
    wake: Notify,
}

impl Webhooks {
    pub fn new(store: SharedStore) -> Self {
        Self {
            store,
            wake: Notify::new(),
        }
    }

    /// Whether an enabled endpoint wants `kind`: callers skip building the
    /// event's data when not.
    pub fn wants(&self, kind: EventType) -> bool {
        self.store.webhook_filter().wants(kind)
    }

    /// Puts an event of `kind` in the outbox, if an endpoint wants it. The
    /// change it reports has happened: a failure is logged, not returned.
    pub async fn emit(&self, kind: EventType, data: impl FnOnce() -> serde_json::Value) {
        if self.wants(kind) {
            self.emit_many(kind, vec![data()]).await;
        }
    }

    /// [`Webhooks::emit`] for several events of one kind, in one write (a
    /// post's notifications to its author's followers).
    pub async fn emit_many(&self, kind: EventType, data: Vec<serde_json::Value>) {
        if data.is_empty() || !self.wants(kind) {
            return;
        }
        let events: Vec<OutboxEvent> = data
            .into_iter()
            .map(|d| OutboxEvent::new(kind, d))
            .collect();
        match self.store.enqueue_webhooks(&events).await {
            Ok(()) => self.nudge(),
            Err(error) => {
                tracing::warn!(error = %error.describe(), kind = kind.as_str(), events = events.len(), "could not queue webhook events")
            }
        }
    }

    /// Something may have entered the outbox (a room event's append): the
    /// worker looks now rather than at its next poll.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// `user` opened their first WebSocket on any instance (the connection
    /// caps decide it: `ws::caps::Slot::first_anywhere`).
    pub fn online(self: &Arc<Self>, user: UserId) {
        self.presence(EventType::UserOnline, user);
    }

    /// `user` closed their last WebSocket on any instance
    /// (`ws::caps::Slot::release`).
    pub fn offline(self: &Arc<Self>, user: UserId) {
        self.presence(EventType::UserOffline, user);
    }

    /// Presence edges are reported off the connection's path.
    fn presence(self: &Arc<Self>, kind: EventType, user: UserId) {
        if self.wants(kind) {
            let this = self.clone();
            actix_web::rt::spawn(async move {
                this.emit(kind, || json!({ "user": user })).await;
            });
        }
    }
}
