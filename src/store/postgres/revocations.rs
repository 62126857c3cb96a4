//! Session revocations (contract 6.2): one row per log-out-everywhere or
//! reused refresh family, written in the same statement that revokes the
//! refresh tokens it covers, and polled by every instance.

use super::sql;
use crate::domain::UserId;
use crate::store::{RecordedRevocation, Revocation, StoreError};
use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

#[tracing::instrument(skip_all, fields(user = %revocation.user))]
pub(super) async fn record(pool: &Pool, revocation: &Revocation) -> Result<(), StoreError> {
    // One statement, so the tokens and the record are revoked together.
    // `$2` NULL covers every family of the user.
    const REVOKE: &str = "WITH revoked AS ( \
                            UPDATE refresh_tokens SET revoked_at = now() \
                            WHERE user_id = $1 AND ($2::uuid IS NULL OR family = $2) \
                            AND revoked_at IS NULL) \
                          INSERT INTO session_revocations (user_id, family, at) \
                          VALUES ($1, $2, $3)";
    let params: sql::Params = &[&revocation.user.0, &revocation.family, &revocation.at];
    match sql::execute(pool, REVOKE, params).await {
        Ok(_) => Ok(()),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("recording a revocation"))),
    }
}

#[tracing::instrument(skip_all)]
pub(super) async fn since(
    pool: &Pool,
    after: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<RecordedRevocation>, StoreError> {
    const SINCE: &str = "SELECT user_id, family, at, recorded_at FROM session_revocations \
                         WHERE recorded_at > $1 ORDER BY recorded_at, id LIMIT $2";
    let rows = sql::query(pool, SINCE, &[&after, &i64::from(limit)])
        .await
        .context("loading recent revocations")?;
    Ok(rows.iter().map(from_row).collect::<anyhow::Result<_>>()?)
}

fn from_row(row: &Row) -> anyhow::Result<RecordedRevocation> {
    Ok(RecordedRevocation {
        revocation: Revocation {
            user: UserId(sql::get(row, "user_id")?),
            family: sql::get(row, "family")?,
            at: sql::get(row, "at")?,
        },
        recorded_at: sql::get(row, "recorded_at")?,
    })
}
