//! Web Push in the embedded store: subscriptions and the push outbox, as
//! `postgres/push.rs` keeps them (nothing survives a restart here, pending
//! pushes included). [`State::enqueue_pushes`] runs inside the locked call
//! that stores a notification, so the two are one step as in PostgreSQL.

use super::{MemoryStore, State};
use crate::domain::{NotificationId, PushSubscriptionId, UserId};
use crate::store::push::{
    ClaimedPush, FINISH_MAX, NewPushSubscription, PushClaim, PushId, PushStore,
};
use crate::store::{Notification, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The push tables.
#[derive(Default)]
pub(super) struct PushState {
    subscriptions: BTreeMap<PushSubscriptionId, SubscriptionRow>,
    outbox: BTreeMap<PushId, OutboxRow>,
    next_id: i64,
}

struct SubscriptionRow {
    user: UserId,
    endpoint: String,
    p256dh: Vec<u8>,
    auth: Vec<u8>,
}

struct OutboxRow {
    notification: (UserId, NotificationId),
    subscription: PushSubscriptionId,
    created_at: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
    lease: Option<uuid::Uuid>,
    attempts: u32,
}

impl State {
    /// One outbox row per subscription of the notification's recipient.
    pub(super) fn enqueue_pushes(&mut self, notification: &Notification) {
        let push = &mut self.push;
        let subscriptions: Vec<PushSubscriptionId> = push
            .subscriptions
            .iter()
            .filter(|(_, s)| s.user == notification.user)
            .map(|(id, _)| *id)
            .collect();
        for subscription in subscriptions {
            push.next_id += 1;
            push.outbox.insert(
                PushId(push.next_id),
                OutboxRow {
                    notification: (notification.user, notification.id),
                    subscription,
                    created_at: notification.created_at,
                    not_before: None,
                    lease: None,
                    attempts: 0,
                },
            );
        }
    }

    fn claim_pushes(&mut self, claim: PushClaim, now: DateTime<Utc>) -> Vec<ClaimedPush> {
        let delay = chrono::Duration::from_std(claim.delay).unwrap_or_default();
        let lease_for = chrono::Duration::from_std(claim.lease_for).unwrap_or_default();
        let mut due: Vec<(DateTime<Utc>, PushId)> = self
            .push
            .outbox
            .iter()
            .filter(|(_, row)| row.created_at + delay <= now)
            .filter(|(_, row)| row.not_before.is_none_or(|t| t <= now))
            .map(|(id, row)| (row.not_before.unwrap_or(row.created_at + delay), *id))
            .collect();
        due.sort();
        due.truncate(claim.limit as usize);
        let mut claimed = Vec::with_capacity(due.len());
        for (due_at, id) in due {
            let Some(row) = self.push.outbox.get_mut(&id) else {
                continue;
            };
            row.lease = Some(claim.lease);
            row.not_before = Some(now + lease_for);
            row.attempts += 1;
            let (attempts, subscription, key) = (row.attempts, row.subscription, row.notification);
            let (Some(sub), Some(notification)) = (
                self.push.subscriptions.get(&subscription),
                self.notifications.get(&key),
            ) else {
                self.push.outbox.remove(&id); // orphaned: nothing to send
                continue;
            };
            claimed.push(ClaimedPush {
                id,
                subscription,
                endpoint: sub.endpoint.clone(),
                p256dh: sub.p256dh.clone(),
                auth: sub.auth.clone(),
                notification: notification.clone(),
                unread: i64::try_from(self.unread_of(key.0).count()).unwrap_or(i64::MAX),
                attempts,
                due_at,
            });
        }
        claimed
    }

    fn drop_subscription(&mut self, id: PushSubscriptionId) -> bool {
        self.push.outbox.retain(|_, row| row.subscription != id);
        self.push.subscriptions.remove(&id).is_some()
    }

    /// The row, if claim `lease` still holds it.
    fn leased(&mut self, id: PushId, lease: uuid::Uuid) -> Option<&mut OutboxRow> {
        self.push
            .outbox
            .get_mut(&id)
            .filter(|row| row.lease == Some(lease))
    }
}

#[async_trait]
impl PushStore for MemoryStore {
    async fn save_push_subscription(
        &self,
        new: NewPushSubscription,
    ) -> Result<PushSubscriptionId, StoreError> {
        let mut state = self.lock();
        if !state.users.contains_key(&new.user) {
            return Err(StoreError::NotFound);
        }
        let endpoint = new.endpoint.as_str();
        let existing = state
            .push
            .subscriptions
            .iter_mut()
            .find(|(_, s)| s.user == new.user && s.endpoint == endpoint);
        if let Some((id, row)) = existing {
            row.p256dh = new.keys.p256dh;
            row.auth = new.keys.auth;
            return Ok(*id);
        }
        let id = PushSubscriptionId::new();
        let row = SubscriptionRow {
            user: new.user,
            endpoint: endpoint.to_owned(),
            p256dh: new.keys.p256dh,
            auth: new.keys.auth,
        };
        state.push.subscriptions.insert(id, row);
        Ok(id)
    }

    async fn delete_push_subscription(
        &self,
        user: UserId,
        id: PushSubscriptionId,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        match state.push.subscriptions.get(&id) {
            Some(row) if row.user == user => {
                state.drop_subscription(id);
                Ok(())
            }
            _ => Err(StoreError::NotFound),
        }
    }

    async fn drop_push_subscription(&self, id: PushSubscriptionId) -> Result<bool, StoreError> {
        Ok(self.lock().drop_subscription(id))
    }

    async fn push_subscription_count(&self, user: UserId) -> Result<u64, StoreError> {
        let state = self.lock();
        let n = state
            .push
            .subscriptions
            .values()
            .filter(|s| s.user == user)
            .count();
        Ok(n as u64)
    }

    async fn claim_pushes(&self, claim: PushClaim) -> Result<Vec<ClaimedPush>, StoreError> {
        Ok(self.lock().claim_pushes(claim, Utc::now()))
    }

    async fn finish_pushes(
        &self,
        rows: &[(PushId, uuid::Uuid)],
    ) -> Result<Vec<PushId>, StoreError> {
        let mut state = self.lock();
        let mut done = Vec::with_capacity(rows.len());
        for &(id, lease) in rows.iter().take(FINISH_MAX) {
            if state.leased(id, lease).is_some() {
                state.push.outbox.remove(&id);
                done.push(id);
            }
        }
        Ok(done)
    }

    async fn retry_push(
        &self,
        id: PushId,
        lease: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(row) = state.leased(id, lease) else {
            return Ok(false);
        };
        row.lease = None;
        row.not_before = Some(at);
        Ok(true)
    }
}
