//! Web Push (contract 6.3, docs/push.md): who may subscribe what, and the
//! sender that turns the push outbox into requests to push services.
//!
//! The promise: a notification is seen in the app, or pushed once to each
//! of its user's subscriptions, and never pushed once read.
//!
//! - Storing a notification enqueues one outbox row per subscription of its
//!   user, atomically with it (`store::push`): pending pushes survive a
//!   crash.
//! - Each instance runs one sender ([`spawn_sender`]). It claims due rows
//!   (`PARLEY_PUSH_DELAY_MS` after their notification) under a lease, so
//!   two instances never hold the same row, and a crashed instance's rows
//!   are claimed again once its lease ends.
//! - At send time a row is dropped, unsent, if its notification was read
//!   or its user has an open WebSocket on any instance ([`Presence`]).
//! - The push service's answer decides the rest: `201`/`202` done; `5xx`,
//!   `429` or no answer retried with exponential backoff (`Retry-After`
//!   wins when given); `404`/`410` delete the subscription; any other
//!   answer drops the push with a log line.
//! - A row ends with a statement that succeeds only while the claim holds
//!   its lease; finished rows are deleted in groups ([`Finisher`]). The
//!   one way a push goes out twice is a send that outlives
//!   its lease (a process frozen or killed after the push service accepted
//!   it and before the row was deleted): requests time out at a fraction
//!   of the lease to keep that window to crashes alone.

use super::Services;
use crate::config::PushSettings;
use crate::domain::push::{AllowHosts, PushEndpoint, PushKeys};
use crate::domain::{PushSubscriptionId, UserId};
use crate::infra::webpush::address::{self, AddressError};
use crate::infra::webpush::{Recipient, SendOutcome, Urgency, WebPush};
use crate::observability::lifecycle::Lifecycle;
use crate::observability::metrics::PushMetrics;
use crate::store::push::{ClaimedPush, NewPushSubscription, PushClaim};
use crate::store::{SharedStore, StoreError};
use std::sync::Arc;
use std::time::Duration;

mod finisher;
pub use finisher::Finisher;

/// Sends in flight at once per instance. A claim takes at most as many
/// rows as there are free slots, so every claimed row starts its send at
/// once and ends within a third of its lease: a row never waits in this
/// instance while its lease runs out (and another instance takes it too),
/// and a slow push service holds its own slots only. 1,000 pushes a second
/// at 100 ms each need 100 (docs/benchmarks.md).
const CONCURRENT_SENDS: usize = 128;
/// Attempts before a push is given up.
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest wait between two attempts (a `Retry-After` included).
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Whether a user has an open WebSocket on any instance. The WebSocket
/// edge implements it (`ws::caps`), over Redis when there is one.
#[async_trait::async_trait]
pub trait Presence: Send + Sync + 'static {
    async fn is_online(&self, user: UserId) -> bool;
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Address(AddressError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `PARLEY_PUSH_ALLOW_HOSTS` as the endpoint parser takes it.
pub fn allow_hosts(settings: &PushSettings) -> AllowHosts {
    AllowHosts::new(&settings.allow_hosts)
}

/// Saves `user`'s subscription once its host resolves to public addresses
/// (unless allowed); the same endpoint again is the same subscription.
pub async fn subscribe(
    services: &Services,
    user: UserId,
    endpoint: PushEndpoint,
    keys: PushKeys,
) -> Result<PushSubscriptionId, SubscribeError> {
    address::check(&endpoint)
        .await
        .map_err(SubscribeError::Address)?;
    let new = NewPushSubscription {
        user,
        endpoint,
        keys,
    };
    Ok(services.store.save_push_subscription(new).await?)
}

/// Deletes `user`'s subscription `id` (`NotFound` when not theirs).
pub async fn unsubscribe(
    services: &Services,
    user: UserId,
    id: PushSubscriptionId,
) -> Result<(), StoreError> {
    services.store.delete_push_subscription(user, id).await?;
    services
        .metrics
        .push
        .subscriptions_removed
        .with_label_values(&["unsubscribed"])
        .inc();
    Ok(())
}

/// What the sender works with.
pub struct Sender {
    pub store: SharedStore,
    /// Free send slots ([`CONCURRENT_SENDS`]).
    pub slots: Arc<tokio::sync::Semaphore>,
    pub web_push: Arc<WebPush>,
    pub presence: Arc<dyn Presence>,
    /// Deletes finished rows in groups.
    pub finisher: Finisher,
    pub metrics: Arc<crate::observability::metrics::Metrics>,
    pub settings: PushSettings,
}

/// How long one request to a push service may take: well within the lease,
/// so a live instance always finishes (or abandons) a send before another
/// may claim the row. At most 10 s.
pub fn send_timeout(settings: &PushSettings) -> Duration {
    Duration::from_millis(settings.lease_ms / 3).min(Duration::from_secs(10))
}

/// The send slots of one instance.
pub fn send_slots() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(CONCURRENT_SENDS))
}

/// Runs the sender every `PARLEY_PUSH_POLL_MS` (at once again after a full
/// batch) until the instance drains; rows it claimed then wait out their
/// lease for another instance. Never dies of a failed pass: a store error
/// is logged once per outage and the next tick tries again.
pub fn spawn_sender(sender: Sender, lifecycle: Arc<Lifecycle>) {
    let sender = Arc::new(sender);
    let poll = Duration::from_millis(sender.settings.poll_ms);
    actix_web::rt::spawn(async move {
        let mut ticks = tokio::time::interval(poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Logged once per outage, not once per tick.
        let mut failing = false;
        loop {
            ticks.tick().await;
            if lifecycle.draining() {
                return;
            }
            match sender.pass().await {
                Ok(claimed) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("claiming due pushes works again");
                    }
                    // It filled the free slots: more may be due.
                    if claimed > 0 && sender.slots.available_permits() >= CONCURRENT_SENDS / 2 {
                        ticks.reset_immediately();
                    }
                }
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(error = %error.describe(), "could not claim due pushes; retrying every tick");
                }
                Err(_) => {}
            }
        }
    });
}

impl Sender {
    /// Claims as many due rows as there are free send slots and starts a
    /// task for each; returns how many it claimed.
    pub async fn pass(self: &Arc<Self>) -> Result<usize, StoreError> {
        // Claims wait for half the slots: a claim is one statement for many
        // rows, not one per slot freed.
        let free = self.slots.available_permits();
        if free < CONCURRENT_SENDS / 2 {
            return Ok(0);
        }
        let claim = PushClaim {
            lease: uuid::Uuid::new_v4(),
            delay: Duration::from_millis(self.settings.delay_ms),
            lease_for: Duration::from_millis(self.settings.lease_ms),
            limit: u32::try_from(free).unwrap_or(u32::MAX),
        };
        let claimed = self.store.claim_pushes(claim).await?;
        let lag = claimed
            .iter()
            .map(|p| (chrono::Utc::now() - p.due_at).num_milliseconds())
            .max()
            .unwrap_or(0);
        self.push_metrics().lag.set(lag.max(0) as f64 / 1000.0);
        let count = claimed.len();
        for push in claimed {
            // Only this task takes slots, and it claimed no more than were
            // free: the permit is there.
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                break; // unreachable; the row's lease ends and it is retried
            };
            let sender = self.clone();
            actix_web::rt::spawn(async move {
                sender.handle(push, claim.lease).await;
                drop(slot);
            });
        }
        Ok(count)
    }

    fn push_metrics(&self) -> &PushMetrics {
        &self.metrics.push
    }

    /// One claimed row, from the checks to its end.
    async fn handle(&self, push: ClaimedPush, lease: uuid::Uuid) {
        if push.notification.read {
            return self.finish(&push, lease, "skipped_read").await;
        }
        if self.presence.is_online(push.notification.user).await {
            return self.finish(&push, lease, "skipped_online").await;
        }
        let sent = self.send(&push).await;
        if let Err(error) = self.settle(&push, lease, sent).await {
            // The row stays claimed; its lease ends and it is tried again.
            tracing::warn!(error = %error.describe(), push = push.id.0, "could not settle a push");
        }
    }

    async fn send(&self, push: &ClaimedPush) -> SendOutcome {
        // Parsed against today's allow-list: a host taken off it is no
        // longer sent to.
        let endpoint = match PushEndpoint::parse(&push.endpoint, &allow_hosts(&self.settings)) {
            Ok(endpoint) => endpoint,
            Err(why) => {
                return SendOutcome::Rejected(format!("endpoint no longer admitted: {why}"));
            }
        };
        let recipient = Recipient {
            endpoint: &endpoint,
            p256dh: &push.p256dh,
            auth: &push.auth,
        };
        let message = payload(push);
        let metrics = self.push_metrics();
        let started = std::time::Instant::now();
        metrics.in_flight.inc();
        let sent = self
            .web_push
            .send(
                &recipient,
                message.as_bytes(),
                urgency(&push.notification.kind),
            )
            .await;
        metrics.in_flight.dec();
        metrics
            .send_duration
            .observe(started.elapsed().as_secs_f64());
        sent
    }

    /// Ends the row as the push service's answer says.
    async fn settle(
        &self,
        push: &ClaimedPush,
        lease: uuid::Uuid,
        sent: SendOutcome,
    ) -> Result<(), StoreError> {
        match sent {
            SendOutcome::Delivered => {
                self.finish(push, lease, "delivered").await;
                Ok(())
            }
            SendOutcome::Gone => {
                if self.store.drop_push_subscription(push.subscription).await? {
                    self.push_metrics()
                        .subscriptions_removed
                        .with_label_values(&["gone"])
                        .inc();
                }
                self.count("gone");
                tracing::info!(subscription = %push.subscription, "push subscription gone; removed");
                Ok(())
            }
            SendOutcome::Rejected(reason) => {
                tracing::warn!(%reason, subscription = %push.subscription, "push refused; dropped");
                self.finish(push, lease, "rejected").await;
                Ok(())
            }
            SendOutcome::Retry { reason, .. } if push.attempts >= MAX_ATTEMPTS => {
                tracing::warn!(%reason, attempts = push.attempts, "push failed too often; given up");
                self.finish(push, lease, "gave_up").await;
                Ok(())
            }
            SendOutcome::Retry { reason, after } => {
                let wait = backoff(&self.settings, push.attempts, after);
                tracing::info!(%reason, attempts = push.attempts, wait_ms = wait.as_millis() as u64, "push will be retried");
                let at = chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                if self.store.retry_push(push.id, lease, at).await? {
                    self.count("retried");
                } else {
                    self.count("lost_claim");
                }
                Ok(())
            }
        }
    }

    /// Ends the row (if the claim still holds it) with the next group of
    /// the [`Finisher`], counting `outcome`.
    async fn finish(&self, push: &ClaimedPush, lease: uuid::Uuid, outcome: &'static str) {
        self.finisher.finish(push.id, lease, outcome).await;
    }

    fn count(&self, outcome: &str) {
        self.push_metrics()
            .sends
            .with_label_values(&[outcome])
            .inc();
    }
}

/// The push message (contract 6.3): `{id, kind, payload, ts, unread}`.
pub fn payload(push: &ClaimedPush) -> String {
    let n = &push.notification;
    serde_json::json!({
        "id": n.id, "kind": n.kind, "payload": n.payload, "ts": n.created_at,
        "unread": push.unread,
    })
    .to_string()
}

/// Someone writing to you is worth waking a device for; the rest may wait
/// for it to wake.
fn urgency(kind: &str) -> Urgency {
    match kind {
        "direct_message" | "mention" => Urgency::High,
        _ => Urgency::Normal,
    }
}

/// The wait before attempt `attempts + 1`: the push service's
/// `Retry-After` when it gave one, else `PARLEY_PUSH_RETRY_BASE_MS`
/// doubled per attempt; at most an hour either way.
pub fn backoff(settings: &PushSettings, attempts: u32, retry_after: Option<Duration>) -> Duration {
    let exponential = Duration::from_millis(settings.retry_base_ms)
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    retry_after.unwrap_or(exponential).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_retry_after_wins() {
        let settings = PushSettings {
            retry_base_ms: 100,
            ..PushSettings::default()
        };
        assert_eq!(backoff(&settings, 1, None), Duration::from_millis(100));
        assert_eq!(backoff(&settings, 3, None), Duration::from_millis(400));
        assert_eq!(backoff(&settings, 40, None), MAX_BACKOFF);
        let said = Some(Duration::from_secs(7));
        assert_eq!(backoff(&settings, 3, said), Duration::from_secs(7));
    }
}
