//! Domain types: every value that crosses from a client into parley is
//! parsed into one of these first, so handlers, the store and the actors
//! only ever see valid data ("parse, don't validate").

pub mod api_key;
pub mod code;
mod ids;
pub mod invalid;
pub mod post;
pub mod push;
mod retention;
pub mod room;
pub mod safety;
pub mod user;
pub mod webhook;

pub use code::Code;
pub use ids::{NotificationId, PostId, PushSubscriptionId, ReportId};
pub use invalid::Invalid;
pub use parley_actors::ids::{ClientId, IdError, MessageId, RoomId, Seq, UserId};
pub use parley_actors::model::{BodyError, MessageBody};
pub use post::PostBody;
pub use retention::RetentionDays;
pub use room::{RoomKind, RoomName, RoomRole};
pub use safety::{Reason, ReportKind, RestrictionKind, Until};
pub use user::{Bio, DisplayName, Email, Password, SearchPrefix, Username};

/// Refuses text PostgreSQL could not store or that only a broken client
/// sends: C0 control characters, but for tab, newline and carriage return
/// in `multiline` text. The message is the field error a client sees.
pub fn check_storable(s: &str, multiline: bool) -> Result<(), Invalid> {
    if s.chars()
        .all(|c| parley_actors::model::is_storable(c, multiline))
    {
        return Ok(());
    }
    Err(if multiline {
        Invalid::ControlInMultiline
    } else {
        Invalid::Control
    })
}

/// A page size: 1 to [`Limit::MAX`], [`Limit::DEFAULT`] when absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 200;

    pub fn parse(value: Option<i64>) -> Result<Self, Invalid> {
        match value {
            None => Ok(Self(Self::DEFAULT)),
            Some(v) if (1..=i64::from(Self::MAX)).contains(&v) => Ok(Self(v as u32)),
            Some(_) => Err(Invalid::OutOfRange {
                min: 1,
                max: i64::from(Self::MAX),
            }),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// One more than the page size: the extra row tells whether a next page exists.
    pub fn overfetch(self) -> Self {
        Self(self.0 + 1)
    }
}
