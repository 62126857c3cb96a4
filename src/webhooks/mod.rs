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
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// This instance's door to the outbox (cheap to share behind an `Arc`).
pub struct Webhooks {
    store: SharedStore,
    /// Wakes the worker when something entered the outbox here.
    wake: Notify,
    /// Open WebSocket sessions per user on this instance: `user.online` on
    /// the first, `user.offline` when the last closes.
    sessions: Mutex<HashMap<UserId, usize>>,
}

impl Webhooks {
    pub fn new(store: SharedStore) -> Self {
        Self {
            store,
            wake: Notify::new(),
            sessions: Mutex::default(),
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

    /// A WebSocket session of `user` opened on this instance: their first
    /// here emits `user.online`.
    pub fn opened(self: &Arc<Self>, user: UserId) {
        if self.session_opened(user) && self.wants(EventType::UserOnline) {
            let this = self.clone();
            actix_web::rt::spawn(async move {
                this.emit(EventType::UserOnline, || json!({ "user": user }))
                    .await;
            });
        }
    }

    /// A session of `user` closed here: their last emits `user.offline`.
    pub fn closed(self: &Arc<Self>, user: UserId) {
        if self.session_closed(user) && self.wants(EventType::UserOffline) {
            let this = self.clone();
            actix_web::rt::spawn(async move {
                this.emit(EventType::UserOffline, || json!({ "user": user }))
                    .await;
            });
        }
    }

    fn session_opened(&self, user: UserId) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let count = sessions.entry(user).or_default();
        *count += 1;
        *count == 1
    }

    fn session_closed(&self, user: UserId) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(count) = sessions.get_mut(&user) else {
            return false;
        };
        *count -= 1;
        if *count == 0 {
            sessions.remove(&user);
            return true;
        }
        false
    }
}
