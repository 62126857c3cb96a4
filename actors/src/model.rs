//! The room message as stored and delivered.

use crate::ids::{ClientId, MessageId, RoomId, Seq, UserId};
use chrono::{DateTime, Utc};
use std::fmt;

/// Whether `c` may be stored in parley's text: no C0 control characters,
/// except tab, newline and carriage return where `multiline`. PostgreSQL
/// refuses NUL in `text` outright, and the other controls only ever arrive
/// from broken or hostile clients; refusing them at parse time keeps a
/// client's bad input the client's own `bad_request`, never a database error.
pub fn is_storable(c: char, multiline: bool) -> bool {
    !c.is_ascii_control() || c == '\u{7f}' || (multiline && matches!(c, '\t' | '\n' | '\r'))
}

/// A message body: 1 to [`MessageBody::MAX_CHARS`] characters, not blank,
/// no control characters but tab, newline and carriage return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageBody(String);

/// Why a message body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters other than tab, newline and carriage return")]
    ControlCharacter,
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
        if !s.chars().all(|c| is_storable(c, true)) {
            return Err(BodyError::ControlCharacter);
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
#[derive(Clone, Debug, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_refuse_nul_and_c0_controls_but_keep_line_breaks_and_tabs() {
        assert_eq!(
            MessageBody::parse("a\u{0}b"),
            Err(BodyError::ControlCharacter)
        );
        assert_eq!(
            MessageBody::parse("a\u{1b}[31m"),
            Err(BodyError::ControlCharacter)
        );
        assert!(MessageBody::parse("line one\r\n\tline two").is_ok());
        assert!(MessageBody::parse("emoji \u{1F600} and DEL \u{7f}").is_ok());
    }
}
