//! Web Push storage: subscriptions and the push outbox (docs/push.md).
//!
//! A stored notification enqueues one outbox row per subscription of its
//! recipient atomically with itself (PostgreSQL: a statement trigger; the
//! embedded store: in the same locked call). The sender claims due rows
//! with a lease ([`PushStore::claim_pushes`]) and ends each with a call
//! that only succeeds while the claim is still its own
//! ([`PushStore::finish_pushes`], [`PushStore::retry_push`]): a claim that
//! outlived its lease and was taken over by another instance changes
//! nothing.
//!
//! Kept apart from [`super::Store`]'s own list so push is one file in each
//! implementation (`postgres/push.rs`, `memory/push.rs`).

use super::{Notification, StoreError};
use crate::domain::push::{PushEndpoint, PushKeys};
use crate::domain::{PushSubscriptionId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A subscription to save for `user`.
#[derive(Clone, Debug)]
pub struct NewPushSubscription {
    pub user: UserId,
    pub endpoint: PushEndpoint,
    pub keys: PushKeys,
}

/// Most rows one [`PushStore::finish_pushes`] call ends.
pub const FINISH_MAX: usize = 256;

/// One outbox row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PushId(pub i64);

/// What a claim asks for.
#[derive(Clone, Copy, Debug)]
pub struct PushClaim {
    /// This claim's token: finishing a row needs it.
    pub lease: uuid::Uuid,
    /// A row is due this long after its notification (`PARLEY_PUSH_DELAY_MS`).
    pub delay: Duration,
    /// How long the claimed rows are this claim's alone.
    pub lease_for: Duration,
    pub limit: u32,
}

/// A claimed push: everything its send needs.
#[derive(Clone, Debug)]
pub struct ClaimedPush {
    pub id: PushId,
    pub subscription: PushSubscriptionId,
    /// As stored: parsed again (against today's allow-list) before a send.
    pub endpoint: String,
    pub p256dh: Vec<u8>,
    pub auth: Vec<u8>,
    /// The notification as it is now (`read` included).
    pub notification: Notification,
    /// The user's unread notifications now.
    pub unread: i64,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// When it became due (first attempt) or its retry was due: lag.
    pub due_at: DateTime<Utc>,
}

#[async_trait]
pub trait PushStore: Send + Sync {
    /// Saves `subscription` and returns its id; the same endpoint saved
    /// again by the same user is the same subscription (its keys replaced).
    /// `NotFound` for an unknown user.
    async fn save_push_subscription(
        &self,
        subscription: NewPushSubscription,
    ) -> Result<PushSubscriptionId, StoreError>;

    /// Deletes `user`'s subscription `id` and its pending pushes; `NotFound`
    /// when there is none of theirs with that id.
    async fn delete_push_subscription(
        &self,
        user: UserId,
        id: PushSubscriptionId,
    ) -> Result<(), StoreError>;

    /// Deletes subscription `id` whoever owns it (its push service said it
    /// is gone); answers whether it existed.
    async fn drop_push_subscription(&self, id: PushSubscriptionId) -> Result<bool, StoreError>;

    /// How many subscriptions `user` has.
    async fn push_subscription_count(&self, user: UserId) -> Result<u64, StoreError>;

    /// Claims at most `claim.limit` due, unclaimed (or lease-expired) rows,
    /// oldest first, for `claim.lease_for`; rows another claim holds are
    /// skipped, never waited for.
    async fn claim_pushes(&self, claim: PushClaim) -> Result<Vec<ClaimedPush>, StoreError>;

    /// Deletes each row `(id, lease)` that claim `lease` still holds (sent,
    /// skipped or given up), at most [`FINISH_MAX`] in one call, and
    /// answers the ids deleted; a row left out lost its claim (another
    /// instance has it).
    async fn finish_pushes(&self, rows: &[(PushId, uuid::Uuid)])
    -> Result<Vec<PushId>, StoreError>;

    /// Frees row `id`, if claim `lease` still holds it, for another attempt
    /// at `at`. `false`: the claim was lost.
    async fn retry_push(
        &self,
        id: PushId,
        lease: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
