//! Refresh tokens, stored by their SHA-256 hash.
//!
//! A token is spent by one conditional `UPDATE`: of two requests presenting
//! the same token at once, exactly one sees its row change. Only when that
//! fails is the row read again, to tell the caller why, and a token that
//! was already spent (longer than the grace window ago) or revoked is
//! reported as a replay so the caller can revoke its whole family.

use super::sql;
use crate::domain::UserId;
use crate::store::{NewRefreshToken, RefreshSpend, StoreError};
use anyhow::Context;
use deadpool_postgres::Pool;
use tokio_postgres::Row;

#[tracing::instrument(skip_all, fields(user = %token.user))]
pub(super) async fn insert(pool: &Pool, token: NewRefreshToken) -> Result<(), StoreError> {
    const INSERT: &str = "INSERT INTO refresh_tokens (hash, user_id, family, expires_at) \
                          VALUES ($1, $2, $3, $4)";
    let params: sql::Params = &[&token.hash, &token.user.0, &token.family, &token.expires_at];
    match sql::execute(pool, INSERT, params).await {
        Ok(_) => Ok(()),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("storing a refresh token"))),
    }
}

#[tracing::instrument(skip_all)]
pub(super) async fn spend(
    pool: &Pool,
    hash: &[u8],
    grace: std::time::Duration,
) -> Result<RefreshSpend, StoreError> {
    // Spent within the grace window: spent again, keeping the first time,
    // so the window never slides. Of two requests at once, the second
    // waits for the first's row lock and then sees its `spent_at`.
    const SPEND: &str = "UPDATE refresh_tokens SET spent_at = coalesce(spent_at, now()) \
                         WHERE hash = $1 AND revoked_at IS NULL AND expires_at > now() \
                         AND (spent_at IS NULL OR spent_at > now() - make_interval(secs => $2)) \
                         RETURNING user_id, family";
    const INSPECT: &str = "SELECT user_id, family, spent_at IS NOT NULL AS spent, \
                           expires_at <= now() AS expired \
                           FROM refresh_tokens WHERE hash = $1";
    let spent = sql::query_opt(pool, SPEND, &[&hash, &grace.as_secs_f64()])
        .await
        .context("spending a refresh token")?;
    if let Some(row) = spent {
        let (user, family) = owner_from_row(&row)?;
        return Ok(RefreshSpend::Spent { user, family });
    }
    let Some(row) = sql::query_opt(pool, INSPECT, &[&hash])
        .await
        .context("inspecting an unspendable refresh token")?
    else {
        return Ok(RefreshSpend::Unknown);
    };
    let spent: bool = sql::get(&row, "spent")?;
    let expired: bool = sql::get(&row, "expired")?;
    // An expired token that was never spent is just old, not a replay.
    if expired && !spent {
        return Ok(RefreshSpend::Expired);
    }
    let (user, family) = owner_from_row(&row)?;
    Ok(RefreshSpend::Reused { user, family })
}

#[tracing::instrument(skip_all, fields(%family))]
pub(super) async fn revoke_family(pool: &Pool, family: uuid::Uuid) -> Result<(), StoreError> {
    // Keeps the first revocation time of tokens revoked before.
    const REVOKE: &str = "UPDATE refresh_tokens SET revoked_at = now() \
                          WHERE family = $1 AND revoked_at IS NULL";
    sql::execute(pool, REVOKE, &[&family])
        .await
        .context("revoking a refresh-token family")?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub(super) async fn owner(
    pool: &Pool,
    hash: &[u8],
) -> Result<Option<(UserId, uuid::Uuid)>, StoreError> {
    const OWNER: &str = "SELECT user_id, family FROM refresh_tokens WHERE hash = $1";
    let row = sql::query_opt(pool, OWNER, &[&hash])
        .await
        .context("loading a refresh token's owner")?;
    Ok(row.as_ref().map(owner_from_row).transpose()?)
}

fn owner_from_row(row: &Row) -> anyhow::Result<(UserId, uuid::Uuid)> {
    Ok((UserId(sql::get(row, "user_id")?), sql::get(row, "family")?))
}
