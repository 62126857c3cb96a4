//! The embedded in-process store: used when `DATABASE_URL` is unset.
//! Nothing survives a restart.
//!
//! All state lives in one [`State`] behind one `std::sync::Mutex`, so every
//! call is trivially atomic (a whole `append` batch included). The lock is
//! only ever taken inside a synchronous [`State`] method call and released
//! before the `async fn` returns; it is never held across an `.await`.
//!
//! The trait impls below only lock and delegate. The data operations are
//! plain `impl State` blocks, one file per area:
//!
//! | file | owns |
//! |---|---|
//! | `memory/accounts.rs` | users, follows, refresh tokens |
//! | `memory/posts.rs` | posts, the feed, notifications |
//! | `memory/rooms.rs` | rooms, members, each room's message log |
//! | `memory/safety.rs` | room bans and mutes, blocks, reports |
//! | `memory/revocations.rs` | session revocations |
//! | `memory/retention.rs` | each room's retention horizon, purging below it |
//! | `memory/integration.rs` | webhook endpoints, outbox and log; API keys |
//! | `memory/push.rs` | Web Push subscriptions and the push outbox |
//!
//! Rows are kept in `BTreeMap`s keyed by UUIDv7 ids, which sort by creation
//! time, so keyset pagination is a `range` over the map.

mod accounts;
mod integration;
mod posts;
mod push;
mod retention;
mod revocations;
mod rooms;
mod safety;

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
use async_trait::async_trait;
use parley_actors::model::{Appended, NewEvent, Refusal, StoredEvent};
use parley_actors::ports::{LogError, MessageLog, ReplayPage};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The embedded store. Cheap to create; share it behind an `Arc`.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// What `append` writes webhook outbox rows for.
    webhook_filter: crate::domain::webhook::EventFilter,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `State` method leaves the state consistent before it can
    /// panic, so a poisoned lock still guards valid data: carry on with it
    /// rather than turning one panic into a panic on every later call.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Everything the store holds.
#[derive(Default)]
struct State {
    users: BTreeMap<UserId, UserRow>,
    /// Lower-cased username → user: usernames are unique ignoring case.
    usernames: HashMap<String, UserId>,
    /// E-mail address (already lower-cased by `Email::parse`) → user.
    emails: HashMap<String, UserId>,
    /// `(follower, followee)`, so one user's followees are one range.
    follows: BTreeSet<(UserId, UserId)>,
    /// By the SHA-256 hash of the token.
    refresh_tokens: HashMap<Vec<u8>, RefreshRow>,
    posts: BTreeMap<PostId, Post>,
    rooms: BTreeMap<RoomId, RoomRow>,
    /// Keyed by owner first, so one user's notifications are one range.
    notifications: BTreeMap<(UserId, NotificationId), Notification>,
    /// Bans and mutes, in force or expired, so one room's of one kind are
    /// one range.
    restrictions: BTreeMap<(RoomId, RestrictionKind, UserId), Restriction>,
    /// `(blocker, blocked)` → since when.
    blocks: BTreeMap<(UserId, UserId), chrono::DateTime<chrono::Utc>>,
    reports: BTreeMap<ReportId, Report>,
    /// Session revocations in the order they were recorded.
    revocations: Vec<crate::store::RecordedRevocation>,
    /// Webhooks and API keys (`memory/integration.rs`).
    integration: integration::Integration,
    /// Web Push subscriptions and the push outbox.
    push: push::PushState,
}

/// A user with the one column [`User`] never carries.
struct UserRow {
    user: User,
    password_hash: String,
}

/// A stored refresh token.
struct RefreshRow {
    user: UserId,
    family: uuid::Uuid,
    expires_at: chrono::DateTime<chrono::Utc>,
    /// When it was first presented.
    spent_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its family was revoked.
    revoked: bool,
}

/// A room with its members and its message log.
struct RoomRow {
    room: Room,
    members: BTreeMap<UserId, Member>,
    /// The message with `seq` n is at index n - 1: seqs are gapless.
    log: Vec<StoredEvent>,
    /// `(author, client_id)` → index in `log`: the idempotency keys.
    client_ids: HashMap<(UserId, String), usize>,
    /// The current state of each message, by its seq.
    folded: HashMap<Seq, Folded>,
    /// Each user's read cursor.
    cursors: BTreeMap<UserId, Seq>,
    /// The retention horizon: the events below it are purged (or about to
    /// be), and no reader sees them.
    first_seq: Seq,
    /// The last seq whose event was erased by a purge (0: none).
    erased: Seq,
}

/// What edits, deletes and reactions made of a message (its body lives in
/// the log entry itself, updated in place).
#[derive(Default)]
struct Folded {
    reply_to: Option<Seq>,
    edited_at: Option<chrono::DateTime<chrono::Utc>>,
    deleted: bool,
    /// Emoji → who holds it.
    reactions: BTreeMap<String, BTreeSet<UserId>>,
}

#[async_trait]
impl MessageLog for MemoryStore {
    /// The webhook outbox rows of the batch's new events are written under
    /// the same lock: in the outbox if and only if appended.
    async fn append(&self, batch: &[NewEvent]) -> Result<Vec<Result<Appended, Refusal>>, LogError> {
        let mut state = self.lock();
        let appended = state.append(batch)?;
        let wanted = self.webhook_filter.get();
        if wanted != crate::domain::webhook::EventTypes::default() {
            let events: Vec<_> = appended
                .iter()
                .filter_map(|outcome| match outcome {
                    Ok(Appended::New(event)) => {
                        crate::domain::webhook::OutboxEvent::of_room_event(event, wanted)
                    }
                    _ => None,
                })
                .collect();
            state.integration.enqueue(&events);
        }
        Ok(appended)
    }

    async fn range(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, LogError> {
        Ok(self.lock().range(room, after, before, limit))
    }

    async fn tail(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, LogError> {
        Ok(self.lock().tail(room, before, limit))
    }

    async fn last_seq(&self, room: RoomId) -> Result<Seq, LogError> {
        self.lock().last_seq(room)
    }

    async fn replay_page(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<ReplayPage, LogError> {
        let state = self.lock();
        state.last_seq(room)?;
        Ok(ReplayPage {
            first_seq: state.first_seq(room),
            events: state.range(room, after, before, limit),
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.lock().create_user(user)
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(&id).map(|row| row.user.clone()))
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self.lock().user_by_username(username))
    }

    async fn search_users(
        &self,
        prefix: &SearchPrefix,
        after: Option<&str>,
        limit: Limit,
    ) -> Result<Vec<User>, StoreError> {
        Ok(self.lock().search_users(prefix, after, limit))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(self.lock().user_by_email(email))
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .users
            .get(&id)
            .map(|row| row.password_hash.clone()))
    }

    async fn update_profile(&self, id: UserId, patch: ProfilePatch) -> Result<User, StoreError> {
        self.lock().update_profile(id, patch)
    }

    async fn follow(&self, follower: UserId, followee: UserId) -> Result<bool, StoreError> {
        self.lock().follow(follower, followee)
    }

    async fn unfollow(&self, follower: UserId, followee: UserId) -> Result<(), StoreError> {
        self.lock().follows.remove(&(follower, followee));
        Ok(())
    }

    async fn followers(&self, user: UserId) -> Result<Vec<UserId>, StoreError> {
        Ok(self.lock().followers(user))
    }

    async fn insert_refresh_token(&self, token: NewRefreshToken) -> Result<(), StoreError> {
        self.lock().insert_refresh_token(token)
    }

    async fn spend_refresh_token(
        &self,
        hash: &[u8],
        grace: std::time::Duration,
    ) -> Result<RefreshSpend, StoreError> {
        Ok(self
            .lock()
            .spend_refresh_token(hash, grace, chrono::Utc::now()))
    }

    async fn revoke_refresh_family(&self, family: uuid::Uuid) -> Result<(), StoreError> {
        self.lock().revoke_refresh_family(family);
        Ok(())
    }

    async fn refresh_token_owner(
        &self,
        hash: &[u8],
    ) -> Result<Option<(UserId, uuid::Uuid)>, StoreError> {
        let state = self.lock();
        Ok(state.refresh_tokens.get(hash).map(|t| (t.user, t.family)))
    }

    async fn revoke_sessions(
        &self,
        revocation: &crate::store::Revocation,
    ) -> Result<(), StoreError> {
        self.lock().revoke_sessions(revocation, chrono::Utc::now())
    }

    async fn revocations_since(
        &self,
        after: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<crate::store::RecordedRevocation>, StoreError> {
        Ok(self.lock().revocations_since(after, limit))
    }

    async fn create_post(&self, post: NewPost) -> Result<Post, StoreError> {
        self.lock().create_post(post)
    }

    async fn post(&self, id: PostId) -> Result<Option<Post>, StoreError> {
        Ok(self.lock().posts.get(&id).cloned())
    }

    async fn delete_post(&self, id: PostId) -> Result<(), StoreError> {
        self.lock()
            .posts
            .remove(&id)
            .map(drop)
            .ok_or(StoreError::NotFound)
    }

    async fn feed(
        &self,
        user: UserId,
        before: Option<PostId>,
        limit: Limit,
    ) -> Result<Vec<Post>, StoreError> {
        Ok(self.lock().feed(user, before, limit))
    }

    async fn create_room(
        &self,
        creator: UserId,
        name: RoomName,
        kind: RoomKind,
    ) -> Result<Room, StoreError> {
        self.lock().create_room(creator, name, kind)
    }

    async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        Ok(self.lock().rooms.get(&id).map(|row| row.room.clone()))
    }

    async fn rooms_visible_to(
        &self,
        user: UserId,
        after: Option<RoomId>,
        limit: Limit,
    ) -> Result<Vec<Room>, StoreError> {
        Ok(self.lock().rooms_visible_to(user, after, limit))
    }

    async fn role(&self, room: RoomId, user: UserId) -> Result<Option<RoomRole>, StoreError> {
        let state = self.lock();
        let member = state
            .rooms
            .get(&room)
            .and_then(|row| row.members.get(&user));
        Ok(member.map(|m| m.role))
    }

    async fn room_access(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<RoomAccess>, StoreError> {
        Ok(self.lock().room_access(room, user))
    }

    async fn restrict(&self, restriction: NewRestriction) -> Result<Imposed, StoreError> {
        self.lock().restrict(restriction)
    }

    async fn lift_restriction(
        &self,
        room: RoomId,
        user: UserId,
        kind: RestrictionKind,
    ) -> Result<(), StoreError> {
        self.lock().lift_restriction(room, user, kind)
    }

    async fn restrictions(
        &self,
        room: RoomId,
        kind: RestrictionKind,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<Vec<Restriction>, StoreError> {
        Ok(self.lock().restrictions(room, kind, after, limit))
    }

    async fn block(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        self.lock().block(blocker, blocked)
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<(), StoreError> {
        self.lock().blocks.remove(&(blocker, blocked));
        Ok(())
    }

    async fn blocks(
        &self,
        blocker: UserId,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<Vec<Block>, StoreError> {
        Ok(self.lock().blocks_of(blocker, after, limit))
    }

    async fn blockers_among(
        &self,
        actor: UserId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError> {
        let state = self.lock();
        Ok(users
            .iter()
            .copied()
            .filter(|user| state.blocks.contains_key(&(*user, actor)))
            .collect())
    }

    async fn create_report(&self, report: NewReport) -> Result<Report, StoreError> {
        self.lock().create_report(report)
    }

    async fn reports(
        &self,
        before: Option<ReportId>,
        limit: Limit,
    ) -> Result<Vec<Report>, StoreError> {
        let state = self.lock();
        let before = before.unwrap_or(ReportId(uuid::Uuid::max()));
        Ok(state
            .reports
            .range(..before)
            .rev()
            .take(limit.get() as usize)
            .map(|(_, report)| report.clone())
            .collect())
    }

    async fn members(&self, room: RoomId) -> Result<Vec<Member>, StoreError> {
        Ok(self.lock().members(room))
    }

    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
    ) -> Result<(), StoreError> {
        self.lock().add_member(room, user, role)
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<(), StoreError> {
        let mut state = self.lock();
        let row = state.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        row.members
            .remove(&user)
            .map(drop)
            .ok_or(StoreError::NotFound)
    }

    async fn create_notification(
        &self,
        notification: NewNotification,
    ) -> Result<Notification, StoreError> {
        self.lock().create_notification(notification)
    }

    async fn create_notification_unless_recent(
        &self,
        notification: NewNotification,
        same: &serde_json::Value,
        within: std::time::Duration,
    ) -> Result<Option<Notification>, StoreError> {
        let since = chrono::Utc::now() - chrono::Duration::from_std(within).unwrap_or_default();
        let mut inner = self.lock();
        let user = notification.user;
        let holds = |payload: &serde_json::Value| {
            same.as_object()
                .is_some_and(|fields| fields.iter().all(|(k, v)| payload.get(k) == Some(v)))
        };
        let recent = inner
            .notifications
            .range(
                (user, NotificationId(uuid::Uuid::nil()))
                    ..=(user, NotificationId(uuid::Uuid::max())),
            )
            .any(|(_, n)| n.kind == notification.kind && n.created_at > since && holds(&n.payload));
        if recent {
            return Ok(None);
        }
        inner.create_notification(notification).map(Some)
    }

    async fn create_notifications(
        &self,
        users: &[UserId],
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut inner = self.lock();
        let created = users.iter().filter_map(|&user| {
            let new = NewNotification {
                user,
                kind: kind.to_owned(),
                payload: payload.clone(),
            };
            inner.create_notification(new).ok()
        });
        Ok(created.collect())
    }

    async fn notifications(
        &self,
        user: UserId,
        unread_only: bool,
        before: Option<NotificationId>,
        limit: Limit,
    ) -> Result<Vec<Notification>, StoreError> {
        Ok(self.lock().notifications(user, unread_only, before, limit))
    }

    async fn unread_count(&self, user: UserId) -> Result<i64, StoreError> {
        Ok(self.lock().unread_of(user).count() as i64)
    }

    async fn mark_read(&self, user: UserId, id: NotificationId) -> Result<(), StoreError> {
        let mut state = self.lock();
        let notification = state.notifications.get_mut(&(user, id));
        notification.ok_or(StoreError::NotFound)?.read = true;
        Ok(())
    }

    async fn mark_all_read(&self, user: UserId) -> Result<i64, StoreError> {
        Ok(self.lock().mark_all_read(user))
    }

    async fn set_retention(
        &self,
        room: RoomId,
        days: Option<RetentionDays>,
    ) -> Result<Room, StoreError> {
        self.lock().set_retention(room, days)
    }

    async fn rooms_with_retention(
        &self,
        after: Option<RoomId>,
        limit: u32,
    ) -> Result<Vec<(RoomId, RetentionDays)>, StoreError> {
        Ok(self.lock().rooms_with_retention(after, limit))
    }

    async fn advance_horizon(
        &self,
        room: RoomId,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<Seq, StoreError> {
        self.lock().advance_horizon(room, cutoff)
    }

    async fn purge_below_horizon(&self, room: RoomId, batch: u32) -> Result<u64, StoreError> {
        self.lock().purge_below_horizon(room, batch)
    }

    async fn withdraw_notifications(&self, room: RoomId, seq: Seq) -> Result<u64, StoreError> {
        let about = |n: &Notification| {
            n.payload.get("room").and_then(|v| v.as_str()) == Some(&room.to_string())
                && n.payload.get("seq").and_then(|v| v.as_i64()) == Some(seq.0)
        };
        let mut state = self.lock();
        let mut withdrawn = 0;
        for notification in state.notifications.values_mut() {
            if !notification.read && about(notification) {
                notification.read = true;
                withdrawn += 1;
            }
        }
        Ok(withdrawn)
    }

    async fn history(
        &self,
        room: RoomId,
        viewer: UserId,
        query: HistoryQuery,
    ) -> Result<Vec<HistoryItem>, StoreError> {
        Ok(self.lock().history(room, viewer, query))
    }

    async fn mark_room_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<CursorMove, StoreError> {
        self.lock().mark_room_read(room, user, seq)
    }

    async fn read_cursors(&self, room: RoomId) -> Result<Vec<ReadCursor>, StoreError> {
        Ok(self.lock().read_cursors(room))
    }

    async fn room_unread(
        &self,
        user: UserId,
        rooms: &[RoomId],
    ) -> Result<Vec<RoomUnread>, StoreError> {
        Ok(self.lock().room_unread(user, rooms))
    }

    async fn unread_rooms(&self, user: UserId) -> Result<Vec<RoomUnread>, StoreError> {
        Ok(self.lock().unread_rooms(user))
    }
}
