//! Accounts: creation, look-ups and profile edits.
//!
//! Uniqueness is the database's job: two registrations racing for one
//! username both reach the `INSERT`, and the unique indexes
//! `users_username_key` (on `lower(username)`) and `users_email_key` decide,
//! which the error is mapped back from by name.

use super::sql;
use crate::domain::{Limit, SearchPrefix, UserId};
use crate::store::{NewUser, ProfilePatch, StoreError, User};
use anyhow::Context;
use deadpool_postgres::Pool;
use tokio_postgres::Row;

/// The columns [`user_from_row`] reads. A macro rather than a `const` so
/// that `concat!` builds each statement below at compile time.
macro_rules! user_columns {
    () => {
        "id, username, email, display_name, bio, created_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, $4) RETURNING ",
    user_columns!()
);
const BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
const BY_USERNAME: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE lower(username) = lower($1)"
);
/// Matches by username or display name, each an index range, paged by
/// lower-cased username in byte order. The username branch walks its index
/// in order and stops at the page; the display-name branch reads its range
/// (`OFFSET 0` keeps the planner from walking the username index instead,
/// filtering a million rows) and sorts what it found: about 2 ms for a
/// two-letter prefix among a million users (`loadtest/user-search.sql`,
/// `docs/benchmarks.md`).
const SEARCH: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM ( \
       (SELECT *, lower(username) COLLATE \"C\" AS k FROM users \
         WHERE lower(username) COLLATE \"C\" >= $1 AND lower(username) COLLATE \"C\" < $2 \
           AND lower(username) COLLATE \"C\" > $3 \
         ORDER BY k LIMIT $4) \
       UNION \
       (SELECT * FROM (SELECT *, lower(username) COLLATE \"C\" AS k FROM users \
           WHERE display_name <> '' AND lower(display_name) COLLATE \"C\" >= $1 \
             AND lower(display_name) COLLATE \"C\" < $2 OFFSET 0) AS by_display_name \
         WHERE k > $3 ORDER BY k LIMIT $4) \
     ) AS found ORDER BY k LIMIT $4"
);

const BY_EMAIL: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE email = lower($1)"
);
const UPDATE_PROFILE: &str = concat!(
    "UPDATE users SET display_name = COALESCE($2, display_name), bio = COALESCE($3, bio) ",
    "WHERE id = $1 RETURNING ",
    user_columns!()
);

#[tracing::instrument(skip_all, fields(user = %user.id))]
pub(super) async fn create(pool: &Pool, user: NewUser) -> Result<User, StoreError> {
    let params: sql::Params = &[
        &user.id.0,
        &user.username.as_str(),
        &user.email.as_str(),
        &user.password_hash,
    ];
    match sql::query_opt(pool, INSERT, params).await {
        Ok(Some(row)) => Ok(user_from_row(&row)?),
        Ok(None) => Err(anyhow::anyhow!("INSERT ... RETURNING returned no row").into()),
        Err(error) => Err(match sql::unique_violation(&error) {
            Some("users_username_key") => StoreError::Conflict("username"),
            Some("users_email_key") => StoreError::Conflict("email"),
            _ => StoreError::from(error.context("creating a user")),
        }),
    }
}

#[tracing::instrument(skip_all, fields(user = %id))]
pub(super) async fn by_id(pool: &Pool, id: UserId) -> Result<Option<User>, StoreError> {
    let row = sql::query_opt(pool, BY_ID, &[&id.0])
        .await
        .context("loading a user by id")?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

/// Case-insensitive, through the `users_username_key` expression index.
#[tracing::instrument(skip_all)]
pub(super) async fn by_username(pool: &Pool, username: &str) -> Result<Option<User>, StoreError> {
    let row = sql::query_opt(pool, BY_USERNAME, &[&username])
        .await
        .context("loading a user by username")?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

#[tracing::instrument(skip_all, fields(limit = limit.get()))]
pub(super) async fn search(
    pool: &Pool,
    prefix: &SearchPrefix,
    after: Option<&str>,
    limit: Limit,
) -> Result<Vec<User>, StoreError> {
    let params: sql::Params = &[
        &prefix.as_str(),
        &prefix.upper_bound(),
        &after.unwrap_or(""),
        &i64::from(limit.get()),
    ];
    let rows = sql::query(pool, SEARCH, params)
        .await
        .context("searching users")?;
    Ok(rows
        .iter()
        .map(user_from_row)
        .collect::<anyhow::Result<_>>()?)
}

/// Addresses are stored lower-cased; lower-casing the argument too makes a
/// caller holding a raw string find the same row.
#[tracing::instrument(skip_all)]
pub(super) async fn by_email(pool: &Pool, email: &str) -> Result<Option<User>, StoreError> {
    let row = sql::query_opt(pool, BY_EMAIL, &[&email])
        .await
        .context("loading a user by e-mail address")?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

#[tracing::instrument(skip_all, fields(user = %id))]
pub(super) async fn password_hash(pool: &Pool, id: UserId) -> Result<Option<String>, StoreError> {
    let row = sql::query_opt(
        pool,
        "SELECT password_hash FROM users WHERE id = $1",
        &[&id.0],
    )
    .await
    .context("loading a password hash")?;
    Ok(row.map(|row| sql::get(&row, "password_hash")).transpose()?)
}

/// One statement, so a concurrent edit of the other field is not lost.
#[tracing::instrument(skip_all, fields(user = %id))]
pub(super) async fn update_profile(
    pool: &Pool,
    id: UserId,
    patch: ProfilePatch,
) -> Result<User, StoreError> {
    let display_name = patch.display_name.as_ref().map(|name| name.as_str());
    let row = sql::query_opt(pool, UPDATE_PROFILE, &[&id.0, &display_name, &patch.bio])
        .await
        .context("updating a profile")?;
    match row {
        Some(row) => Ok(user_from_row(&row)?),
        None => Err(StoreError::NotFound),
    }
}

pub(super) fn user_from_row(row: &Row) -> anyhow::Result<User> {
    Ok(User {
        id: UserId(sql::get(row, "id")?),
        username: sql::get(row, "username")?,
        email: sql::get(row, "email")?,
        display_name: sql::get(row, "display_name")?,
        bio: sql::get(row, "bio")?,
        created_at: sql::get(row, "created_at")?,
    })
}
