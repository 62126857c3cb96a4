//! The follow graph: who follows whom, for the feed and for notification
//! fan-out.
//!
//! Following twice is not an error (`ON CONFLICT DO NOTHING`), and an
//! unknown user is reported by the foreign keys rather than by a look-up
//! first, which could race with the insert anyway.

use super::sql;
use crate::domain::UserId;
use crate::store::StoreError;
use anyhow::Context;
use deadpool_postgres::Pool;

#[tracing::instrument(skip_all, fields(%follower, %followee))]
pub(super) async fn follow(
    pool: &Pool,
    follower: UserId,
    followee: UserId,
) -> Result<bool, StoreError> {
    const FOLLOW: &str = "INSERT INTO follows (follower, followee) VALUES ($1, $2) \
                          ON CONFLICT DO NOTHING";
    match sql::execute(pool, FOLLOW, &[&follower.0, &followee.0]).await {
        Ok(inserted) => Ok(inserted == 1),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("following a user"))),
    }
}

#[tracing::instrument(skip_all, fields(%follower, %followee))]
pub(super) async fn unfollow(
    pool: &Pool,
    follower: UserId,
    followee: UserId,
) -> Result<(), StoreError> {
    const UNFOLLOW: &str = "DELETE FROM follows WHERE follower = $1 AND followee = $2";
    sql::execute(pool, UNFOLLOW, &[&follower.0, &followee.0])
        .await
        .context("unfollowing a user")?;
    Ok(())
}

/// In follower id order, read from the `follows_followee_idx` index alone.
#[tracing::instrument(skip_all, fields(%user))]
pub(super) async fn followers(pool: &Pool, user: UserId) -> Result<Vec<UserId>, StoreError> {
    const FOLLOWERS: &str = "SELECT follower FROM follows WHERE followee = $1 ORDER BY follower";
    let rows = sql::query(pool, FOLLOWERS, &[&user.0])
        .await
        .context("listing followers")?;
    let followers = rows
        .iter()
        .map(|row| sql::get(row, "follower").map(UserId))
        .collect::<anyhow::Result<_>>()?;
    Ok(followers)
}
