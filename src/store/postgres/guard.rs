//! What every store operation passes through on its way to PostgreSQL: the
//! `postgres` circuit breaker (fail fast while the database is down), a
//! tracing span (`db.system`, `db.operation`; exported to OTLP when traces
//! are on) and `parley_db_query_duration_seconds{op}`.
//!
//! Only "the database is unavailable" outcomes count against the breaker:
//! a conflict, a missing row or a refused value is the database working
//! (`sql::classify` tells them apart).

use super::PgStore;
use crate::infra::breaker::{Breaker, BreakerOpen};
use crate::store::StoreError;
use parley_actors::ports::LogError;
use prometheus::HistogramVec;
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;

/// The breaker and histogram a [`PgStore`] reports to.
#[derive(Clone)]
pub struct Guard {
    pub breaker: Arc<Breaker>,
    pub durations: Option<HistogramVec>,
}

impl Default for Guard {
    /// A breaker of its own with default thresholds, no metrics (tools and tests).
    fn default() -> Self {
        Self {
            breaker: Arc::new(Breaker::new("postgres", Default::default())),
            durations: None,
        }
    }
}

/// The two error types of the store's ports, as the breaker sees them.
pub(super) trait Outage: Sized {
    fn is_outage(&self) -> bool;
    fn refused(open: BreakerOpen) -> Self;
    fn describe(&self) -> String;
}

impl Outage for StoreError {
    fn is_outage(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
    fn refused(open: BreakerOpen) -> Self {
        StoreError::Unavailable(anyhow::Error::new(open))
    }
    fn describe(&self) -> String {
        StoreError::describe(self)
    }
}

impl Outage for LogError {
    fn is_outage(&self) -> bool {
        LogError::is_outage(self)
    }
    fn refused(open: BreakerOpen) -> Self {
        LogError::Unavailable(open.to_string())
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl PgStore {
    /// [`PgStore::run`] for a read: one retry after a short jittered pause
    /// when the first attempt met an outage (a connection the server
    /// closed, a failover). Reads change nothing, so running one twice is
    /// safe; writes are not retried here (the writers' appends are retried
    /// by clients with the same `client_id`).
    pub(super) async fn run_read<T, E, F, Fut>(&self, op: &'static str, read: F) -> Result<T, E>
    where
        E: Outage,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(op, async {
            match read().await {
                Err(e) if e.is_outage() => {
                    let pause = 10 + rand::random::<u64>() % 40;
                    tracing::debug!(op, error = %e.describe(), pause_ms = pause, "retrying a read");
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    read().await
                }
                other => other,
            }
        })
        .await
    }

    /// Runs one store operation `op` under the breaker, in a span, timed.
    pub(super) async fn run<T, E, F>(&self, op: &'static str, call: F) -> Result<T, E>
    where
        E: Outage,
        F: Future<Output = Result<T, E>>,
    {
        let permit = self.guard.breaker.acquire().map_err(E::refused)?;
        let span = tracing::info_span!(
            "db",
            otel.name = op,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system = "postgresql",
            db.operation = op,
        );
        let started = std::time::Instant::now();
        let outcome = call.instrument(span.clone()).await;
        if let Some(durations) = &self.guard.durations {
            durations
                .with_label_values(&[op])
                .observe(started.elapsed().as_secs_f64());
        }
        match &outcome {
            Err(e) if e.is_outage() => {
                span.record("otel.status_code", "ERROR");
                permit.failure(e.describe());
            }
            _ => permit.success(),
        }
        outcome
    }
}
