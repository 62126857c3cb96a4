//! Webhooks and API keys in the embedded store, with the semantics of
//! `postgres/webhooks.rs` and `postgres/api_keys.rs`: an outbox row per
//! subscribing enabled endpoint, claimed with a lease, retried, logged.
//! The state lives in [`super::State`]; the room events' rows are written
//! under the same lock as their append (`MemoryStore::append`).

use super::{MemoryStore, State};
use crate::domain::Limit;
use crate::domain::webhook::{EventFilter, EventTypes, OutboxEvent};
use crate::store::StoreError;
use crate::store::integration::{
    ApiKey, ApiKeyStore, Attempt, Claimed, DeliveryRecord, Endpoint, NewApiKey, NewEndpoint,
    OnFailure, Outcome, WebhookStore,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// Webhook endpoints, outbox and log; API keys.
#[derive(Default)]
pub(super) struct Integration {
    endpoints: BTreeMap<uuid::Uuid, Endpoint>,
    /// By (endpoint, event).
    outbox: BTreeMap<(uuid::Uuid, uuid::Uuid), OutboxRow>,
    /// By (endpoint, delivery id), so one endpoint's log is one range.
    deliveries: BTreeMap<(uuid::Uuid, uuid::Uuid), DeliveryRecord>,
    /// By id, with the key's hash.
    api_keys: BTreeMap<uuid::Uuid, (ApiKey, Vec<u8>)>,
}

struct OutboxRow {
    event_type: String,
    body: String,
    created_at: DateTime<Utc>,
    attempts: i32,
    due_at: DateTime<Utc>,
}

fn later(by: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX)
}

impl Integration {
    /// The event types of the enabled endpoints.
    fn filter(&self) -> EventTypes {
        self.endpoints
            .values()
            .filter(|e| e.enabled)
            .fold(EventTypes::default(), |set, e| set.union(e.events))
    }

    pub(super) fn enqueue(&mut self, events: &[OutboxEvent]) {
        let now = Utc::now();
        for endpoint in self.endpoints.values().filter(|e| e.enabled) {
            for event in events.iter().filter(|e| endpoint.events.contains(e.kind)) {
                self.outbox
                    .entry((endpoint.id, event.id))
                    .or_insert_with(|| OutboxRow {
                        event_type: event.kind.as_str().to_owned(),
                        body: event.body.clone(),
                        created_at: now,
                        attempts: 0,
                        due_at: now,
                    });
            }
        }
    }

    fn claim(&mut self, limit: u32, lease: Duration) -> Vec<Claimed> {
        let now = Utc::now();
        let mut due: Vec<(DateTime<Utc>, (uuid::Uuid, uuid::Uuid))> = self
            .outbox
            .iter()
            .filter(|((endpoint, _), row)| {
                row.due_at <= now && self.endpoints.get(endpoint).is_some_and(|e| e.enabled)
            })
            .map(|(key, row)| (row.due_at, *key))
            .collect();
        due.sort_unstable();
        due.truncate(limit as usize);
        let until = later(lease);
        let mut claimed = Vec::with_capacity(due.len());
        for (_, key) in due {
            let (Some(row), Some(endpoint)) =
                (self.outbox.get_mut(&key), self.endpoints.get(&key.0))
            else {
                continue;
            };
            row.attempts += 1;
            row.due_at = until;
            claimed.push(Claimed {
                endpoint: key.0,
                event: key.1,
                event_type: row.event_type.clone(),
                body: row.body.clone(),
                attempt: row.attempts,
                url: endpoint.url.clone(),
                secret: endpoint.secret.clone(),
            });
        }
        claimed
    }

    fn finish(&mut self, claimed: &Claimed, attempt: &Attempt, on_failure: OnFailure) -> bool {
        let Some(endpoint) = self.endpoints.get_mut(&claimed.endpoint) else {
            return false; // deleted meanwhile, with its outbox and log
        };
        let id = uuid::Uuid::now_v7();
        self.deliveries.insert(
            (claimed.endpoint, id),
            DeliveryRecord {
                id,
                event_id: claimed.event,
                event_type: claimed.event_type.clone(),
                attempt: claimed.attempt,
                status: attempt.status,
                outcome: attempt.outcome,
                error: attempt.error.clone(),
                duration_ms: attempt.duration_ms,
                at: Utc::now(),
            },
        );
        let key = (claimed.endpoint, claimed.event);
        if attempt.outcome == Outcome::Delivered {
            self.outbox.remove(&key);
            endpoint.failures = 0;
            endpoint.failing_since = None;
            return false;
        }
        if let Some(row) = self.outbox.get_mut(&key) {
            row.due_at = later(on_failure.retry_in);
        }
        if !endpoint.enabled {
            return false;
        }
        let now = Utc::now();
        endpoint.failures += 1;
        let since = *endpoint.failing_since.get_or_insert(now);
        let window = chrono::Duration::from_std(on_failure.window).unwrap_or(chrono::Duration::MAX);
        let give_up = i64::from(endpoint.failures) >= i64::from(on_failure.disable_after)
            && since <= now - window;
        if give_up {
            endpoint.enabled = false;
            endpoint.disabled_at = Some(now);
        }
        give_up
    }
}

impl MemoryStore {
    fn set_filter(&self, state: &State) {
        self.webhook_filter.set(state.integration.filter());
    }
}

#[async_trait]
impl WebhookStore for MemoryStore {
    fn webhook_filter(&self) -> &EventFilter {
        &self.webhook_filter
    }

    async fn refresh_webhook_filter(&self) -> Result<(), StoreError> {
        self.set_filter(&self.lock());
        Ok(())
    }

    async fn create_webhook(&self, new: NewEndpoint) -> Result<Endpoint, StoreError> {
        let endpoint = Endpoint {
            id: uuid::Uuid::now_v7(),
            url: new.url.as_str().to_owned(),
            events: new.events,
            secret: new.secret,
            enabled: true,
            failures: 0,
            failing_since: None,
            disabled_at: None,
            created_at: Utc::now(),
        };
        let mut state = self.lock();
        state
            .integration
            .endpoints
            .insert(endpoint.id, endpoint.clone());
        self.set_filter(&state);
        Ok(endpoint)
    }

    async fn webhooks(&self) -> Result<Vec<Endpoint>, StoreError> {
        Ok(self
            .lock()
            .integration
            .endpoints
            .values()
            .cloned()
            .collect())
    }

    async fn webhook(&self, id: uuid::Uuid) -> Result<Option<Endpoint>, StoreError> {
        Ok(self.lock().integration.endpoints.get(&id).cloned())
    }

    async fn delete_webhook(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        let mut state = self.lock();
        let hooks = &mut state.integration;
        hooks.endpoints.remove(&id).ok_or(StoreError::NotFound)?;
        hooks.outbox.retain(|(endpoint, _), _| *endpoint != id);
        hooks.deliveries.retain(|(endpoint, _), _| *endpoint != id);
        self.set_filter(&state);
        Ok(())
    }

    async fn enable_webhook(&self, id: uuid::Uuid) -> Result<Endpoint, StoreError> {
        let mut state = self.lock();
        let endpoint = state
            .integration
            .endpoints
            .get_mut(&id)
            .ok_or(StoreError::NotFound)?;
        endpoint.enabled = true;
        endpoint.failures = 0;
        endpoint.failing_since = None;
        endpoint.disabled_at = None;
        let endpoint = endpoint.clone();
        self.set_filter(&state);
        Ok(endpoint)
    }

    async fn webhook_deliveries(
        &self,
        endpoint: uuid::Uuid,
        before: Option<uuid::Uuid>,
        limit: Limit,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let state = self.lock();
        let end = before.unwrap_or(uuid::Uuid::max());
        Ok(state
            .integration
            .deliveries
            .range((endpoint, uuid::Uuid::nil())..(endpoint, end))
            .rev()
            .take(limit.get() as usize)
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn enqueue_webhooks(&self, events: &[OutboxEvent]) -> Result<(), StoreError> {
        self.lock().integration.enqueue(events);
        Ok(())
    }

    async fn claim_webhooks(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        Ok(self.lock().integration.claim(limit, lease))
    }

    async fn finish_webhook(
        &self,
        claimed: &Claimed,
        attempt: &Attempt,
        on_failure: OnFailure,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let disabled = state.integration.finish(claimed, attempt, on_failure);
        if disabled {
            self.set_filter(&state);
        }
        Ok(disabled)
    }

    async fn webhook_outbox_oldest(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let state = self.lock();
        let hooks = &state.integration;
        Ok(hooks
            .outbox
            .iter()
            .filter(|((endpoint, _), _)| hooks.endpoints.get(endpoint).is_some_and(|e| e.enabled))
            .map(|(_, row)| row.created_at)
            .min())
    }

    async fn prune_webhook_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let deliveries = &mut state.integration.deliveries;
        let count = deliveries.len();
        deliveries.retain(|_, d| d.at >= before);
        Ok((count - deliveries.len()) as u64)
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError> {
        let stored = ApiKey {
            id: uuid::Uuid::now_v7(),
            name: key.name,
            prefix: key.prefix,
            scopes: key.scopes,
            created_at: Utc::now(),
            revoked_at: None,
        };
        let mut state = self.lock();
        let keys = &mut state.integration.api_keys;
        if keys.values().any(|(_, hash)| *hash == key.hash) {
            return Err(StoreError::Conflict("key"));
        }
        keys.insert(stored.id, (stored.clone(), key.hash));
        Ok(stored)
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let state = self.lock();
        Ok(state
            .integration
            .api_keys
            .values()
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn api_key_by_hash(&self, hash: &[u8]) -> Result<Option<ApiKey>, StoreError> {
        let state = self.lock();
        Ok(state
            .integration
            .api_keys
            .values()
            .find(|(k, h)| h == hash && k.revoked_at.is_none())
            .map(|(k, _)| k.clone()))
    }

    async fn revoke_api_key(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        let mut state = self.lock();
        let (key, _) = state
            .integration
            .api_keys
            .get_mut(&id)
            .ok_or(StoreError::NotFound)?;
        key.revoked_at.get_or_insert_with(Utc::now);
        Ok(())
    }
}
