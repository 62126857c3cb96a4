//! Webhook endpoints, the outbox and the delivery log on PostgreSQL (see
//! `migrations/V2026120601__webhooks.sql`), and the [`WebhookStore`] impl.
//!
//! The outbox is written by [`ENQUEUE`], one row per subscribing enabled
//! endpoint; the append path runs the same statement inside its batch's
//! transaction ([`enqueue_in`]). The claim takes due rows with `FOR UPDATE
//! SKIP LOCKED` and moves their `due_at` past the lease in the same
//! statement, so a row is held by one instance at a time, across commits.

use super::{PgStore, sql};
use crate::domain::Limit;
use crate::domain::webhook::{EventFilter, EventType, EventTypes, OutboxEvent};
use crate::store::StoreError;
use crate::store::integration::{
    Attempt, Claimed, DeliveryRecord, Endpoint, NewEndpoint, OnFailure, Outcome, WebhookStore,
};
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool, Transaction};
use std::time::Duration;
use tokio_postgres::Row;

const ENDPOINT_COLUMNS: &str =
    "id, url, events, secret, enabled, failures, failing_since, disabled_at, created_at";

/// Fans events out to the enabled endpoints subscribing to their types.
pub(super) const ENQUEUE: &str = "\
    INSERT INTO webhook_outbox (endpoint_id, event_id, event_type, body) \
    SELECT e.id, o.event_id, o.event_type, o.body FROM webhook_endpoints e \
    JOIN UNNEST($1::uuid[], $2::text[], $3::text[]) AS o(event_id, event_type, body) \
      ON o.event_type = ANY (e.events) \
    WHERE e.enabled ON CONFLICT DO NOTHING";

/// Due rows of enabled endpoints, leased for one attempt each.
const CLAIM: &str = "\
    WITH due AS ( \
        SELECT o.endpoint_id, o.event_id FROM webhook_outbox o \
        JOIN webhook_endpoints e ON e.id = o.endpoint_id \
        WHERE o.due_at <= now() AND e.enabled ORDER BY o.due_at LIMIT $1 \
        FOR UPDATE OF o SKIP LOCKED) \
    UPDATE webhook_outbox o SET due_at = now() + make_interval(secs => $2), \
        attempts = o.attempts + 1 \
    FROM due, webhook_endpoints e \
    WHERE o.endpoint_id = due.endpoint_id AND o.event_id = due.event_id AND e.id = o.endpoint_id \
    RETURNING o.endpoint_id, o.event_id, o.event_type, o.body, o.attempts, e.url, e.secret";

const LOG: &str = "\
    INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, attempt, status, \
        outcome, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The outbox rows of `events` in the transaction on `client`.
pub(super) async fn enqueue_in(
    client: &impl GenericClient,
    events: &[OutboxEvent],
) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let statement = client.prepare_cached(ENQUEUE).await?;
    let rows = OutboxRows::of(events);
    client
        .execute(&statement, &rows.params())
        .await
        .context("writing webhook outbox rows")?;
    Ok(())
}

/// Events as [`ENQUEUE`]'s parameters (the append sends the statement
/// itself, in a pipeline that must not wait for a prepare).
pub(super) struct OutboxRows<'a> {
    ids: Vec<uuid::Uuid>,
    types: Vec<&'a str>,
    bodies: Vec<&'a str>,
}

impl<'a> OutboxRows<'a> {
    pub(super) fn of(events: &'a [OutboxEvent]) -> Self {
        Self {
            ids: events.iter().map(|e| e.id).collect(),
            types: events.iter().map(|e| e.kind.as_str()).collect(),
            bodies: events.iter().map(|e| e.body.as_str()).collect(),
        }
    }

    pub(super) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 3] {
        [&self.ids, &self.types, &self.bodies]
    }
}

fn endpoint(row: &Row) -> anyhow::Result<Endpoint> {
    let events: Vec<String> = sql::get(row, "events")?;
    Ok(Endpoint {
        id: sql::get(row, "id")?,
        url: sql::get(row, "url")?,
        // Stored by this server, so every name parses; a stray one is skipped.
        events: events.iter().filter_map(|e| EventType::parse(e).ok()).fold(
            EventTypes::default(),
            |mut set, k| {
                set.insert(k);
                set
            },
        ),
        secret: sql::get(row, "secret")?,
        enabled: sql::get(row, "enabled")?,
        failures: sql::get(row, "failures")?,
        failing_since: sql::get(row, "failing_since")?,
        disabled_at: sql::get(row, "disabled_at")?,
        created_at: sql::get(row, "created_at")?,
    })
}

fn delivery(row: &Row) -> anyhow::Result<DeliveryRecord> {
    let status: Option<i32> = sql::get(row, "status")?;
    let duration: i32 = sql::get(row, "duration_ms")?;
    Ok(DeliveryRecord {
        id: sql::get(row, "id")?,
        event_id: sql::get(row, "event_id")?,
        event_type: sql::get(row, "event_type")?,
        attempt: sql::get(row, "attempt")?,
        status: status.and_then(|s| u16::try_from(s).ok()),
        outcome: Outcome::parse(&sql::get::<String>(row, "outcome")?),
        error: sql::get(row, "error")?,
        duration_ms: u32::try_from(duration).unwrap_or(0),
        at: sql::get(row, "at")?,
    })
}

fn claimed(row: &Row) -> anyhow::Result<Claimed> {
    Ok(Claimed {
        endpoint: sql::get(row, "endpoint_id")?,
        event: sql::get(row, "event_id")?,
        event_type: sql::get(row, "event_type")?,
        body: sql::get(row, "body")?,
        attempt: sql::get(row, "attempts")?,
        url: sql::get(row, "url")?,
        secret: sql::get(row, "secret")?,
    })
}

async fn filter_of(pool: &Pool) -> Result<EventTypes, StoreError> {
    const ENABLED: &str =
        "SELECT DISTINCT unnest(events) AS event FROM webhook_endpoints WHERE enabled";
    let rows = sql::query(pool, ENABLED, &[])
        .await
        .context("reading subscribed webhook events")?;
    let mut set = EventTypes::default();
    for row in &rows {
        if let Ok(kind) = EventType::parse(&sql::get::<String>(row, "event")?) {
            set.insert(kind);
        }
    }
    Ok(set)
}

/// Records an attempt and its effect on the row and the endpoint, in one
/// transaction: the log line never exists without its outcome applied.
async fn finish(
    pool: &Pool,
    claimed: &Claimed,
    attempt: &Attempt,
    on_failure: OnFailure,
) -> anyhow::Result<bool> {
    let mut client = pool.get().await.context("taking a pooled connection")?;
    let tx = client.transaction().await?;
    let status = attempt.status.map(i32::from);
    let duration = i32::try_from(attempt.duration_ms).unwrap_or(i32::MAX);
    let line: sql::Params = &[
        &uuid::Uuid::now_v7(),
        &claimed.endpoint,
        &claimed.event,
        &claimed.event_type,
        &claimed.attempt,
        &status,
        &attempt.outcome.as_str(),
        &attempt.error,
        &duration,
    ];
    tx.execute(LOG, line)
        .await
        .context("logging a webhook delivery")?;
    let disabled = if attempt.outcome == Outcome::Delivered {
        delivered(&tx, claimed).await?;
        false
    } else {
        failed(&tx, claimed, on_failure).await?
    };
    tx.commit().await.context("committing a webhook attempt")?;
    Ok(disabled)
}

/// The row leaves the outbox; the endpoint's failure run ends.
async fn delivered(tx: &Transaction<'_>, claimed: &Claimed) -> anyhow::Result<()> {
    const DONE: &str = "\
        WITH done AS (DELETE FROM webhook_outbox WHERE endpoint_id = $1 AND event_id = $2) \
        UPDATE webhook_endpoints SET failures = 0, failing_since = NULL \
        WHERE id = $1 AND failures > 0";
    tx.execute(DONE, &[&claimed.endpoint, &claimed.event])
        .await
        .context("completing a webhook delivery")?;
    Ok(())
}

/// The row is due again after the pause; the endpoint counts the failure
/// and is disabled once the run is long enough. Answers whether it was.
async fn failed(
    tx: &Transaction<'_>,
    claimed: &Claimed,
    on_failure: OnFailure,
) -> anyhow::Result<bool> {
    const RETRY: &str = "\
        UPDATE webhook_outbox SET due_at = now() + make_interval(secs => $3) \
        WHERE endpoint_id = $1 AND event_id = $2";
    const COUNT: &str = "\
        WITH give_up AS ( \
            SELECT e.failures + 1 >= $2 \
                AND COALESCE(e.failing_since, now()) <= now() - make_interval(secs => $3) AS stop \
            FROM webhook_endpoints e WHERE e.id = $1) \
        UPDATE webhook_endpoints e SET failures = e.failures + 1, \
            failing_since = COALESCE(e.failing_since, now()), \
            enabled = NOT give_up.stop, \
            disabled_at = CASE WHEN give_up.stop THEN now() END \
        FROM give_up WHERE e.id = $1 AND e.enabled RETURNING e.enabled";
    let retry = on_failure.retry_in.as_secs_f64();
    tx.execute(RETRY, &[&claimed.endpoint, &claimed.event, &retry])
        .await
        .context("scheduling a webhook retry")?;
    let after = i32::try_from(on_failure.disable_after).unwrap_or(i32::MAX);
    let window = on_failure.window.as_secs_f64();
    let row = tx
        .query_opt(COUNT, &[&claimed.endpoint, &after, &window])
        .await
        .context("counting a webhook failure")?;
    Ok(match row {
        Some(row) => !sql::get::<bool>(&row, "enabled")?,
        None => false,
    })
}

#[async_trait]
impl WebhookStore for PgStore {
    fn webhook_filter(&self) -> &EventFilter {
        &self.webhook_filter
    }

    async fn refresh_webhook_filter(&self) -> Result<(), StoreError> {
        let set = self
            .run_read("webhook_filter", || filter_of(&self.pool))
            .await?;
        self.webhook_filter.set(set);
        Ok(())
    }

    async fn create_webhook(&self, new: NewEndpoint) -> Result<Endpoint, StoreError> {
        let insert = format!(
            "INSERT INTO webhook_endpoints (id, url, events, secret) VALUES ($1, $2, $3, $4) \
             RETURNING {ENDPOINT_COLUMNS}"
        );
        let id = uuid::Uuid::now_v7();
        let events = new.events.names();
        let created = self
            .run("create_webhook", async {
                let params: sql::Params = &[&id, &new.url.as_str(), &events, &new.secret];
                let row = sql::query_opt(&self.pool, &insert, params)
                    .await
                    .context("creating a webhook endpoint")?
                    .context("the insert returned no row")?;
                Ok::<_, StoreError>(endpoint(&row)?)
            })
            .await?;
        self.refresh_webhook_filter().await?;
        Ok(created)
    }

    async fn webhooks(&self) -> Result<Vec<Endpoint>, StoreError> {
        let select = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id");
        self.run_read("webhooks", || async {
            let rows = sql::query(&self.pool, &select, &[])
                .await
                .context("listing webhook endpoints")?;
            Ok::<_, StoreError>(rows.iter().map(endpoint).collect::<anyhow::Result<_>>()?)
        })
        .await
    }

    async fn webhook(&self, id: uuid::Uuid) -> Result<Option<Endpoint>, StoreError> {
        let select = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        self.run_read("webhook", || async {
            let row = sql::query_opt(&self.pool, &select, &[&id])
                .await
                .context("reading a webhook endpoint")?;
            Ok::<_, StoreError>(row.as_ref().map(endpoint).transpose()?)
        })
        .await
    }

    async fn delete_webhook(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        let deleted = self
            .run("delete_webhook", async {
                let sql = "DELETE FROM webhook_endpoints WHERE id = $1";
                Ok::<_, StoreError>(sql::execute(&self.pool, sql, &[&id]).await?)
            })
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        self.refresh_webhook_filter().await
    }

    async fn enable_webhook(&self, id: uuid::Uuid) -> Result<Endpoint, StoreError> {
        let update = format!(
            "UPDATE webhook_endpoints SET enabled = true, failures = 0, failing_since = NULL, \
             disabled_at = NULL WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
        );
        let row = self
            .run("enable_webhook", async {
                Ok::<_, StoreError>(
                    sql::query_opt(&self.pool, &update, &[&id])
                        .await
                        .context("enabling a webhook endpoint")?,
                )
            })
            .await?
            .ok_or(StoreError::NotFound)?;
        self.refresh_webhook_filter().await?;
        Ok(endpoint(&row)?)
    }

    async fn webhook_deliveries(
        &self,
        endpoint: uuid::Uuid,
        before: Option<uuid::Uuid>,
        limit: Limit,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        const PAGE: &str = "SELECT id, event_id, event_type, attempt, status, outcome, error, \
                            duration_ms, at FROM webhook_deliveries WHERE endpoint_id = $1 \
                            AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";
        self.run_read("webhook_deliveries", || async {
            let limit = i64::from(limit.get());
            let rows = sql::query(&self.pool, PAGE, &[&endpoint, &before, &limit])
                .await
                .context("reading a webhook delivery log")?;
            Ok::<_, StoreError>(rows.iter().map(delivery).collect::<anyhow::Result<_>>()?)
        })
        .await
    }

    async fn enqueue_webhooks(&self, events: &[OutboxEvent]) -> Result<(), StoreError> {
        self.run("enqueue_webhooks", async {
            let client = self
                .pool
                .get()
                .await
                .context("taking a pooled connection")?;
            enqueue_in(&client, events).await?;
            Ok::<_, StoreError>(())
        })
        .await
    }

    async fn claim_webhooks(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.run("claim_webhooks", async {
            let params: sql::Params = &[&i64::from(limit), &lease.as_secs_f64()];
            let rows = sql::query(&self.pool, CLAIM, params)
                .await
                .context("claiming webhook deliveries")?;
            Ok::<_, StoreError>(rows.iter().map(claimed).collect::<anyhow::Result<_>>()?)
        })
        .await
    }

    async fn finish_webhook(
        &self,
        claimed: &Claimed,
        attempt: &Attempt,
        on_failure: OnFailure,
    ) -> Result<bool, StoreError> {
        let disabled = self
            .run("finish_webhook", async {
                Ok::<_, StoreError>(finish(&self.pool, claimed, attempt, on_failure).await?)
            })
            .await?;
        if disabled {
            self.refresh_webhook_filter().await?;
        }
        Ok(disabled)
    }

    async fn webhook_outbox_oldest(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        const OLDEST: &str = "SELECT min(o.created_at) AS oldest FROM webhook_outbox o \
                              JOIN webhook_endpoints e ON e.id = o.endpoint_id WHERE e.enabled";
        self.run_read("webhook_outbox_oldest", || async {
            let row = sql::query_opt(&self.pool, OLDEST, &[])
                .await
                .context("reading the webhook outbox's age")?;
            Ok::<_, StoreError>(match row {
                Some(row) => sql::get(&row, "oldest")?,
                None => None,
            })
        })
        .await
    }

    async fn prune_webhook_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.run("prune_webhook_deliveries", async {
            let sql = "DELETE FROM webhook_deliveries WHERE at < $1";
            Ok::<_, StoreError>(sql::execute(&self.pool, sql, &[&before]).await?)
        })
        .await
    }
}
