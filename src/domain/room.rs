//! Rooms: names, kinds and member roles.

use super::Invalid;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// 1 to 100 characters, not blank, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
            return Err(Invalid::LengthOrControl { min: 1, max: 100 });
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who may read and write a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// Any signed-in user reads and writes.
    Public,
    /// Members only.
    Private,
    /// Two members only.
    Direct,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Public => "public",
            RoomKind::Private => "private",
            RoomKind::Direct => "direct",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "public" => Ok(Self::Public),
            "private" => Ok(Self::Private),
            "direct" => Ok(Self::Direct),
            _ => Err(Invalid::NotOneOf(&["public", "private", "direct"])),
        }
    }

    /// Direct rooms hold exactly two people.
    pub fn max_members(self) -> Option<usize> {
        match self {
            RoomKind::Direct => Some(2),
            _ => None,
        }
    }
}

impl fmt::Display for RoomKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's role. Owners and admins manage membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomRole {
    Owner,
    Admin,
    Member,
}

impl RoomRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomRole::Owner => "owner",
            RoomRole::Admin => "admin",
            RoomRole::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            _ => Err(Invalid::NotOneOf(&["owner", "admin", "member"])),
        }
    }

    pub fn manages_members(self) -> bool {
        matches!(self, RoomRole::Owner | RoomRole::Admin)
    }
}
