//! Opening a [`PgStore`]: build the pool, wait for PostgreSQL, migrate.
//!
//! In a fresh deployment the database often starts after parley, so the
//! first connection is retried with capped exponential backoff and full
//! jitter (instances started together do not retry in lockstep) until
//! `PARLEY_DB_CONNECT_TIMEOUT_S` is spent. The URL holds a password, so it
//! never reaches a log line or an error message.

use super::PgStore;
use crate::config::DatabaseSettings;
use anyhow::{Context, anyhow};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use parley_actors::writer::WRITERS_PER_ARBITER;
use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The first pause between connection attempts; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The advisory lock that serialises migrations when several instances
/// start at once (refinery itself takes no lock). Any constant works as long
/// as it never changes: it spells "parleymg".
const MIGRATION_LOCK: i64 = 0x7061_726c_6579_6d67;

impl PgStore {
    /// Connects to `settings.url`, waiting for the database up to
    /// `settings.connect_timeout_s`, and applies pending migrations.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgStore> {
        let url = settings
            .url
            .as_deref()
            .context("DATABASE_URL is not set: there is no PostgreSQL to connect to")?;
        // The parse error names the bad option, never its value.
        let mut config: tokio_postgres::Config = url
            .parse()
            .context("DATABASE_URL is not a valid PostgreSQL connection URL")?;
        let budget = Duration::from_secs(settings.connect_timeout_s);
        // One connection attempt (or one wait for a pooled connection) may
        // not swallow the whole start-up budget, so a black-holed host is
        // retried; at run time the same bound turns an outage into quick
        // errors (and an open circuit breaker) instead of hung requests.
        let attempt = Duration::from_millis(settings.pool_timeout_ms)
            .min(budget.max(Duration::from_millis(100)));
        config.connect_timeout(attempt);
        if config.get_application_name().is_none() {
            config.application_name("parley");
        }
        let pool = build_pool(config.clone(), settings.pool_size, attempt)?;
        let client = wait_for_database(&pool, budget).await?;
        migrate(client).await?;
        let writer_pools = WriterPools {
            config: WriterPools::planned_per_batch(config),
            timeout: attempt,
            opened: Default::default(),
        };
        Ok(PgStore {
            appends: pool.clone(),
            pool,
            writer_pools: std::sync::Arc::new(writer_pools),
            guard: Default::default(),
            webhook_filter: Default::default(),
        })
    }
}

/// The writers' own pools (see [`PgStore::writer_log`]), kept so that the
/// store's close closes them too.
pub(super) struct WriterPools {
    config: tokio_postgres::Config,
    timeout: Duration,
    opened: std::sync::Mutex<Vec<Pool>>,
}

impl WriterPools {
    /// The writers' sessions plan every statement for its parameters
    /// (`plan_cache_mode`): an append's statements join the batch's arrays
    /// against `room_messages` and `rooms`, and a generic plan, cached
    /// once per connection, is costed on the statistics of that moment. On
    /// a young database it seq-scanned `room_messages` until the next
    /// `ANALYZE`: 4.6 ms of every append at 30,000 messages, growing with
    /// the table (`docs/benchmarks.md`). Planning costs tens of
    /// microseconds; a custom plan also fits a batch of 1 and of 500.
    fn planned_per_batch(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
        let options = match config.get_options() {
            Some(given) => format!("{given} -c plan_cache_mode=force_custom_plan"),
            None => "-c plan_cache_mode=force_custom_plan".to_owned(),
        };
        config.options(&options);
        config
    }

    /// A new pool of [`WRITERS_PER_ARBITER`] connections, none opened yet.
    pub(super) fn open(&self) -> anyhow::Result<Pool> {
        let pool = build_pool(self.config.clone(), WRITERS_PER_ARBITER, self.timeout)?;
        self.opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pool.clone());
        Ok(pool)
    }

    pub(super) fn close(&self) {
        for pool in self.opened.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            pool.close();
        }
    }
}

/// A pool whose every wait is bounded, so a stalled database turns into
/// errors the callers can report instead of requests that hang.
fn build_pool(
    config: tokio_postgres::Config,
    max_size: usize,
    timeout: Duration,
) -> anyhow::Result<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // A connection that died is noticed by the next query on it;
            // checking every checkout with a round trip would cost more.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .context("building the PostgreSQL pool")
}

/// Takes a first connection, retrying until `budget` is spent.
async fn wait_for_database(pool: &Pool, budget: Duration) -> anyhow::Result<Object> {
    let deadline = Instant::now() + budget;
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        let error = match pool.get().await {
            Ok(client) => return Ok(client),
            Err(error) => error,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(anyhow!(error)).with_context(|| {
                format!("PostgreSQL was not reachable within {budget:?} ({attempt} attempts)")
            });
        }
        let pause = rand::thread_rng()
            .gen_range(Duration::ZERO..=backoff)
            .min(left);
        tracing::warn!(
            attempt,
            retry_in_ms = pause.as_millis() as u64,
            error = %error,
            "PostgreSQL not reachable yet; retrying"
        );
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Applies pending migrations under the migration lock.
///
/// The connection is taken out of the pool and closed afterwards: ending
/// the session releases the advisory lock whatever happened, so a failed
/// migration can never leave a locked connection behind in the pool.
async fn migrate(client: Object) -> anyhow::Result<()> {
    let mut client = Object::take(client);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("taking the migration lock")?;
    let report = embedded::migrations::runner()
        .run_async(&mut *client)
        .await
        .context("applying database migrations")?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied database migration");
    }
    Ok(())
}
