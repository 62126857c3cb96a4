//! What webhooks and the server API keep (contract 6.3), as two traits of
//! their own beside [`super::Store`]: [`WebhookStore`] (endpoints, the
//! outbox, the delivery log) and [`ApiKeyStore`]. Both stores implement
//! them (`postgres/webhooks.rs`, `postgres/api_keys.rs`,
//! `memory/integration.rs`) with the same semantics.

use super::StoreError;
use crate::domain::Limit;
use crate::domain::api_key::Scope;
use crate::domain::webhook::{EventFilter, EventTypes, OutboxEvent, WebhookUrl};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A webhook endpoint as stored.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: uuid::Uuid,
    pub url: String,
    pub events: EventTypes,
    /// `whsec_` + base64: what the endpoint verifies signatures with.
    pub secret: String,
    pub enabled: bool,
    /// Consecutive failed attempts (0 after any success).
    pub failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub struct NewEndpoint {
    pub url: WebhookUrl,
    pub events: EventTypes,
    pub secret: String,
}

/// An outbox row claimed for one attempt, with what sending it needs.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub endpoint: uuid::Uuid,
    pub event: uuid::Uuid,
    pub event_type: String,
    pub body: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    pub url: String,
    pub secret: String,
}

/// How one attempt went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer: the row leaves the outbox.
    Delivered,
    /// Another answer.
    Failed,
    /// No answer (refused, timed out, reset).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "delivered" => Outcome::Delivered,
            "failed" => Outcome::Failed,
            _ => Outcome::Error,
        }
    }
}

/// One attempt, for the delivery log.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u32,
}

/// What a failed attempt leads to: the next try, and when the endpoint
/// gives up (`failures` consecutive failures, the first at least `window`
/// ago).
#[derive(Clone, Copy, Debug)]
pub struct OnFailure {
    pub retry_in: Duration,
    pub disable_after: u32,
    pub window: Duration,
}

/// One line of an endpoint's delivery log.
#[derive(Clone, Debug)]
pub struct DeliveryRecord {
    pub id: uuid::Uuid,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub attempt: i32,
    pub status: Option<u16>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub duration_ms: u32,
    pub at: DateTime<Utc>,
}

/// An API key as stored (never the key itself).
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: uuid::Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    /// SHA-256 of the key.
    pub hash: Vec<u8>,
    pub scopes: Vec<Scope>,
}

/// Webhook endpoints, their outbox and delivery log.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// The event types enabled endpoints subscribe to, as last read: what
    /// the append path and `Webhooks::emit` (in `src/webhooks`) check first.
    fn webhook_filter(&self) -> &EventFilter;
    /// Re-reads the filter from the stored endpoints (other instances').
    async fn refresh_webhook_filter(&self) -> Result<(), StoreError>;

    async fn create_webhook(&self, endpoint: NewEndpoint) -> Result<Endpoint, StoreError>;
    /// Every endpoint, oldest first.
    async fn webhooks(&self) -> Result<Vec<Endpoint>, StoreError>;
    async fn webhook(&self, id: uuid::Uuid) -> Result<Option<Endpoint>, StoreError>;
    /// Deletes an endpoint with its pending deliveries and log; `NotFound`.
    async fn delete_webhook(&self, id: uuid::Uuid) -> Result<(), StoreError>;
    /// Enables an endpoint again, its failure count cleared; pending
    /// deliveries resume. `NotFound`.
    async fn enable_webhook(&self, id: uuid::Uuid) -> Result<Endpoint, StoreError>;
    /// An endpoint's delivery log, newest first, strictly older than `before`.
    async fn webhook_deliveries(
        &self,
        endpoint: uuid::Uuid,
        before: Option<uuid::Uuid>,
        limit: Limit,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Puts `events` in the outbox of every enabled endpoint subscribing to
    /// their types (none: nothing is written), in one write. Room events
    /// never come here: the append writes theirs in its own transaction.
    async fn enqueue_webhooks(&self, events: &[OutboxEvent]) -> Result<(), StoreError>;
    /// Claims at most `limit` due rows of enabled endpoints for one attempt
    /// each: they are not due again before `lease` has passed, so no other
    /// instance takes them meanwhile, and a crashed instance's claims come
    /// back after it.
    async fn claim_webhooks(&self, limit: u32, lease: Duration)
    -> Result<Vec<Claimed>, StoreError>;
    /// Records an attempt: delivered rows leave the outbox and clear the
    /// endpoint's failures; others are due again after `on_failure.retry_in`
    /// and count against the endpoint. Answers whether this attempt
    /// disabled the endpoint.
    async fn finish_webhook(
        &self,
        claimed: &Claimed,
        attempt: &Attempt,
        on_failure: OnFailure,
    ) -> Result<bool, StoreError>;
    /// When the oldest row waiting for an enabled endpoint was written.
    async fn webhook_outbox_oldest(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Forgets delivery log lines older than `before`; returns how many.
    async fn prune_webhook_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The server API's keys.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError>;
    /// Every key, revoked ones included, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// The key with this hash, if it exists and is not revoked.
    async fn api_key_by_hash(&self, hash: &[u8]) -> Result<Option<ApiKey>, StoreError>;
    /// `NotFound` when there is no such key; revoking twice is fine.
    async fn revoke_api_key(&self, id: uuid::Uuid) -> Result<(), StoreError>;
}
