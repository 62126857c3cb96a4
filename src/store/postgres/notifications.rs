//! Notifications: a per-user inbox, newest first, with read state.
//!
//! Two list statements rather than one with an `unread_only` flag: only a
//! literal `read_at IS NULL` lets the planner use the partial index
//! `notifications_unread_idx`, which keeps the unread list and count cheap
//! for users with a long history of read notifications.

use super::sql;
use crate::domain::{Limit, NotificationId, RoomId, Seq, UserId};
use crate::store::{NewNotification, Notification, StoreError};
use anyhow::Context;
use deadpool_postgres::Pool;
use tokio_postgres::Row;

const LIST_ALL: &str = "SELECT id, user_id, kind, payload, read_at IS NOT NULL AS read, created_at \
                        FROM notifications WHERE user_id = $1 AND id < $2 \
                        ORDER BY id DESC LIMIT $3";
const LIST_UNREAD: &str = "SELECT id, user_id, kind, payload, false AS read, created_at \
                           FROM notifications WHERE user_id = $1 AND id < $2 \
                           AND read_at IS NULL ORDER BY id DESC LIMIT $3";

#[tracing::instrument(skip_all, fields(user = %notification.user, kind = %notification.kind))]
pub(super) async fn create(
    pool: &Pool,
    notification: NewNotification,
) -> Result<Notification, StoreError> {
    const INSERT: &str = "INSERT INTO notifications (id, user_id, kind, payload) \
                          VALUES ($1, $2, $3, $4) \
                          RETURNING id, user_id, kind, payload, false AS read, created_at";
    let id = NotificationId::new();
    let params: sql::Params = &[
        &id.0,
        &notification.user.0,
        &notification.kind,
        &notification.payload,
    ];
    match sql::query_opt(pool, INSERT, params).await {
        Ok(Some(row)) => Ok(notification_from_row(&row)?),
        Ok(None) => Err(anyhow::anyhow!("INSERT ... RETURNING returned no row").into()),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("creating a notification"))),
    }
}

/// One statement: the look-back is a range of the `(user_id, id)` index,
/// since ids are UUIDv7 and the smallest id of an instant is known.
#[tracing::instrument(skip_all, fields(user = %notification.user, kind = %notification.kind))]
pub(super) async fn create_unless_recent(
    pool: &Pool,
    notification: NewNotification,
    same: &serde_json::Value,
    within: std::time::Duration,
) -> Result<Option<Notification>, StoreError> {
    const INSERT: &str = "INSERT INTO notifications (id, user_id, kind, payload) \
                          SELECT $1, $2, $3, $4 WHERE NOT EXISTS ( \
                              SELECT 1 FROM notifications WHERE user_id = $2 AND id > $6 \
                              AND kind = $3 AND payload @> $5) \
                          RETURNING id, user_id, kind, payload, false AS read, created_at";
    let since = chrono::Utc::now() - chrono::Duration::from_std(within).unwrap_or_default();
    let oldest = uuid::Builder::from_unix_timestamp_millis(
        u64::try_from(since.timestamp_millis()).unwrap_or_default(),
        &[0; 10],
    )
    .into_uuid();
    let id = NotificationId::new();
    let params: sql::Params = &[
        &id.0,
        &notification.user.0,
        &notification.kind,
        &notification.payload,
        same,
        &oldest,
    ];
    match sql::query_opt(pool, INSERT, params).await {
        Ok(row) => Ok(row.as_ref().map(notification_from_row).transpose()?),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("creating a notification"))),
    }
}

#[tracing::instrument(skip_all, fields(recipients = users.len(), %kind))]
pub(super) async fn create_many(
    pool: &Pool,
    users: &[UserId],
    kind: &str,
    payload: &serde_json::Value,
) -> Result<Vec<Notification>, StoreError> {
    // One statement for the whole batch; the join skips recipients deleted
    // meanwhile instead of failing everyone's notification on one of them.
    // `FOR KEY SHARE` covers a delete still in flight: the join waits for
    // it and then skips the row, where the foreign key would otherwise fail
    // the whole statement once the delete commits.
    const INSERT: &str = "INSERT INTO notifications (id, user_id, kind, payload) \
                          SELECT r.id, r.user_id, $3, $4 \
                          FROM unnest($1::uuid[], $2::uuid[]) AS r (id, user_id) \
                          JOIN users ON users.id = r.user_id \
                          FOR KEY SHARE OF users \
                          RETURNING id, user_id, kind, payload, false AS read, created_at";
    let ids: Vec<uuid::Uuid> = users.iter().map(|_| NotificationId::new().0).collect();
    let recipients: Vec<uuid::Uuid> = users.iter().map(|u| u.0).collect();
    let rows = sql::query(pool, INSERT, &[&ids, &recipients, &kind, payload])
        .await
        .context("creating notifications")?;
    let created: anyhow::Result<Vec<_>> = rows.iter().map(notification_from_row).collect();
    Ok(created?)
}

#[tracing::instrument(skip_all, fields(%user, unread_only, limit = limit.get()))]
pub(super) async fn list(
    pool: &Pool,
    user: UserId,
    unread_only: bool,
    before: Option<NotificationId>,
    limit: Limit,
) -> Result<Vec<Notification>, StoreError> {
    let statement = if unread_only { LIST_UNREAD } else { LIST_ALL };
    // No cursor means "before the largest UUID": a plain range either way.
    let before = before.map_or(uuid::Uuid::max(), |id| id.0);
    let limit = i64::from(limit.get());
    let rows = sql::query(pool, statement, &[&user.0, &before, &limit])
        .await
        .context("listing notifications")?;
    let notifications = rows
        .iter()
        .map(notification_from_row)
        .collect::<anyhow::Result<_>>()?;
    Ok(notifications)
}

#[tracing::instrument(skip_all, fields(%user))]
pub(super) async fn unread_count(pool: &Pool, user: UserId) -> Result<i64, StoreError> {
    const COUNT: &str = "SELECT count(*) AS unread FROM notifications \
                         WHERE user_id = $1 AND read_at IS NULL";
    let row = sql::query_opt(pool, COUNT, &[&user.0])
        .await
        .context("counting unread notifications")?;
    match row {
        Some(row) => Ok(sql::get(&row, "unread")?),
        None => Ok(0),
    }
}

/// Marking a read notification again succeeds and keeps its first read
/// time; someone else's notification is indistinguishable from a missing one.
#[tracing::instrument(skip_all, fields(%user, notification = %id))]
pub(super) async fn mark_read(
    pool: &Pool,
    user: UserId,
    id: NotificationId,
) -> Result<(), StoreError> {
    const MARK: &str = "UPDATE notifications SET read_at = COALESCE(read_at, now()) \
                        WHERE id = $1 AND user_id = $2";
    let marked = sql::execute(pool, MARK, &[&id.0, &user.0])
        .await
        .context("marking a notification read")?;
    if marked == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(%user))]
pub(super) async fn mark_all_read(pool: &Pool, user: UserId) -> Result<i64, StoreError> {
    const MARK_ALL: &str = "UPDATE notifications SET read_at = now() \
                            WHERE user_id = $1 AND read_at IS NULL";
    let marked = sql::execute(pool, MARK_ALL, &[&user.0])
        .await
        .context("marking all notifications read")?;
    Ok(i64::try_from(marked).context("counting marked notifications")?)
}

fn notification_from_row(row: &Row) -> anyhow::Result<Notification> {
    Ok(Notification {
        id: NotificationId(sql::get(row, "id")?),
        user: UserId(sql::get(row, "user_id")?),
        kind: sql::get(row, "kind")?,
        payload: sql::get(row, "payload")?,
        read: sql::get(row, "read")?,
        created_at: sql::get(row, "created_at")?,
    })
}

#[tracing::instrument(skip_all, fields(%room, %seq))]
pub(super) async fn withdraw(pool: &Pool, room: RoomId, seq: Seq) -> Result<u64, StoreError> {
    // Matches `notifications_message_idx` term for term.
    const WITHDRAW: &str = "UPDATE notifications SET read_at = now() \
        WHERE read_at IS NULL AND kind IN ('mention', 'direct_message') \
        AND payload ->> 'room' = $1 AND payload ->> 'seq' = $2";
    let withdrawn = sql::execute(pool, WITHDRAW, &[&room.to_string(), &seq.0.to_string()])
        .await
        .context("withdrawing notifications")?;
    Ok(withdrawn)
}
