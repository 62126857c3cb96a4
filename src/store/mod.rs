//! Storage: one [`Store`] interface, two implementations.
//!
//! - [`postgres::PgStore`]: PostgreSQL through a deadpool pool, migrations
//!   from `migrations/` applied at start-up.
//! - [`memory::MemoryStore`]: the embedded in-process store used when
//!   `DATABASE_URL` is unset. Nothing survives a restart.
//!
//! Both implement the actors' [`MessageLog`] port too, and the same
//! behavioural test suite (`tests/api`) runs against each.
//!
//! Authorisation (who may read a private room, who may delete a post) is
//! decided by the HTTP layer from what the store returns; the store only
//! enforces integrity (uniqueness, referential integrity, gapless `seq`).

pub mod cache;
pub mod integration;
pub mod memory;
pub mod models;
pub mod postgres;
pub mod push;

pub use integration::{ApiKeyStore, WebhookStore};
pub use models::*;

use crate::domain::{
    Limit, NotificationId, PostId, ReportId, RestrictionKind, RetentionDays, RoomId, RoomKind,
    RoomName, RoomRole, SearchPrefix, Seq, UserId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parley_actors::ports::{LogError, MessageLog};
use std::sync::Arc;

/// The store as the application holds it.
pub type SharedStore = Arc<dyn Store>;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique field is taken; the payload names the field (`username`, `email`).
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// The referenced row does not exist.
    #[error("not found")]
    NotFound,
    /// The room's kind caps its members, and it is full.
    #[error("a {kind} room holds at most {max} members")]
    RoomFull { kind: RoomKind, max: usize },
    /// The database refused a value of the request (text it cannot store):
    /// the client's input, never an outage.
    #[error(transparent)]
    InvalidData(anyhow::Error),
    /// The database refused this call for another reason (a constraint, a
    /// bug): this call's failure only, never an outage.
    #[error(transparent)]
    Rejected(anyhow::Error),
    /// The backing store failed or cannot be reached: the only variant that
    /// counts against the circuit breaker and readiness.
    #[error(transparent)]
    Unavailable(anyhow::Error),
}

/// Sorts a failed statement by its cause (see `postgres::sql::classify`).
impl From<anyhow::Error> for StoreError {
    fn from(e: anyhow::Error) -> Self {
        use postgres::Failure;
        match postgres::classify(&e) {
            Failure::Outage => StoreError::Unavailable(e),
            Failure::BadData => StoreError::InvalidData(e),
            Failure::Refused => StoreError::Rejected(e),
        }
    }
}

impl From<LogError> for StoreError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::RoomNotFound => StoreError::NotFound,
            LogError::Unavailable(msg) => StoreError::Unavailable(anyhow::anyhow!(msg)),
            LogError::Rejected(msg) => StoreError::Rejected(anyhow::anyhow!(msg)),
        }
    }
}

impl StoreError {
    /// The cause chain, for an operator reading a probe or a log line (the
    /// store's errors never hold the URL or its password).
    pub fn describe(&self) -> String {
        match self {
            StoreError::Unavailable(source)
            | StoreError::Rejected(source)
            | StoreError::InvalidData(source) => format!("{source:#}"),
            other => other.to_string(),
        }
    }
}

/// The store as its database actor sees it: a check is a `SELECT 1` (which
/// opens a pooled connection when none is idle, so a passing check after an
/// outage is the reconnect), close closes the pool.
pub struct DatabaseDependency(pub SharedStore);

#[async_trait]
impl parley_actors::ports::Dependency for DatabaseDependency {
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.describe())
    }

    async fn close(&self) {
        self.0.close();
    }
}

/// A connection pool's state, for probes and metrics.
#[derive(Clone, Copy, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PoolStats {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

/// Every persistent operation parley performs.
#[async_trait]
pub trait Store: MessageLog + WebhookStore + ApiKeyStore + push::PushStore {
    /// Which implementation this is (`postgres` or `memory`), for probes.
    fn backend(&self) -> &'static str;

    /// A log for one arbiter's writers, with connections of its own
    /// (PostgreSQL); `None` when the writers can share the store.
    fn writer_log(&self) -> Option<Arc<dyn MessageLog>> {
        None
    }

    /// Connection pool figures (PostgreSQL only).
    fn pool_stats(&self) -> Option<PoolStats> {
        None
    }

    /// Closes the connections (end of the drain); later calls fail.
    fn close(&self) {}

    /// Round-trips to the backing store; `Err` when it is unusable.
    async fn ping(&self) -> Result<(), StoreError>;

    // --- users -------------------------------------------------------------

    /// Creates an account. `Conflict("username" | "email")` when taken
    /// (usernames compare case-insensitively).
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Looks a user up by username (case-insensitive), for logins and mentions.
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// Users whose username or display name starts with `prefix`
    /// (lower-cased on both sides), by lower-cased username, strictly after
    /// `after` (a lower-cased username) when given.
    async fn search_users(
        &self,
        prefix: &SearchPrefix,
        after: Option<&str>,
        limit: Limit,
    ) -> Result<Vec<User>, StoreError>;
    /// The stored argon2id PHC string of a user.
    async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError>;
    /// Applies the fields that are `Some`; `NotFound` for an unknown user.
    async fn update_profile(&self, id: UserId, patch: ProfilePatch) -> Result<User, StoreError>;

    // --- follows -----------------------------------------------------------

    /// Idempotent; `NotFound` when either user does not exist.
    /// Answers whether the follow is new (`false`: already following).
    async fn follow(&self, follower: UserId, followee: UserId) -> Result<bool, StoreError>;
    /// Idempotent.
    async fn unfollow(&self, follower: UserId, followee: UserId) -> Result<(), StoreError>;
    async fn followers(&self, user: UserId) -> Result<Vec<UserId>, StoreError>;

    // --- refresh tokens ----------------------------------------------------

    async fn insert_refresh_token(&self, token: NewRefreshToken) -> Result<(), StoreError>;
    /// Atomically spends a refresh token by its hash. See [`RefreshSpend`].
    /// A token spent less than `grace` ago (and not revoked or expired
    /// since) is spent again rather than reported reused: the client that
    /// spent it may not have received the answer (a page reloaded during
    /// the request, two tabs refreshing at once).
    async fn spend_refresh_token(
        &self,
        hash: &[u8],
        grace: std::time::Duration,
    ) -> Result<RefreshSpend, StoreError>;
    /// Revokes every token of a family (reuse detected, or logout).
    async fn revoke_refresh_family(&self, family: uuid::Uuid) -> Result<(), StoreError>;
    /// The family and owner of a token, spent or not (logout).
    async fn refresh_token_owner(
        &self,
        hash: &[u8],
    ) -> Result<Option<(UserId, uuid::Uuid)>, StoreError>;

    // --- session revocations ----------------------------------------------

    /// Records `revocation` and revokes the refresh tokens it covers (every
    /// family of the user, or its one family), atomically.
    async fn revoke_sessions(&self, revocation: &Revocation) -> Result<(), StoreError>;
    /// Revocations recorded strictly after `after` (by `recorded_at`),
    /// oldest first, at most `limit`: what every instance polls.
    async fn revocations_since(
        &self,
        after: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<RecordedRevocation>, StoreError>;

    // --- posts -------------------------------------------------------------

    async fn create_post(&self, post: NewPost) -> Result<Post, StoreError>;
    async fn post(&self, id: PostId) -> Result<Option<Post>, StoreError>;
    /// Deletes a post; `NotFound` when absent. Authorship is checked by the caller.
    async fn delete_post(&self, id: PostId) -> Result<(), StoreError>;
    /// Posts by `user` and everyone `user` follows, newest first, strictly
    /// older than `before` when given.
    async fn feed(
        &self,
        user: UserId,
        before: Option<PostId>,
        limit: Limit,
    ) -> Result<Vec<Post>, StoreError>;

    // --- rooms -------------------------------------------------------------

    /// Creates a room with `creator` as its owner.
    async fn create_room(
        &self,
        creator: UserId,
        name: RoomName,
        kind: RoomKind,
    ) -> Result<Room, StoreError>;
    async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError>;
    /// Public rooms and rooms `user` is a member of, oldest first, strictly
    /// after `after` when given.
    async fn rooms_visible_to(
        &self,
        user: UserId,
        after: Option<RoomId>,
        limit: Limit,
    ) -> Result<Vec<Room>, StoreError>;
    async fn role(&self, room: RoomId, user: UserId) -> Result<Option<RoomRole>, StoreError>;
    /// The room, `user`'s role in it (`None` when not a member) and the
    /// bans, mutes and blocks in force that concern them there; `None` for
    /// an unknown room. What every access check reads, in one read.
    async fn room_access(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<RoomAccess>, StoreError>;
    async fn members(&self, room: RoomId) -> Result<Vec<Member>, StoreError>;
    /// Adds or keeps a member; `NotFound` when the room or user is unknown,
    /// `RoomFull` when the room's kind caps its members
    /// ([`RoomKind::max_members`]) and it is full, checked atomically with
    /// the add.
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
    ) -> Result<(), StoreError>;
    /// `NotFound` when the user was not a member.
    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<(), StoreError>;

    // --- bans and mutes ----------------------------------------------------

    /// Stores a ban or mute, replacing the user's previous one of that kind
    /// (in force or expired). A ban also removes the user from the room's
    /// members, in the same transaction. `NotFound` for an unknown room or
    /// user.
    async fn restrict(&self, restriction: NewRestriction) -> Result<Imposed, StoreError>;
    /// Lifts a ban or mute in force; `NotFound` when there is none.
    async fn lift_restriction(
        &self,
        room: RoomId,
        user: UserId,
        kind: RestrictionKind,
    ) -> Result<(), StoreError>;
    /// Bans or mutes in force in a room, by user id, strictly after `after`.
    async fn restrictions(
        &self,
        room: RoomId,
        kind: RestrictionKind,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<Vec<Restriction>, StoreError>;

    // --- blocks ------------------------------------------------------------

    /// `blocker` blocks `blocked`, and any follow between the two ends, in
    /// one transaction. Answers whether the block is new. `NotFound` for an
    /// unknown user.
    async fn block(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError>;
    /// Idempotent.
    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<(), StoreError>;
    /// Whom `blocker` blocked, by user id, strictly after `after`.
    async fn blocks(
        &self,
        blocker: UserId,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<Vec<Block>, StoreError>;
    /// Those of `users` who blocked `actor`: whom `actor` must not reach.
    async fn blockers_among(
        &self,
        actor: UserId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError>;

    // --- reports -----------------------------------------------------------

    /// `NotFound` when the reported room or user does not exist.
    async fn create_report(&self, report: NewReport) -> Result<Report, StoreError>;
    /// Newest first, strictly older than `before` when given.
    async fn reports(
        &self,
        before: Option<ReportId>,
        limit: Limit,
    ) -> Result<Vec<Report>, StoreError>;

    // --- room events and read state --------------------------------------

    /// Messages of a room in their current state (edits, deletes and
    /// reactions folded in), ascending `seq`; `me` marks `viewer`'s
    /// reactions. Only `message` events appear.
    async fn history(
        &self,
        room: RoomId,
        viewer: UserId,
        query: HistoryQuery,
    ) -> Result<Vec<HistoryItem>, StoreError>;

    /// Moves `user`'s read cursor in `room` forward to `seq` (clamped to
    /// the room's last seq; never backwards) and returns the cursor it
    /// holds afterwards, and whether it moved (a first cursor, even at 0,
    /// counts as a move). `NotFound` for an unknown room.
    async fn mark_room_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<CursorMove, StoreError>;

    /// Every read cursor of a room, by user id.
    async fn read_cursors(&self, room: RoomId) -> Result<Vec<ReadCursor>, StoreError>;

    /// `user`'s position in each of `rooms` (unknown rooms left out), in
    /// the order given.
    async fn room_unread(
        &self,
        user: UserId,
        rooms: &[RoomId],
    ) -> Result<Vec<RoomUnread>, StoreError>;

    /// `user`'s position in every room they are a member of, and every
    /// public room they have read in, where something is unread, in room id
    /// order.
    async fn unread_rooms(&self, user: UserId) -> Result<Vec<RoomUnread>, StoreError>;

    // --- notifications -----------------------------------------------------

    /// Marks read every unread notification about message `seq` of `room`
    /// (its mentions, its direct-message notice): the message was
    /// deleted. Returns how many.
    async fn withdraw_notifications(&self, room: RoomId, seq: Seq) -> Result<u64, StoreError>;

    async fn create_notification(
        &self,
        notification: NewNotification,
    ) -> Result<Notification, StoreError>;
    /// Creates `notification` unless `user` already got one of the same
    /// kind whose payload holds every field of `same` within the last
    /// `within`; `None` when one did. (One `follow` notification per
    /// follower per day, however often they unfollow and follow again.)
    async fn create_notification_unless_recent(
        &self,
        notification: NewNotification,
        same: &serde_json::Value,
        within: std::time::Duration,
    ) -> Result<Option<Notification>, StoreError>;
    /// The same notification for each of `users` (a post's followers), in
    /// one write: what a popular author's post costs does not grow with
    /// round trips per follower. Users that no longer exist are skipped.
    /// Callers bound `users` (see `service::notify`).
    async fn create_notifications(
        &self,
        users: &[UserId],
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<Vec<Notification>, StoreError>;
    /// Newest first, strictly older than `before` when given.
    async fn notifications(
        &self,
        user: UserId,
        unread_only: bool,
        before: Option<NotificationId>,
        limit: Limit,
    ) -> Result<Vec<Notification>, StoreError>;
    async fn unread_count(&self, user: UserId) -> Result<i64, StoreError>;
    /// `NotFound` when the notification does not exist or is not `user`'s.
    async fn mark_read(&self, user: UserId, id: NotificationId) -> Result<(), StoreError>;
    /// Returns how many were unread.
    async fn mark_all_read(&self, user: UserId) -> Result<i64, StoreError>;

    // --- retention (see `service::retention`) --------------------------------

    /// Sets how long `room` keeps its events (`None`: forever) and returns
    /// the room; `NotFound` for an unknown room.
    async fn set_retention(
        &self,
        room: RoomId,
        days: Option<RetentionDays>,
    ) -> Result<Room, StoreError>;

    /// Rooms with a retention, in id order, strictly after `after` when
    /// given: what a purge pass visits, a page at a time.
    async fn rooms_with_retention(
        &self,
        after: Option<RoomId>,
        limit: u32,
    ) -> Result<Vec<(RoomId, RetentionDays)>, StoreError>;

    /// Moves `room`'s horizon (its first kept seq) past every event older
    /// than `cutoff`, never back, and returns it. Committed on its own and
    /// before anything is deleted: from then on readers (replay, history,
    /// unread, edits' targets) act as if the events below were gone.
    async fn advance_horizon(&self, room: RoomId, cutoff: DateTime<Utc>)
    -> Result<Seq, StoreError>;

    /// Deletes at most `batch` of `room`'s events below its horizon, oldest
    /// first, in one short transaction that takes no room lock, and returns
    /// how many (0: nothing is left to purge).
    async fn purge_below_horizon(&self, room: RoomId, batch: u32) -> Result<u64, StoreError>;
}
