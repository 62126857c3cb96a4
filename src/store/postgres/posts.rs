//! Posts and the home feed.
//!
//! The feed is a merge of per-author timelines: for the user and each
//! followee, the newest posts older than the cursor are read from the
//! `(author, id DESC)` index with the page size as the bound, and the union
//! is cut to one page. The work is bounded by followees × page size
//! whatever the size of the posts table, and ids being UUIDv7 makes id
//! order time order.

use super::sql;
use crate::domain::{Limit, PostId, UserId};
use crate::store::{NewPost, Post, StoreError};
use anyhow::Context;
use deadpool_postgres::Pool;
use tokio_postgres::Row;

/// `author IN (user, followees...)` written as a lateral join, so each
/// author's slice is an index range scan that stops after `$3` rows instead
/// of a scan of everything those authors ever wrote followed by a sort.
/// `UNION` (not `UNION ALL`) keeps a user who follows themselves from
/// appearing twice.
const FEED: &str = "\
    SELECT p.id, p.author, p.body, p.created_at \
    FROM (SELECT $1::uuid AS author \
          UNION SELECT followee FROM follows WHERE follower = $1) AS a \
    CROSS JOIN LATERAL ( \
        SELECT id, author, body, created_at FROM posts \
        WHERE author = a.author AND id < $2 \
        ORDER BY id DESC LIMIT $3) AS p \
    ORDER BY p.id DESC LIMIT $3";

#[tracing::instrument(skip_all, fields(post = %post.id))]
pub(super) async fn create(pool: &Pool, post: NewPost) -> Result<Post, StoreError> {
    const INSERT: &str = "INSERT INTO posts (id, author, body) VALUES ($1, $2, $3) \
                          RETURNING id, author, body, created_at";
    let params: sql::Params = &[&post.id.0, &post.author.0, &post.body.as_str()];
    match sql::query_opt(pool, INSERT, params).await {
        Ok(Some(row)) => Ok(post_from_row(&row)?),
        Ok(None) => Err(anyhow::anyhow!("INSERT ... RETURNING returned no row").into()),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("creating a post"))),
    }
}

#[tracing::instrument(skip_all, fields(post = %id))]
pub(super) async fn by_id(pool: &Pool, id: PostId) -> Result<Option<Post>, StoreError> {
    const BY_ID: &str = "SELECT id, author, body, created_at FROM posts WHERE id = $1";
    let row = sql::query_opt(pool, BY_ID, &[&id.0])
        .await
        .context("loading a post")?;
    Ok(row.as_ref().map(post_from_row).transpose()?)
}

#[tracing::instrument(skip_all, fields(post = %id))]
pub(super) async fn delete(pool: &Pool, id: PostId) -> Result<(), StoreError> {
    let deleted = sql::execute(pool, "DELETE FROM posts WHERE id = $1", &[&id.0])
        .await
        .context("deleting a post")?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(%user, limit = limit.get()))]
pub(super) async fn feed(
    pool: &Pool,
    user: UserId,
    before: Option<PostId>,
    limit: Limit,
) -> Result<Vec<Post>, StoreError> {
    // No cursor means "before the largest UUID": one statement shape, and a
    // plain range condition the planner can always push into the index.
    let before = before.map_or(uuid::Uuid::max(), |id| id.0);
    let limit = i64::from(limit.get());
    let rows = sql::query(pool, FEED, &[&user.0, &before, &limit])
        .await
        .context("loading a feed")?;
    let posts = rows
        .iter()
        .map(post_from_row)
        .collect::<anyhow::Result<_>>()?;
    Ok(posts)
}

fn post_from_row(row: &Row) -> anyhow::Result<Post> {
    Ok(Post {
        id: PostId(sql::get(row, "id")?),
        author: UserId(sql::get(row, "author")?),
        body: sql::get(row, "body")?,
        created_at: sql::get(row, "created_at")?,
    })
}
