//! Values of people and safety (contract 1.1, 6.2): why a moderator or a
//! reporter acted, until when a ban or mute holds, what a report is about.

use super::Invalid;
use chrono::{DateTime, Utc};

/// Free text explaining a ban or a report: at most [`Reason::MAX_CHARS`]
/// characters, one paragraph (tab, newline and carriage return allowed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub const MAX_CHARS: usize = 1_000;

    /// A reason that may be empty (a ban's).
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        super::check_storable(s, true)?;
        Ok(Self(s.trim().to_owned()))
    }

    /// A reason that must say something (a report's).
    pub fn parse_required(s: &str) -> Result<Self, Invalid> {
        let reason = Self::parse(s)?;
        if reason.0.is_empty() {
            return Err(Invalid::Blank);
        }
        Ok(reason)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When a ban or a mute ends by itself: a future instant, at most
/// [`Until::MAX_DAYS`] ahead (longer is what "no `until`" is for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Until(DateTime<Utc>);

impl Until {
    pub const MAX_DAYS: i64 = 3_650;

    /// An RFC 3339 text, as clients send it.
    pub fn parse_text(s: &str, now: DateTime<Utc>) -> Result<Self, Invalid> {
        let at = DateTime::parse_from_rfc3339(s).map_err(|_| Invalid::Timestamp)?;
        Self::parse(at.with_timezone(&Utc), now)
    }

    pub fn parse(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, Invalid> {
        if at <= now {
            return Err(Invalid::NotInFuture);
        }
        if at - now > chrono::Duration::days(Self::MAX_DAYS) {
            return Err(Invalid::TooFarAhead {
                max_days: Self::MAX_DAYS,
            });
        }
        Ok(Self(at))
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

/// What keeps a user back in one room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RestrictionKind {
    /// Out of the room: no reading, joining, being added, publishing.
    Ban,
    /// In the room but silent: no publishing.
    Mute,
}

impl RestrictionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RestrictionKind::Ban => "ban",
            RestrictionKind::Mute => "mute",
        }
    }
}

/// What a report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Message,
    User,
}

impl ReportKind {
    pub const NAMES: &'static [&'static str] = &["message", "user"];

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "message" => Ok(Self::Message),
            "user" => Ok(Self::User),
            _ => Err(Invalid::NotOneOf(Self::NAMES)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Message => "message",
            ReportKind::User => "user",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_bounded_and_storable() {
        assert_eq!(Reason::parse("  spam  ").unwrap().as_str(), "spam");
        assert_eq!(Reason::parse("").unwrap().as_str(), "");
        assert_eq!(Reason::parse_required("  "), Err(Invalid::Blank));
        assert_eq!(Reason::parse("a\u{0}b"), Err(Invalid::ControlInMultiline));
        assert!(Reason::parse(&"x".repeat(Reason::MAX_CHARS + 1)).is_err());
        assert!(Reason::parse("line one\nline two").is_ok());
    }

    #[test]
    fn until_is_in_the_future_and_not_forever() {
        let now = Utc::now();
        assert_eq!(Until::parse(now, now), Err(Invalid::NotInFuture));
        assert!(Until::parse(now + chrono::Duration::minutes(1), now).is_ok());
        assert!(Until::parse(now + chrono::Duration::days(Until::MAX_DAYS + 1), now).is_err());
        assert_eq!(Until::parse_text("tomorrow", now), Err(Invalid::Timestamp));
        assert!(Until::parse_text("2999-01-01T00:00:00Z", now).is_err());
        assert!(Until::parse_text("2030-01-01T00:00:00+02:00", now).is_ok());
    }
}
