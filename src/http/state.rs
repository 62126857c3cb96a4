//! What every handler can reach.

use crate::auth::JwtKeys;
use crate::config::Settings;
use crate::rate_limit::SharedLimiter;
use crate::store::SharedStore;
use parley_actors::supervisor::Engine;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared by all workers of both listeners (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub store: SharedStore,
    pub keys: Arc<JwtKeys>,
    pub limiter: SharedLimiter,
    /// Backoff per account identifier after failed logins.
    pub login_backoff: Arc<crate::login_backoff::LoginBackoff>,
    pub settings: Arc<Settings>,
    pub instance_id: Arc<str>,
    pub lifecycle: Arc<Lifecycle>,
    /// The actor system: rooms, writers, hub, notifier.
    pub engine: Engine,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Circuit breakers by dependency (`postgres`, `redis`).
    pub breakers: crate::breaker::Breakers,
    /// Redis, when `REDIS_URL` is set (several instances).
    pub redis: Option<Arc<crate::redis::Redis>>,
    /// Events for other instances (a no-op without Redis).
    pub bus: Arc<dyn parley_actors::ports::Bus>,
    /// Cached profiles, posts and feed heads.
    pub cache: Arc<crate::cache::Cache>,
    /// Single-use WebSocket tickets (`POST /api/v1/ws-ticket`).
    pub tickets: Arc<crate::ws::ticket::Tickets>,
    /// Concurrent WebSockets per user and per client IP.
    pub conn_caps: Arc<crate::ws::caps::ConnCaps>,
    /// WebSocket publishes per user, over all of the user's connections.
    pub publish_quota: Arc<crate::ws::quota::PublishQuota>,
}

/// Start-up and drain flags the probes report.
#[derive(Default)]
pub struct Lifecycle {
    started: AtomicBool,
    draining: AtomicBool,
    refusing: AtomicBool,
    drained: tokio::sync::OnceCell<crate::drain::DrainReport>,
}

impl Lifecycle {
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn refuse_new_work(&self) {
        self.refusing.store(true, Ordering::SeqCst);
    }

    pub fn refusing_new_work(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }

    /// Runs `drain` the first time; every caller gets its report.
    pub async fn drain_once<F, Fut>(&self, drain: F) -> crate::drain::DrainReport
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = crate::drain::DrainReport>,
    {
        self.drained.get_or_init(drain).await.clone()
    }
}
