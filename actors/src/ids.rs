//! The engine's identifier newtypes, shared with every layer of the
//! application (which adds its own, such as post ids, in `src/domain`).
//!
//! Ids are UUIDv7: unique without coordination between instances and
//! ordered by creation time, which is what keyset pagination needs.
//! `Seq` is a room's message sequence number, `ClientId` the idempotency key a
//! client attaches to a publish. Each has a `parse` that is the only way to
//! build one from untrusted input.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Declares a UUIDv7 id newtype with `new`, `parse` (the only way in from
/// untrusted text), `Default` and `Display`. Exported so the application
/// declares its own ids (`src/domain/ids.rs`) the same way.
#[macro_export]
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub ::uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(::uuid::Uuid::now_v7())
            }

            /// Parses the textual form (any UUID); rejects everything else.
            pub fn parse(s: &str) -> Result<Self, $crate::ids::IdError> {
                ::uuid::Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| $crate::ids::IdError::NotAUuid)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// A chat room.
    RoomId
);
uuid_id!(
    /// One stored room message.
    MessageId
);

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be a UUID such as 0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e11")]
    NotAUuid,
    #[error("must be between 1 and {max} characters")]
    BadLength { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must be a non-negative integer")]
    NegativeSeq,
}

/// A room's message sequence number: 1 for the first message, then +1 with
/// no gap. `Seq(0)` means "nothing yet" and is a valid `since`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub i64);

impl Seq {
    /// Accepts zero and positive values.
    pub fn parse(value: i64) -> Result<Self, IdError> {
        if value < 0 {
            return Err(IdError::NegativeSeq);
        }
        Ok(Self(value))
    }

    /// The sequence number after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The idempotency key of a publish, unique per (room, author).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// The longest key the protocol accepts, in characters.
    pub const MAX_CHARS: usize = 64;

    /// 1 to 64 characters, no control characters.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let chars = s.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(IdError::BadLength {
                max: Self::MAX_CHARS,
            });
        }
        if s.chars().any(char::is_control) {
            return Err(IdError::ControlCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_accepts_64_chars_and_refuses_65() {
        assert!(ClientId::parse(&"é".repeat(64)).is_ok());
        assert!(ClientId::parse(&"a".repeat(65)).is_err());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("a\nb").is_err());
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = RoomId::new();
        let b = RoomId::new();
        assert!(a < b);
    }

    #[test]
    fn seq_refuses_negative_values() {
        assert_eq!(Seq::parse(-1), Err(IdError::NegativeSeq));
        assert_eq!(Seq::parse(0), Ok(Seq(0)));
    }
}

/// One WebSocket connection, unique across instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(pub Uuid);

impl SessionId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
