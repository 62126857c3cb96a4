//! Rows as the store returns them. These are not wire types: the HTTP layer
//! maps them into its own response bodies.

use crate::domain::{
    DisplayName, Email, NotificationId, PostBody, PostId, RoomId, RoomKind, RoomRole, UserId,
    Username,
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
