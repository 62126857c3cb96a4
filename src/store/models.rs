//! Rows as the store returns them. These are not wire types: the HTTP layer
//! maps them into its own response bodies.

use crate::domain::{
    DisplayName, Email, MessageId, NotificationId, PostBody, PostId, Reason, ReportId, ReportKind,
    RestrictionKind, RetentionDays, RoomId, RoomKind, RoomRole, Seq, Until, UserId, Username,
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
    /// Valid and now spent, or spent less than the grace window ago by a
    /// client whose answer was lost: issue a new token in the same family.
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

/// What an access check reads, in one read: the room, the user's role in
/// it, and what holds them back there now (expired bans and mutes are left
/// out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomAccess {
    pub room: Room,
    pub role: Option<RoomRole>,
    pub banned: Option<Restriction>,
    pub muted: Option<Restriction>,
    /// A direct room whose other member blocked the user.
    pub blocked_by_peer: bool,
}

/// A ban or a mute in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restriction {
    pub room: RoomId,
    pub user: UserId,
    pub kind: RestrictionKind,
    pub reason: String,
    /// `None`: until lifted.
    pub until: Option<DateTime<Utc>>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

/// A ban or mute as stored, and whether storing it ended a membership.
#[derive(Clone, Debug)]
pub struct Imposed {
    pub restriction: Restriction,
    /// A ban of a member ends the membership (in the same transaction); a
    /// ban of a non-member, and every mute, does not. Told apart so that
    /// `member.removed` is reported exactly when someone stopped being a
    /// member.
    pub ended_membership: bool,
}

/// A ban or mute to store (replacing one of the same kind).
#[derive(Clone, Debug)]
pub struct NewRestriction {
    pub room: RoomId,
    pub user: UserId,
    pub kind: RestrictionKind,
    pub reason: Reason,
    pub until: Option<Until>,
    pub by: UserId,
}

/// A user someone blocked, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub user: User,
    pub since: DateTime<Utc>,
}

/// A report to store, already validated.
#[derive(Clone, Debug)]
pub struct NewReport {
    pub reporter: UserId,
    pub kind: ReportKind,
    /// A message report's room and seq.
    pub message: Option<(RoomId, Seq)>,
    /// A user report's user.
    pub user: Option<UserId>,
    pub reason: Reason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub id: ReportId,
    pub reporter: UserId,
    pub kind: ReportKind,
    pub message: Option<(RoomId, Seq)>,
    pub user: Option<UserId>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
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

/// Where a read cursor is after a `read`, and whether that moved it: a
/// `read` at or behind the cursor changes nothing, and nobody needs to
/// hear of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CursorMove {
    pub seq: Seq,
    pub moved: bool,
}

/// A member's read cursor in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadCursor {
    pub user: UserId,
    pub seq: Seq,
}

/// Logins of a user that are no longer valid: their refresh tokens are
/// revoked, and the access tokens and WebSockets they opened are refused
/// (contract 6.2). Only the instant `at` plus the access-token lifetime
/// matters for access tokens: every older one has expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub user: UserId,
    /// `None`: every login of the user begun before `at` (log out
    /// everywhere); `Some`: that one family (a refresh token was reused).
    pub family: Option<uuid::Uuid>,
    /// When it was revoked, by the revoking instance's clock.
    pub at: DateTime<Utc>,
}

/// A revocation as stored, with when the store recorded it (by the store's
/// own clock, so pollers on instances with different clocks agree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRevocation {
    pub revocation: Revocation,
    pub recorded_at: DateTime<Utc>,
}
