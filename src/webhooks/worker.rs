//! The delivery worker: one per instance, started by the composition root.
//!
//! It claims due outbox rows, as many as it has free delivery slots
//! (`PARLEY_WEBHOOK_CONCURRENCY`), and sends each in its own task with a
//! timeout, so a slow endpoint holds only its own slots and never the
//! publish path (which only ever writes the outbox). A claim is a lease
//! (`PARLEY_WEBHOOK_LEASE_MS`): a row another instance claimed is not due
//! again until it lapses, which is also how a crashed instance's deliveries
//! come back. Every attempt is logged; a failure is retried after an
//! exponential, capped, jittered pause, and enough consecutive failures
//! over enough time disable the endpoint.

use super::{Webhooks, signature};
use crate::config::WebhookSettings;
use crate::domain::webhook::{EventTypes, OutboxEvent};
use crate::observability::lifecycle::Lifecycle;
use crate::observability::metrics::WebhookMetrics;
use crate::store::integration::{Attempt, Claimed, OnFailure, Outcome};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Most rows claimed by one statement.
const CLAIM_MAX: u32 = 100;

/// Longest error text kept in the delivery log.
const ERROR_CHARS: usize = 300;

/// What the worker works with.
pub struct Worker {
    pub webhooks: Arc<Webhooks>,
    pub settings: WebhookSettings,
    pub metrics: Arc<crate::observability::metrics::Metrics>,
    pub lifecycle: Arc<Lifecycle>,
}

impl Worker {
    /// Starts the loop and its housekeeping on the current runtime. Both
    /// run until the instance stops claiming work (the drain).
    pub fn spawn(self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(self.settings.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("parley-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let worker = Arc::new(self);
        actix_web::rt::spawn(worker.clone().housekeeping());
        actix_web::rt::spawn(worker.run(client));
        Ok(())
    }

    /// The claim loop. Never returns but at the drain: a failed claim is
    /// logged and tried again at the next poll.
    async fn run(self: Arc<Self>, client: reqwest::Client) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency as usize));
        let poll = Duration::from_millis(self.settings.poll_ms);
        let lease = Duration::from_millis(self.settings.lease_ms);
        loop {
            let _ = tokio::time::timeout(poll, self.webhooks.wake.notified()).await;
            if self.lifecycle.draining() {
                return;
            }
            // No enabled endpoint (the filter is their event types): nothing
            // is claimable, and the database is not asked.
            if self.idle() {
                continue;
            }
            loop {
                let free = slots.available_permits() as u32;
                if free == 0 {
                    break;
                }
                let claimed = match self
                    .webhooks
                    .store
                    .claim_webhooks(free.min(CLAIM_MAX), lease)
                    .await
                {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::warn!(error = %error.describe(), "could not claim webhook deliveries");
                        break;
                    }
                };
                let full = claimed.len() as u32 == free.min(CLAIM_MAX);
                for row in claimed {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        break; // cannot happen: claimed no more than were free
                    };
                    let (worker, client) = (self.clone(), client.clone());
                    actix_web::rt::spawn(async move {
                        worker.deliver(&client, row).await;
                        drop(slot);
                        worker.webhooks.nudge();
                    });
                }
                if !full {
                    break;
                }
            }
        }
    }

    fn idle(&self) -> bool {
        self.webhooks.store.webhook_filter().get() == EventTypes::default()
    }

    /// One attempt of one row, recorded.
    async fn deliver(&self, client: &reqwest::Client, row: Claimed) {
        let started = Instant::now();
        let attempt = send(client, &row).await;
        let took = started.elapsed();
        let attempt = Attempt {
            duration_ms: u32::try_from(took.as_millis()).unwrap_or(u32::MAX),
            ..attempt
        };
        let metrics: &WebhookMetrics = &self.metrics.webhooks;
        metrics
            .deliveries
            .with_label_values(&[attempt.outcome.as_str()])
            .inc();
        metrics.duration.observe(took.as_secs_f64());
        let on_failure = OnFailure {
            retry_in: backoff(&self.settings, row.attempt),
            disable_after: self.settings.disable_after,
            window: Duration::from_secs(self.settings.disable_window_s),
        };
        match self
            .webhooks
            .store
            .finish_webhook(&row, &attempt, on_failure)
            .await
        {
            Ok(true) => {
                metrics.endpoints_disabled.inc();
                tracing::warn!(endpoint = %row.endpoint, "webhook endpoint disabled after repeated failure");
            }
            Ok(false) => {}
            // The lease runs out and the row is tried again: at least once.
            Err(error) => {
                tracing::warn!(error = %error.describe(), "could not record a webhook attempt")
            }
        }
    }

    /// Every `PARLEY_WEBHOOK_REFRESH_MS`: re-reads the filter (endpoints
    /// changed on other instances), the outbox lag, and prunes the log;
    /// only the first while no endpoint is enabled.
    async fn housekeeping(self: Arc<Self>) {
        let every = Duration::from_millis(self.settings.refresh_ms);
        let keep = chrono::Duration::days(i64::from(self.settings.log_days));
        let store = &self.webhooks.store;
        loop {
            tokio::time::sleep(every).await;
            if self.lifecycle.draining() {
                return;
            }
            if let Err(error) = store.refresh_webhook_filter().await {
                tracing::warn!(error = %error.describe(), "could not refresh the webhook filter");
            }
            if self.idle() {
                self.metrics.webhooks.outbox_lag.set(0.0);
                continue;
            }
            if let Ok(oldest) = store.webhook_outbox_oldest().await {
                let lag = oldest.map_or(0.0, |t| {
                    (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
                });
                self.metrics.webhooks.outbox_lag.set(lag);
            }
            if let Err(error) = store
                .prune_webhook_deliveries(chrono::Utc::now() - keep)
                .await
            {
                tracing::warn!(error = %error.describe(), "could not prune the webhook delivery log");
            }
        }
    }
}

/// Posts one row with the Standard Webhooks headers.
async fn send(client: &reqwest::Client, row: &Claimed) -> Attempt {
    let id = OutboxEvent::webhook_id(row.event);
    let timestamp = chrono::Utc::now().timestamp();
    let failed = |outcome, status, error: String| Attempt {
        outcome,
        status,
        error: Some(error.chars().take(ERROR_CHARS).collect()),
        duration_ms: 0,
    };
    let Some(signature) = signature::sign(&row.secret, &id, timestamp, &row.body) else {
        return failed(
            Outcome::Error,
            None,
            "the endpoint's secret is malformed".into(),
        );
    };
    let sent = client
        .post(&row.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(row.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Attempt {
            outcome: Outcome::Delivered,
            status: Some(response.status().as_u16()),
            error: None,
            duration_ms: 0,
        },
        Ok(response) => {
            let status = response.status();
            failed(
                Outcome::Failed,
                Some(status.as_u16()),
                format!("answered {status}"),
            )
        }
        Err(error) => failed(Outcome::Error, None, describe(&error)),
    }
}

/// A send error with its causes (reqwest's own text is only the top).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The pause after failed attempt number `attempt` (1 for the first):
/// base × 2^(attempt − 1), capped, then scaled by a random 50–100 % so
/// endpoints coming back from an outage are not hit in lockstep.
pub fn backoff(settings: &WebhookSettings, attempt: i32) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(32);
    let pause = settings
        .retry_base_ms
        .saturating_mul(1u64 << doublings)
        .min(settings.retry_max_ms);
    let jitter = 0.5 + rand::random::<f64>() / 2.0;
    Duration::from_millis((pause as f64 * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_up_to_the_cap_with_jitter() {
        let settings = WebhookSettings {
            retry_base_ms: 1_000,
            retry_max_ms: 10_000,
            ..WebhookSettings::default()
        };
        for (attempt, full) in [
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (5, 10_000),
            (60, 10_000),
        ] {
            let pause = backoff(&settings, attempt).as_millis() as u64;
            assert!((full / 2..=full).contains(&pause), "{attempt}: {pause}");
        }
    }
}
