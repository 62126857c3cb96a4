//! Web Push subscriptions and the push outbox ([`PushStore`]). Rows are
//! enqueued by the `notifications_push_outbox` trigger (migration
//! `V2026120602__push.sql`), so in the notification's own transaction.

use super::{PgStore, sql};
use crate::domain::{NotificationId, PushSubscriptionId, UserId};
use crate::store::push::{
    ClaimedPush, FINISH_MAX, NewPushSubscription, PushClaim, PushId, PushStore,
};
use crate::store::{Notification, StoreError};
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

/// Claims due rows and returns what their sends need, in one statement.
/// A row is due once its notification is `$3` ms old and it is free (never
/// claimed, its retry time reached, or its lease run out). `SKIP LOCKED`:
/// rows another instance is claiming right now are left to it, never
/// waited for.
const CLAIM: &str = "\
WITH due AS (
    SELECT id, coalesce(not_before, created_at + $3::bigint * interval '1 millisecond') AS due_at
    FROM push_outbox
    WHERE created_at <= now() - $3::bigint * interval '1 millisecond'
      AND (not_before IS NULL OR not_before <= now())
    ORDER BY created_at LIMIT $4
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE push_outbox o
    SET lease = $1, not_before = now() + $2::bigint * interval '1 millisecond',
        attempts = o.attempts + 1
    FROM due WHERE o.id = due.id
    RETURNING o.id, o.notification_id, o.subscription_id, o.attempts, due.due_at
)
SELECT c.id, c.subscription_id, c.attempts, c.due_at,
       s.endpoint, s.p256dh, s.auth,
       n.id AS notification, n.user_id, n.kind, n.payload, n.read_at IS NOT NULL AS read,
       n.created_at,
       (SELECT count(*) FROM notifications u
        WHERE u.user_id = n.user_id AND u.read_at IS NULL) AS unread
FROM claimed c
JOIN push_subscriptions s ON s.id = c.subscription_id
JOIN notifications n ON n.id = c.notification_id";

#[async_trait]
impl PushStore for PgStore {
    async fn save_push_subscription(
        &self,
        subscription: NewPushSubscription,
    ) -> Result<PushSubscriptionId, StoreError> {
        self.run("save_push_subscription", save(&self.pool, subscription))
            .await
    }

    async fn delete_push_subscription(
        &self,
        user: UserId,
        id: PushSubscriptionId,
    ) -> Result<(), StoreError> {
        const DELETE: &str = "DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2";
        let deleted = self
            .run("delete_push_subscription", async {
                sql::execute(&self.pool, DELETE, &[&id.0, &user.0])
                    .await
                    .context("deleting a push subscription")
                    .map_err(StoreError::from)
            })
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn drop_push_subscription(&self, id: PushSubscriptionId) -> Result<bool, StoreError> {
        const DELETE: &str = "DELETE FROM push_subscriptions WHERE id = $1";
        self.run("drop_push_subscription", async {
            let deleted = sql::execute(&self.pool, DELETE, &[&id.0])
                .await
                .context("dropping a push subscription")?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn push_subscription_count(&self, user: UserId) -> Result<u64, StoreError> {
        const COUNT: &str = "SELECT count(*) AS n FROM push_subscriptions WHERE user_id = $1";
        self.run_read("push_subscription_count", || async {
            let row = sql::query_opt(&self.pool, COUNT, &[&user.0])
                .await
                .context("counting push subscriptions")?;
            let n: i64 = row.map_or(Ok(0), |r| sql::get(&r, "n"))?;
            Ok(u64::try_from(n).unwrap_or_default())
        })
        .await
    }

    async fn claim_pushes(&self, claim: PushClaim) -> Result<Vec<ClaimedPush>, StoreError> {
        self.run("claim_pushes", claim_due(&self.pool, claim)).await
    }

    async fn finish_pushes(
        &self,
        rows: &[(PushId, uuid::Uuid)],
    ) -> Result<Vec<PushId>, StoreError> {
        // The lease beside each id is the proof its claim still holds. One
        // statement (and one commit) for a batch: the sender ends rows in
        // groups, not one round trip each.
        const FINISH: &str = "\
            DELETE FROM push_outbox o \
            USING unnest($1::bigint[], $2::uuid[]) AS f(id, lease) \
            WHERE o.id = f.id AND o.lease = f.lease \
            RETURNING o.id";
        let ids: Vec<i64> = rows.iter().take(FINISH_MAX).map(|(id, _)| id.0).collect();
        let leases: Vec<uuid::Uuid> = rows.iter().take(FINISH_MAX).map(|(_, l)| *l).collect();
        self.run("finish_pushes", async {
            let params: sql::Params = &[&ids, &leases];
            let done = sql::query(&self.pool, FINISH, params)
                .await
                .context("finishing pushes")?;
            let done: anyhow::Result<Vec<PushId>> = done
                .iter()
                .map(|r| Ok(PushId(sql::get(r, "id")?)))
                .collect();
            Ok(done?)
        })
        .await
    }

    async fn retry_push(
        &self,
        id: PushId,
        lease: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const RETRY: &str = "UPDATE push_outbox SET lease = NULL, not_before = $3 \
                             WHERE id = $1 AND lease = $2";
        self.run("retry_push", async {
            let freed = sql::execute(&self.pool, RETRY, &[&id.0, &lease, &at])
                .await
                .context("scheduling a push retry")?;
            Ok(freed == 1)
        })
        .await
    }
}

async fn save(pool: &Pool, new: NewPushSubscription) -> Result<PushSubscriptionId, StoreError> {
    const UPSERT: &str = "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth) \
                          VALUES ($1, $2, $3, $4, $5) \
                          ON CONFLICT (user_id, endpoint) \
                          DO UPDATE SET p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth \
                          RETURNING id";
    let id = PushSubscriptionId::new();
    let endpoint = new.endpoint.as_str();
    let params: sql::Params = &[
        &id.0,
        &new.user.0,
        &endpoint,
        &new.keys.p256dh,
        &new.keys.auth,
    ];
    match sql::query_opt(pool, UPSERT, params).await {
        Ok(Some(row)) => Ok(PushSubscriptionId(sql::get(&row, "id")?)),
        Ok(None) => Err(anyhow::anyhow!("INSERT ... RETURNING returned no row").into()),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(
            error.context("saving a push subscription"),
        )),
    }
}

async fn claim_due(pool: &Pool, claim: PushClaim) -> Result<Vec<ClaimedPush>, StoreError> {
    let millis = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let params: sql::Params = &[
        &claim.lease,
        &millis(claim.lease_for),
        &millis(claim.delay),
        &i64::from(claim.limit),
    ];
    let rows = sql::query(pool, CLAIM, params)
        .await
        .context("claiming due pushes")?;
    let claimed: anyhow::Result<Vec<_>> = rows.iter().map(claimed_from_row).collect();
    Ok(claimed?)
}

fn claimed_from_row(row: &Row) -> anyhow::Result<ClaimedPush> {
    let attempts: i32 = sql::get(row, "attempts")?;
    Ok(ClaimedPush {
        id: PushId(sql::get(row, "id")?),
        subscription: PushSubscriptionId(sql::get(row, "subscription_id")?),
        endpoint: sql::get(row, "endpoint")?,
        p256dh: sql::get(row, "p256dh")?,
        auth: sql::get(row, "auth")?,
        notification: Notification {
            id: NotificationId(sql::get(row, "notification")?),
            user: UserId(sql::get(row, "user_id")?),
            kind: sql::get(row, "kind")?,
            payload: sql::get(row, "payload")?,
            read: sql::get(row, "read")?,
            created_at: sql::get(row, "created_at")?,
        },
        unread: sql::get(row, "unread")?,
        attempts: u32::try_from(attempts).unwrap_or_default(),
        due_at: sql::get(row, "due_at")?,
    })
}
