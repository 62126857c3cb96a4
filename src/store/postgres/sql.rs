//! The few ways this store talks to PostgreSQL, and how their failures are
//! told apart.
//!
//! Every statement goes through [`query`], [`query_opt`] or [`execute`]:
//! a pooled connection, a statement from that connection's cache (so a hot
//! query is parsed once per connection, not once per call) and positional
//! parameters only. Failures come back as `anyhow` errors that still hold
//! the `tokio_postgres::Error`, so a caller can ask [`unique_violation`] or
//! [`foreign_key_violation`] before handing the error to `StoreError::from`,
//! which asks [`classify`] whether it is an outage.
//!
//! # Outage or refusal
//!
//! Only a database that cannot be reached or cannot serve counts as down
//! (for the circuit breaker, readiness and read retries). A statement the
//! database refused because of what it was given (SQLSTATE class 22, data
//! exception, such as NUL in text; class 23, a constraint) is that one
//! call's failure: counting it as an outage would let one client's bad
//! input open the breaker for everyone.

use anyhow::Context;
use deadpool_postgres::Pool;
use parley_actors::ports::LogError;
use tokio_postgres::Row;
use tokio_postgres::error::{DbError, SqlState};
use tokio_postgres::types::ToSql;

/// Statement parameters as tokio-postgres takes them.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Runs `sql` and returns every row.
pub(super) async fn query(pool: &Pool, sql: &str, params: Params<'_>) -> anyhow::Result<Vec<Row>> {
    let client = pool.get().await.context("taking a pooled connection")?;
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

/// Runs `sql`, which returns at most one row.
pub(super) async fn query_opt(
    pool: &Pool,
    sql: &str,
    params: Params<'_>,
) -> anyhow::Result<Option<Row>> {
    let client = pool.get().await.context("taking a pooled connection")?;
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}

/// Runs `sql` and returns how many rows it touched.
pub(super) async fn execute(pool: &Pool, sql: &str, params: Params<'_>) -> anyhow::Result<u64> {
    let client = pool.get().await.context("taking a pooled connection")?;
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}

/// What a failed statement says about the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Unreachable, overloaded, shutting down or timing out: retry later.
    Outage,
    /// The database refused a value it was given (SQLSTATE class 22): the
    /// caller's input, which parsing should have caught.
    BadData,
    /// Any other refusal (a constraint, a bug in a statement): this call only.
    Refused,
}

/// SQLSTATE classes that mean the server cannot serve: 08 connection
/// exception, 53 insufficient resources, 57 operator intervention (shutdown,
/// statement timeout), 58 system error (I/O).
const OUTAGE_CLASSES: [&str; 4] = ["08", "53", "57", "58"];

/// Tells an outage from a refusal by the causes in `error`'s chain.
pub(crate) fn classify(error: &anyhow::Error) -> Failure {
    for cause in error.chain() {
        if let Some(pg) = cause.downcast_ref::<tokio_postgres::Error>() {
            let Some(db) = pg.as_db_error() else {
                // No SQLSTATE: a closed connection, I/O, a connect timeout.
                return Failure::Outage;
            };
            let code = db.code().code();
            return if OUTAGE_CLASSES.iter().any(|class| code.starts_with(class)) {
                Failure::Outage
            } else if code.starts_with("22") {
                Failure::BadData
            } else {
                Failure::Refused
            };
        }
        if cause.is::<deadpool_postgres::PoolError>()
            || cause.is::<std::io::Error>()
            || cause.is::<tokio::time::error::Elapsed>()
            || cause.is::<crate::infra::breaker::BreakerOpen>()
        {
            return Failure::Outage;
        }
    }
    Failure::Refused
}

/// The database's own report, when it was the database that refused.
fn db_error(error: &anyhow::Error) -> Option<&DbError> {
    error
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::as_db_error)
}

/// The unique constraint (or unique index) a statement ran into, if any.
pub(super) fn unique_violation(error: &anyhow::Error) -> Option<&str> {
    let db = db_error(error)?;
    if *db.code() == SqlState::UNIQUE_VIOLATION {
        db.constraint()
    } else {
        None
    }
}

/// Whether a statement referenced a row that does not exist.
pub(super) fn foreign_key_violation(error: &anyhow::Error) -> bool {
    db_error(error).is_some_and(|db| *db.code() == SqlState::FOREIGN_KEY_VIOLATION)
}

/// Reads one column, naming it when the row does not fit.
pub(super) fn get<'a, T>(row: &'a Row, column: &str) -> anyhow::Result<T>
where
    T: tokio_postgres::types::FromSql<'a>,
{
    row.try_get(column)
        .with_context(|| format!("reading column `{column}`"))
}

/// The actors' port carries a string, not an error chain: flatten the chain
/// (`{:#}`) so the cause survives into their logs.
pub(super) trait LogContext<T> {
    fn log_context(self, doing: &'static str) -> Result<T, LogError>;
}

impl<T, E> LogContext<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn log_context(self, doing: &'static str) -> Result<T, LogError> {
        self.map_err(|e| {
            let e = e.into().context(doing);
            match classify(&e) {
                Failure::Outage => LogError::Unavailable(format!("{e:#}")),
                Failure::BadData | Failure::Refused => LogError::Rejected(format!("{e:#}")),
            }
        })
    }
}
