//! Rows as the store returns them. These are not wire types: the HTTP layer
//! maps them into its own response bodies.

use crate::domain::{
    DisplayName, Email, MessageId, NotificationId, PostBody, PostId, RetentionDays, RoomId,
    RoomKind, RoomRole, Seq, UserId, Username,
};
use chrono::{DateTime, Utc};

/// A user account (never with its password hash).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub bio: String,
    pub created_at: DateTime<Utc>,
}

/// A registration, already validated and hashed.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// Profile fields to change; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct ProfilePatch {
    pub display_name: Option<DisplayName>,
    pub bio: Option<String>,
}

/// A refresh token to store. Only its SHA-256 hash is kept.
#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub hash: Vec<u8>,
    pub user: UserId,
    /// Every token rotated from one login shares a family.
    pub family: uuid::Uuid,
    pub expires_at: DateTime<Utc>,
}

/// The outcome of presenting a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshSpend {
    /// Valid and now spent: issue a new token in the same family.
    Spent { user: UserId, family: uuid::Uuid },
    /// Already spent or revoked: a replay. The caller revokes the family.
    Reused { user: UserId, family: uuid::Uuid },
    /// Past its expiry.
    Expired,
    /// Never issued.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct NewPost {
    pub id: PostId,
    pub author: UserId,
    pub body: PostBody,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Post {
    pub id: PostId,
    pub author: UserId,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    /// How long the room keeps its events; `None`: forever.
    pub retention_days: Option<RetentionDays>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user: UserId,
    pub role: RoomRole,
    pub joined_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewNotification {
    pub user: UserId,
    /// e.g. `new_post`, `mention`, `direct_message`, `follow`.
    pub kind: String,
    pub payload: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub id: NotificationId,
    pub user: UserId,
    pub kind: String,
    pub payload: serde_json::Value,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

/// Which messages a history page holds: `after < seq < before` (either
/// bound optional), only replies to `reply_to` when given, at most `limit`.
/// With `after`, the oldest such messages; otherwise the newest.
#[derive(Clone, Copy, Debug)]
pub struct HistoryQuery {
    pub after: Option<Seq>,
    pub before: Option<Seq>,
    pub reply_to: Option<Seq>,
    pub limit: u32,
}

/// One emoji's reactions on a message, as `viewer` sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionCount {
    pub emoji: String,
    pub count: i64,
    /// Whether the viewer is among them.
    pub me: bool,
}

/// A message in its current state: its edits, delete and reactions folded
/// in when they were written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryItem {
    pub seq: Seq,
    pub id: MessageId,
    pub author: UserId,
    /// After the last edit; `""` once deleted.
    pub body: String,
    pub ts: DateTime<Utc>,
    pub client_id: String,
    pub reply_to: Option<Seq>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// By emoji, in code-point order; emoji nobody holds are left out.
    pub reactions: Vec<ReactionCount>,
}

/// A room's position for one user: its newest seq, the user's read
/// cursor, and how many messages by others after the cursor are not
/// deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomUnread {
    pub room: RoomId,
    pub last_seq: Seq,
    pub read_seq: Seq,
    pub unread: i64,
}

/// A member's read cursor in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadCursor {
    pub user: UserId,
    pub seq: Seq,
}
