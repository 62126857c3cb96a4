//! The PostgreSQL store: [`PgStore`], a deadpool pool of tokio-postgres
//! connections behind the [`Store`] and [`MessageLog`] traits.
//!
//! Open it with [`PgStore::connect`], which waits for the database (bounded
//! by `PARLEY_DB_CONNECT_TIMEOUT_S`) and applies the migrations in
//! `migrations/` before returning. The trait impls below only delegate; the
//! SQL lives with its concept:
//!
//! | file | owns |
//! |---|---|
//! | `connect.rs` | the pool, waiting for the database, migrations |
//! | `guard.rs` | the circuit breaker, span and timing around every operation |
//! | `sql.rs` | running statements, telling constraint violations apart |
//! | `pipelined.rs` | a transaction whose `BEGIN` and `COMMIT` ride with its statements |
//! | `users.rs` | accounts and profiles |
//! | `follows.rs` | the follow graph |
//! | `tokens.rs` | refresh tokens: spend once, revoke by family |
//! | `posts.rs` | posts and the feed |
//! | `rooms.rs` | rooms and their members |
//! | `messages.rs` | the room event log: gapless `seq`, idempotent appends, folding |
//! | `read_state.rs` | history in current state, read cursors, unread counts |
//! | `notifications.rs` | notifications and their read state |
//! | `safety.rs` | room bans and mutes, blocks, reports |
//! | `revocations.rs` | session revocations: log out everywhere, reused families |
//! | `retention.rs` | rooms' retention and horizon, purging expired events |
//! | `webhooks.rs` | webhook endpoints, their outbox and delivery log |
//! | `api_keys.rs` | the server API's keys |
//! | `push.rs` | Web Push subscriptions, the push outbox: claim with a lease, finish |
//!
//! Every list is keyset-paginated on a UUIDv7 id (or a room's `seq`) and
//! served by an index named in the migration.

mod api_keys;
mod connect;
mod follows;
mod guard;
mod messages;
mod notifications;
mod pipelined;
mod posts;
mod push;
mod read_state;
mod retention;
mod revocations;
mod rooms;
mod safety;
mod sql;
mod tokens;
mod users;
mod webhooks;

use crate::domain::{
    Limit, NotificationId, PostId, ReportId, RestrictionKind, RetentionDays, RoomId, RoomKind,
    RoomName, RoomRole, SearchPrefix, Seq, UserId,
};
use crate::store::{
    Block, CursorMove, HistoryItem, HistoryQuery, Imposed, Member, NewNotification, NewPost,
    NewRefreshToken, NewReport, NewRestriction, NewUser, Notification, Post, ProfilePatch,
    ReadCursor, RefreshSpend, Report, Restriction, Room, RoomAccess, RoomUnread, Store, StoreError,
    User,
};
use crate::store::{RecordedRevocation, Revocation};
use anyhow::Context;
use async_trait::async_trait;
use deadpool_postgres::Pool;
use parley_actors::model::{Appended, NewEvent, Refusal, StoredEvent};
use parley_actors::ports::{LogError, MessageLog, ReplayPage};

/// The PostgreSQL store. Cloning shares the pool.
#[derive(Clone)]
pub struct PgStore {
    /// Connections to one database, already migrated.
    pool: Pool,
    /// Where appends take their connection: `pool`, or in a writer log
    /// ([`PgStore::writer_log`]) a pool of the writers' own.
    appends: Pool,
    /// Opens the writers' pools, and closes them with the store.
    writer_pools: std::sync::Arc<connect::WriterPools>,
    guard: Guard,
    /// What the append path writes webhook outbox rows for (see `webhooks.rs`).
    webhook_filter: std::sync::Arc<crate::domain::webhook::EventFilter>,
}

pub use guard::Guard;
pub(crate) use sql::{Failure, classify};

impl PgStore {
    /// Reports to `guard`'s circuit breaker and histogram from now on.
    pub fn with_guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    /// How full the pool is, for readiness probes and metrics.
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }
}

#[async_trait]
impl MessageLog for PgStore {
    async fn append(&self, batch: &[NewEvent]) -> Result<Vec<Result<Appended, Refusal>>, LogError> {
        let webhooks = self.webhook_filter.get();
        self.run("append", messages::append(&self.appends, batch, webhooks))
            .await
    }

    async fn range(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, LogError> {
        self.run_read("range", || {
            messages::range(&self.pool, room, after, before, limit)
        })
        .await
    }

    async fn tail(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, LogError> {
        self.run_read("tail", || messages::tail(&self.pool, room, before, limit))
            .await
    }

    async fn last_seq(&self, room: RoomId) -> Result<Seq, LogError> {
        self.run_read("last_seq", || messages::last_seq(&self.pool, room))
            .await
    }

    async fn replay_page(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<ReplayPage, LogError> {
        self.run_read("replay_page", || {
            messages::replay_page(&self.pool, room, after, before, limit)
        })
        .await
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn close(&self) {
        self.pool.close();
        self.writer_pools.close();
    }

    /// A log for one arbiter's writers (see
    /// [`parley_actors::ports::OpenWriterLog`]): its appends use
    /// [`parley_actors::writer::WRITERS_PER_ARBITER`] connections of their
    /// own, outside `pool`, opened by the first appends on the writers'
    /// thread. Each of an append's two round trips then wakes the thread
    /// that waits for it, not an HTTP worker that may be busy with requests
    /// for milliseconds (issue 15; measured in `docs/benchmarks.md`).
    fn writer_log(&self) -> Option<std::sync::Arc<dyn MessageLog>> {
        let mut log = self.clone();
        match self.writer_pools.open() {
            Ok(pool) => log.appends = pool,
            // Only a builder bug gets here (the settings built `pool`).
            Err(error) => tracing::error!(%error, "writers share the pool"),
        }
        Some(std::sync::Arc::new(log))
    }

    fn pool_stats(&self) -> Option<crate::store::PoolStats> {
        let status = self.pool.status();
        Some(crate::store::PoolStats {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", async {
            sql::execute(&self.pool, "SELECT 1", &[])
                .await
                .context("pinging the database")?;
            Ok(())
        })
        .await
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.run("create_user", users::create(&self.pool, user))
            .await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.run_read("user", || users::by_id(&self.pool, id)).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.run_read("user_by_username", || {
            users::by_username(&self.pool, username)
        })
        .await
    }

    async fn search_users(
        &self,
        prefix: &SearchPrefix,
        after: Option<&str>,
        limit: Limit,
    ) -> Result<Vec<User>, StoreError> {
        self.run_read("search_users", || {
            users::search(&self.pool, prefix, after, limit)
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.run_read("user_by_email", || users::by_email(&self.pool, email))
            .await
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        self.run_read("password_hash", || users::password_hash(&self.pool, id))
            .await
    }

    async fn update_profile(&self, id: UserId, patch: ProfilePatch) -> Result<User, StoreError> {
        self.run(
            "update_profile",
            users::update_profile(&self.pool, id, patch),
        )
        .await
    }

    async fn follow(&self, follower: UserId, followee: UserId) -> Result<bool, StoreError> {
        self.run("follow", follows::follow(&self.pool, follower, followee))
            .await
    }

    async fn unfollow(&self, follower: UserId, followee: UserId) -> Result<(), StoreError> {
        self.run(
            "unfollow",
            follows::unfollow(&self.pool, follower, followee),
        )
        .await
    }

    async fn followers(&self, user: UserId) -> Result<Vec<UserId>, StoreError> {
        self.run_read("followers", || follows::followers(&self.pool, user))
            .await
    }

    async fn insert_refresh_token(&self, token: NewRefreshToken) -> Result<(), StoreError> {
        self.run("insert_refresh_token", tokens::insert(&self.pool, token))
            .await
    }

    async fn spend_refresh_token(
        &self,
        hash: &[u8],
        grace: std::time::Duration,
    ) -> Result<RefreshSpend, StoreError> {
        self.run(
            "spend_refresh_token",
            tokens::spend(&self.pool, hash, grace),
        )
        .await
    }

    async fn revoke_refresh_family(&self, family: uuid::Uuid) -> Result<(), StoreError> {
        self.run(
            "revoke_refresh_family",
            tokens::revoke_family(&self.pool, family),
        )
        .await
    }

    async fn refresh_token_owner(
        &self,
        hash: &[u8],
    ) -> Result<Option<(UserId, uuid::Uuid)>, StoreError> {
        self.run("refresh_token_owner", tokens::owner(&self.pool, hash))
            .await
    }

    async fn revoke_sessions(&self, revocation: &Revocation) -> Result<(), StoreError> {
        self.run(
            "revoke_sessions",
            revocations::record(&self.pool, revocation),
        )
        .await
    }

    async fn revocations_since(
        &self,
        after: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<RecordedRevocation>, StoreError> {
        self.run_read("revocations_since", || {
            revocations::since(&self.pool, after, limit)
        })
        .await
    }

    async fn create_post(&self, post: NewPost) -> Result<Post, StoreError> {
        self.run("create_post", posts::create(&self.pool, post))
            .await
    }

    async fn post(&self, id: PostId) -> Result<Option<Post>, StoreError> {
        self.run_read("post", || posts::by_id(&self.pool, id)).await
    }

    async fn delete_post(&self, id: PostId) -> Result<(), StoreError> {
        self.run("delete_post", posts::delete(&self.pool, id)).await
    }

    async fn feed(
        &self,
        user: UserId,
        before: Option<PostId>,
        limit: Limit,
    ) -> Result<Vec<Post>, StoreError> {
        self.run_read("feed", || posts::feed(&self.pool, user, before, limit))
            .await
    }

    async fn create_room(
        &self,
        creator: UserId,
        name: RoomName,
        kind: RoomKind,
    ) -> Result<Room, StoreError> {
        self.run(
            "create_room",
            rooms::create(&self.pool, creator, name, kind),
        )
        .await
    }

    async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        self.run_read("room", || rooms::by_id(&self.pool, id)).await
    }

    async fn rooms_visible_to(
        &self,
        user: UserId,
        after: Option<RoomId>,
        limit: Limit,
    ) -> Result<Vec<Room>, StoreError> {
        self.run(
            "rooms_visible_to",
            rooms::visible_to(&self.pool, user, after, limit),
        )
        .await
    }

    async fn role(&self, room: RoomId, user: UserId) -> Result<Option<RoomRole>, StoreError> {
        self.run_read("role", || rooms::role(&self.pool, room, user))
            .await
    }

    async fn room_access(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<RoomAccess>, StoreError> {
        self.run_read("room_access", || rooms::access(&self.pool, room, user))
            .await
    }

    async fn restrict(&self, restriction: NewRestriction) -> Result<Imposed, StoreError> {
        self.run("restrict", safety::restrict(&self.pool, restriction))
            .await
    }

    async fn lift_restriction(
        &self,
        room: RoomId,
        user: UserId,
        kind: RestrictionKind,
    ) -> Result<(), StoreError> {
        self.run(
            "lift_restriction",
            safety::lift(&self.pool, room, user, kind),
        )
        .await
    }

    async fn restrictions(
        &self,
        room: RoomId,
        kind: RestrictionKind,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<Vec<Restriction>, StoreError> {
        self.run_read("restrictions", || {
            safety::list(&self.pool, room, kind, after, limit)
        })
        .await
    }

    async fn block(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        self.run("block", safety::block(&self.pool, blocker, blocked))
            .await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<(), StoreError> {
        self.run("unblock", safety::unblock(&self.pool, blocker, blocked))
            .await
    }

    async fn blocks(
        &self,
        blocker: UserId,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<Vec<Block>, StoreError> {
        self.run_read("blocks", || {
            safety::blocks(&self.pool, blocker, after, limit)
        })
        .await
    }

    async fn blockers_among(
        &self,
        actor: UserId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError> {
        self.run_read("blockers_among", || {
            safety::blockers_among(&self.pool, actor, users)
        })
        .await
    }

    async fn create_report(&self, report: NewReport) -> Result<Report, StoreError> {
        self.run("create_report", safety::create_report(&self.pool, report))
            .await
    }

    async fn reports(
        &self,
        before: Option<ReportId>,
        limit: Limit,
    ) -> Result<Vec<Report>, StoreError> {
        self.run_read("reports", || safety::reports(&self.pool, before, limit))
            .await
    }

    async fn members(&self, room: RoomId) -> Result<Vec<Member>, StoreError> {
        self.run_read("members", || rooms::members(&self.pool, room))
            .await
    }

    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
    ) -> Result<(), StoreError> {
        self.run(
            "add_member",
            rooms::add_member(&self.pool, room, user, role),
        )
        .await
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<(), StoreError> {
        self.run(
            "remove_member",
            rooms::remove_member(&self.pool, room, user),
        )
        .await
    }

    async fn create_notification(
        &self,
        notification: NewNotification,
    ) -> Result<Notification, StoreError> {
        self.run(
            "create_notification",
            notifications::create(&self.pool, notification),
        )
        .await
    }

    async fn create_notification_unless_recent(
        &self,
        notification: NewNotification,
        same: &serde_json::Value,
        within: std::time::Duration,
    ) -> Result<Option<Notification>, StoreError> {
        self.run(
            "create_notification_unless_recent",
            notifications::create_unless_recent(&self.pool, notification, same, within),
        )
        .await
    }

    async fn create_notifications(
        &self,
        users: &[UserId],
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<Vec<Notification>, StoreError> {
        self.run(
            "create_notifications",
            notifications::create_many(&self.pool, users, kind, payload),
        )
        .await
    }

    async fn notifications(
        &self,
        user: UserId,
        unread_only: bool,
        before: Option<NotificationId>,
        limit: Limit,
    ) -> Result<Vec<Notification>, StoreError> {
        self.run(
            "notifications",
            notifications::list(&self.pool, user, unread_only, before, limit),
        )
        .await
    }

    async fn unread_count(&self, user: UserId) -> Result<i64, StoreError> {
        self.run(
            "unread_count",
            notifications::unread_count(&self.pool, user),
        )
        .await
    }

    async fn mark_read(&self, user: UserId, id: NotificationId) -> Result<(), StoreError> {
        self.run("mark_read", notifications::mark_read(&self.pool, user, id))
            .await
    }

    async fn mark_all_read(&self, user: UserId) -> Result<i64, StoreError> {
        self.run(
            "mark_all_read",
            notifications::mark_all_read(&self.pool, user),
        )
        .await
    }

    async fn set_retention(
        &self,
        room: RoomId,
        days: Option<RetentionDays>,
    ) -> Result<Room, StoreError> {
        self.run("set_retention", retention::set(&self.pool, room, days))
            .await
    }

    async fn rooms_with_retention(
        &self,
        after: Option<RoomId>,
        limit: u32,
    ) -> Result<Vec<(RoomId, RetentionDays)>, StoreError> {
        self.run_read("rooms_with_retention", || {
            retention::rooms_with_retention(&self.pool, after, limit)
        })
        .await
    }

    async fn advance_horizon(
        &self,
        room: RoomId,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<Seq, StoreError> {
        self.run(
            "advance_horizon",
            retention::advance_horizon(&self.pool, room, cutoff),
        )
        .await
    }

    async fn purge_below_horizon(&self, room: RoomId, batch: u32) -> Result<u64, StoreError> {
        self.run(
            "purge_below_horizon",
            retention::purge_below_horizon(&self.pool, room, batch),
        )
        .await
    }

    async fn withdraw_notifications(&self, room: RoomId, seq: Seq) -> Result<u64, StoreError> {
        self.run(
            "withdraw_notifications",
            notifications::withdraw(&self.pool, room, seq),
        )
        .await
    }

    async fn history(
        &self,
        room: RoomId,
        viewer: UserId,
        query: HistoryQuery,
    ) -> Result<Vec<HistoryItem>, StoreError> {
        self.run_read("history", || {
            read_state::history(&self.pool, room, viewer, query)
        })
        .await
    }

    async fn mark_room_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<CursorMove, StoreError> {
        self.run(
            "mark_room_read",
            read_state::mark_read(&self.pool, room, user, seq),
        )
        .await
    }

    async fn read_cursors(&self, room: RoomId) -> Result<Vec<ReadCursor>, StoreError> {
        self.run_read("read_cursors", || {
            read_state::read_cursors(&self.pool, room)
        })
        .await
    }

    async fn room_unread(
        &self,
        user: UserId,
        rooms: &[RoomId],
    ) -> Result<Vec<RoomUnread>, StoreError> {
        self.run_read("room_unread", || {
            read_state::room_unread(&self.pool, user, rooms)
        })
        .await
    }

    async fn unread_rooms(&self, user: UserId) -> Result<Vec<RoomUnread>, StoreError> {
        self.run_read("unread_rooms", || {
            read_state::unread_rooms(&self.pool, user)
        })
        .await
    }
}
