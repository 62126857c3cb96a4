//! The few ways this store talks to PostgreSQL, and how their failures are
//! told apart.
//!
//! Every statement goes through [`query`], [`query_opt`] or [`execute`]:
//! a pooled connection, a statement from that connection's cache (so a hot
//! query is parsed once per connection, not once per call) and positional
//! parameters only. Failures come back as `anyhow` errors that still hold
//! the `tokio_postgres::Error`, so a caller can ask [`unique_violation`] or
//! [`foreign_key_violation`] before giving up with `StoreError::Unavailable`.

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
        self.map_err(|e| LogError::Unavailable(format!("{:#}", e.into().context(doing))))
    }
}
