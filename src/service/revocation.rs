//! Ending logins everywhere (contract 6.2): `POST /auth/logout-all` and a
//! reused refresh token revoke logins; every instance then refuses their
//! access tokens (REST and WebSocket upgrades, see
//! [`crate::auth::Revocations`]) and closes the WebSockets opened with them.
//!
//! A revocation is durable first (the refresh tokens and its record, in one
//! write), then enforced on this instance at once, then announced on the
//! bus. The bus is fast but may lose a message (Redis down or restarting),
//! so every instance also polls the store about every second, and loads
//! the recent revocations at start-up: a revoked token never works again on
//! any instance. Enforcing is idempotent, so the three paths may deliver
//! the same revocation in any order.

use super::Services;
use crate::auth::Revocations;
use crate::auth::revocation::{Kind, horizon};
use crate::observability::metrics::Metrics;
use crate::store::{Revocation, StoreError};
use chrono::{DateTime, Utc};
use parley_actors::bus::RevocationSink;
use parley_actors::hub::messages::{EndSessions, Ended};
use parley_actors::ports::BusEvent;
use std::sync::Arc;
use std::time::Duration;

/// How often every instance asks the store for new revocations: the bound
/// on how late one arrives when its bus message was lost.
pub const POLL_EVERY: Duration = Duration::from_millis(1000);
/// How far back each poll looks again: a revocation recorded by a
/// transaction that committed after a later one was already read.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(5);
/// Revocations read per page, and pages per poll at most.
const PAGE: u32 = 500;
const PAGES_PER_POLL: usize = 20;

/// Where an instance first heard of a revocation (a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Local,
    Bus,
    Poll,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Bus => "bus",
            Source::Poll => "poll",
        }
    }
}

/// Revokes the logins `revocation` names on every instance.
pub async fn revoke(services: &Services, revocation: Revocation) -> Result<(), StoreError> {
    services.store.revoke_sessions(&revocation).await?;
    enforce(services, &revocation, Source::Local);
    services.bus.publish(BusEvent::EndSessions {
        user: revocation.user,
        ended: ended(&revocation),
    });
    Ok(())
}

/// Refuses the revoked logins' tokens here and closes their local
/// WebSockets, unless this instance already did.
fn enforce(services: &Services, revocation: &Revocation, source: Source) {
    if refuse(&services.revocations, &services.metrics, revocation, source) {
        services.engine.hub.do_send(EndSessions {
            user: revocation.user,
            ended: ended(revocation),
        });
    }
}

/// Adds `revocation` to what this instance refuses; `false` when known.
fn refuse(
    revocations: &Revocations,
    metrics: &Metrics,
    revocation: &Revocation,
    source: Source,
) -> bool {
    let new = revocations.apply(revocation);
    if new {
        let kind = Kind::of(revocation).label();
        metrics
            .revocations_applied
            .with_label_values(&[kind, source.label()])
            .inc();
        tracing::info!(user = %revocation.user, kind, source = source.label(), "login revoked");
    }
    new
}

/// The engine's terms for the sessions a revocation ends.
fn ended(revocation: &Revocation) -> Ended {
    match revocation.family {
        None => Ended::BeganBefore(revocation.at.timestamp_millis()),
        Some(family) => Ended::Family(family),
    }
}

/// What the bus inbox calls for a revocation from another instance (the
/// engine then closes the sessions itself).
pub fn bus_sink(revocations: Arc<Revocations>, metrics: Arc<Metrics>) -> RevocationSink {
    Arc::new(move |user, ended| {
        let (family, at) = match ended {
            Ended::BeganBefore(ms) => (None, DateTime::from_timestamp_millis(ms)),
            // When a family was revoked only bounds how long it is kept.
            Ended::Family(family) => (Some(family), Some(Utc::now())),
        };
        let Some(at) = at else {
            tracing::warn!(%user, "ignoring a revocation with an impossible instant");
            return;
        };
        let revocation = Revocation { user, family, at };
        refuse(&revocations, &metrics, &revocation, Source::Bus);
    })
}

/// Loads the revocations recent enough to matter (before the instance
/// serves: a token revoked while it was down is refused from its first
/// request), then polls for new ones every [`POLL_EVERY`] for the life of
/// the process.
pub async fn start_poller(services: Services) {
    let ttl = services.settings.auth.access_ttl_s;
    let cursor = catch_up(&services, Utc::now() - horizon(ttl)).await;
    tokio::spawn(async move {
        let mut cursor = cursor;
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            cursor = catch_up(&services, cursor).await;
            services.revocations.forget_expired(Utc::now());
        }
    });
}

/// One poll; the cursor it leaves (unchanged when the store failed: the
/// next tick retries, and the bus still carries new revocations).
async fn catch_up(services: &Services, cursor: DateTime<Utc>) -> DateTime<Utc> {
    match poll(services, cursor).await {
        Ok(next) => next,
        Err(error) => {
            tracing::debug!(error = %error.describe(), "polling revocations failed");
            cursor
        }
    }
}

/// Enforces every revocation recorded after `cursor` (less the overlap);
/// returns the new cursor.
async fn poll(services: &Services, cursor: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
    let mut after = cursor - OVERLAP;
    let mut newest = cursor;
    for _ in 0..PAGES_PER_POLL {
        let page = services.store.revocations_since(after, PAGE).await?;
        for recorded in &page {
            enforce(services, &recorded.revocation, Source::Poll);
            newest = newest.max(recorded.recorded_at);
            after = recorded.recorded_at;
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    Ok(newest)
}
