//! The room message as stored and delivered.

use crate::ids::{ClientId, MessageId, RoomId, Seq, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

/// A message body: 1 to [`MessageBody::MAX_CHARS`] characters, not blank.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MessageBody(String);

/// Why a message body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
}

impl MessageBody {
    /// Long enough for any chat message, short enough that a frame with its
    /// JSON envelope stays well under the 64 KiB frame limit.
    pub const MAX_CHARS: usize = 8_000;

    pub fn parse(s: &str) -> Result<Self, BodyError> {
        if s.trim().is_empty() {
            return Err(BodyError::Blank);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(BodyError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A publish on its way to the log: who, where, what, and its idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    pub room: RoomId,
    pub author: UserId,
    pub client_id: ClientId,
    pub body: MessageBody,
}

/// A committed room message. `seq` is gapless per room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StoredMessage {
    pub room: RoomId,
    pub seq: Seq,
    pub id: MessageId,
    pub author: UserId,
    pub body: String,
    pub ts: DateTime<Utc>,
    pub client_id: String,
}

/// What appending one publish did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Newly committed with a fresh `seq`.
    New(StoredMessage),
    /// The (room, author, client_id) was seen before: the original message.
    Duplicate(StoredMessage),
}

impl Appended {
    /// The message, new or original.
    pub fn message(&self) -> &StoredMessage {
        match self {
            Appended::New(m) | Appended::Duplicate(m) => m,
        }
    }

    pub fn is_new(&self) -> bool {
        matches!(self, Appended::New(_))
    }
}
